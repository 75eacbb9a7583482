//! Validated conversions between the prost types and the domain types.
//!
//! Inbound (`TryFrom<pb::X>`): every required sub-message present, no all-zero dispatcher id, mode
//! 0 or 1, enum values known, spans non-empty. A failure names the message and the field and the
//! request is dropped by the caller; nothing panics. Outbound (`From<&Domain>`) is total.

use crate::ids::{ChangefeedId, DispatcherId, Epoch, Mode};
use crate::messages::{
    AddedTable, BarrierAction, BarrierAnswer, BarrierEvent, BlockDetail, BlockStage, BlockState, BlockStatus,
    BlockStatusRequest, BootstrapRequest, BootstrapResponse, BootstrapSpan, CheckpointTsMessage,
    CloseRequest, CloseResponse, ComponentState, DispatcherConfig, DispatcherStatus, HeartBeatResponse,
    Heartbeat, Influence, InfluenceKind, InfluencedTables, MergeRequest, OperatorType, Order,
    PostBootstrapRequest, PostBootstrapResponse, RedoMetaMessage, RedoResolvedTsForward, RouteTableAdmission,
    RunningError, ScheduleAction, ScheduleRequest, SchemaIdChange, Watermark,
};
use crate::span::TableSpan;
use crate::wire::pb;

/// Why an inbound message was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A required field is absent.
    #[error("{message}: missing {field}")]
    Missing {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A dispatcher id field is all zero.
    #[error("{message}: {field} is the all-zero dispatcher id")]
    ZeroId {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
    },
    /// A mode other than 0 (default) or 1 (redo).
    #[error("{message}: unknown mode {value}")]
    Mode {
        /// The message.
        message: &'static str,
        /// The value found.
        value: i64,
    },
    /// An enum value outside the schema.
    #[error("{message}: unknown {field} value {value}")]
    Enum {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
        /// The value found.
        value: i32,
    },
    /// A span whose start key is not below its end key.
    #[error("{message}: empty span (start key not below end key)")]
    EmptySpan {
        /// The message.
        message: &'static str,
    },
    /// A maintainer epoch, node epoch, coordinator version or start checkpoint that is zero (or
    /// negative). The reference's zero means "a peer from before epochs"; between our processes it
    /// would switch fencing off, so it is refused.
    #[error("{message}: {field} must be positive")]
    NotPositive {
        /// The message.
        message: &'static str,
        /// The field.
        field: &'static str,
    },
    /// The bytes are not a protobuf encoding of the message.
    #[error("{message}: not a valid protobuf encoding")]
    Undecodable {
        /// The message.
        message: &'static str,
    },
    /// A message the receiving core does not handle (the wrong direction, or a barrier message
    /// before the barrier exists); dropped.
    #[error("{message}: not handled by the {receiver} core")]
    NotHandled {
        /// The message.
        message: &'static str,
        /// The receiving core (`Receiver::name`).
        receiver: &'static str,
    },
}

fn required<T>(v: Option<T>, message: &'static str, field: &'static str) -> Result<T, WireError> {
    v.ok_or(WireError::Missing { message, field })
}

fn dispatcher_id(
    v: Option<&pb::DispatcherId>,
    message: &'static str,
    field: &'static str,
) -> Result<DispatcherId, WireError> {
    let v = required(v, message, field)?;
    DispatcherId::new(v.high, v.low).ok_or(WireError::ZeroId { message, field })
}

fn optional_id(v: Option<&pb::DispatcherId>) -> Option<DispatcherId> {
    v.and_then(|v| DispatcherId::new(v.high, v.low))
}

fn mode(v: i64, message: &'static str) -> Result<Mode, WireError> {
    Mode::from_i64(v).ok_or(WireError::Mode { message, value: v })
}

fn changefeed(v: Option<&pb::ChangefeedId>) -> ChangefeedId {
    // A missing changefeed id routes nowhere; as a value it is the zero id, which the embedder's
    // router refuses. The core itself never branches on it.
    v.map(|c| ChangefeedId { high: c.high, low: c.low, name: c.name.clone(), keyspace: c.keyspace.clone() })
        .unwrap_or_default()
}

fn span(v: &pb::TableSpan, message: &'static str) -> Result<TableSpan, WireError> {
    TableSpan::new(v.keyspace_id, v.table_id, v.start_key.clone(), v.end_key.clone())
        .ok_or(WireError::EmptySpan { message })
}

fn schedule_action(v: i32) -> Result<ScheduleAction, WireError> {
    match pb::ScheduleAction::try_from(v) {
        Ok(pb::ScheduleAction::Create) => Ok(ScheduleAction::Create),
        Ok(pb::ScheduleAction::Remove) => Ok(ScheduleAction::Remove),
        Err(_) => {
            Err(WireError::Enum { message: "ScheduleDispatcherRequest", field: "scheduleAction", value: v })
        }
    }
}

fn operator_type(v: i32) -> Result<OperatorType, WireError> {
    match pb::OperatorType::try_from(v) {
        Ok(pb::OperatorType::OAdd) => Ok(OperatorType::Add),
        Ok(pb::OperatorType::ORemove) => Ok(OperatorType::Remove),
        Ok(pb::OperatorType::OMove) => Ok(OperatorType::Move),
        Ok(pb::OperatorType::OSplit) => Ok(OperatorType::Split),
        Ok(pb::OperatorType::OMerge) => Ok(OperatorType::Merge),
        Err(_) => {
            Err(WireError::Enum { message: "ScheduleDispatcherRequest", field: "operatorType", value: v })
        }
    }
}

fn component_state(v: i32, message: &'static str) -> Result<ComponentState, WireError> {
    ComponentState::from_i32(v).ok_or(WireError::Enum { message, field: "component_status", value: v })
}

impl TryFrom<&pb::ScheduleDispatcherRequest> for ScheduleRequest {
    type Error = WireError;

    fn try_from(v: &pb::ScheduleDispatcherRequest) -> Result<Self, WireError> {
        const M: &str = "ScheduleDispatcherRequest";
        let config = required(v.config.as_ref(), M, "config")?;
        let span = config.span.as_ref().map(|s| span(s, M)).transpose()?;
        let order = Order::new(schedule_action(v.schedule_action)?, span)
            .ok_or(WireError::Missing { message: M, field: "config.span" })?;
        Ok(ScheduleRequest {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            config: DispatcherConfig {
                id: dispatcher_id(config.dispatcher_id.as_ref(), M, "config.dispatcherID")?,
                mode: mode(config.mode, M)?,
                start_ts: config.start_ts,
                schema_id: config.schema_id,
                skip_dml_as_start_ts: config.skip_dml_as_start_ts,
            },
            order,
            operator_type: operator_type(v.operator_type)?,
            epoch: Epoch(v.maintainer_epoch),
        })
    }
}

impl TryFrom<&pb::MergeDispatcherRequest> for MergeRequest {
    type Error = WireError;

    fn try_from(v: &pb::MergeDispatcherRequest) -> Result<Self, WireError> {
        const M: &str = "MergeDispatcherRequest";
        let sources = v
            .dispatcher_i_ds
            .iter()
            .map(|id| dispatcher_id(Some(id), M, "dispatcherIDs"))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(MergeRequest {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            sources,
            merged: dispatcher_id(v.merged_dispatcher_id.as_ref(), M, "mergedDispatcherID")?,
            mode: mode(v.mode, M)?,
            epoch: Epoch(v.maintainer_epoch),
        })
    }
}

impl TryFrom<&pb::MaintainerBootstrapRequest> for BootstrapRequest {
    type Error = WireError;

    fn try_from(v: &pb::MaintainerBootstrapRequest) -> Result<Self, WireError> {
        Ok(BootstrapRequest {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            config: v.config.clone(),
            start_ts: v.start_ts,
            trigger: optional_id(v.table_trigger_event_dispatcher_id.as_ref()),
            is_new_changefeed: v.is_new_changefeed,
            redo_trigger: optional_id(v.table_trigger_redo_dispatcher_id.as_ref()),
            keyspace_id: v.keyspace_id,
            epoch: Epoch(v.maintainer_epoch),
        })
    }
}

impl TryFrom<&pb::MaintainerPostBootstrapRequest> for PostBootstrapRequest {
    type Error = WireError;

    fn try_from(v: &pb::MaintainerPostBootstrapRequest) -> Result<Self, WireError> {
        Ok(PostBootstrapRequest {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            trigger: optional_id(v.table_trigger_event_dispatcher_id.as_ref()),
            epoch: Epoch(v.maintainer_epoch),
        })
    }
}

impl TryFrom<&pb::MaintainerCloseRequest> for CloseRequest {
    type Error = WireError;

    fn try_from(v: &pb::MaintainerCloseRequest) -> Result<Self, WireError> {
        Ok(CloseRequest {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            removed: v.removed,
            epoch: Epoch(v.maintainer_epoch),
        })
    }
}

impl TryFrom<&pb::TableSpanStatus> for DispatcherStatus {
    type Error = WireError;

    fn try_from(v: &pb::TableSpanStatus) -> Result<Self, WireError> {
        const M: &str = "TableSpanStatus";
        Ok(DispatcherStatus {
            id: dispatcher_id(v.id.as_ref(), M, "ID")?,
            mode: mode(v.mode, M)?,
            state: component_state(v.component_status, M)?,
            checkpoint_ts: v.checkpoint_ts,
            event_size_per_second: v.event_size_per_second,
        })
    }
}

impl TryFrom<&pb::MaintainerBootstrapResponse> for BootstrapResponse {
    type Error = WireError;

    fn try_from(v: &pb::MaintainerBootstrapResponse) -> Result<Self, WireError> {
        const M: &str = "BootstrapTableSpan";
        let spans = v
            .spans
            .iter()
            .map(|s| {
                Ok(BootstrapSpan {
                    id: dispatcher_id(s.id.as_ref(), M, "ID")?,
                    mode: mode(s.mode, M)?,
                    schema_id: s.schema_id,
                    span: span(required(s.span.as_ref(), M, "span")?, M)?,
                    state: component_state(s.component_status, M)?,
                    checkpoint_ts: s.checkpoint_ts,
                    block: s.block_state.as_ref().map(BlockState::try_from).transpose()?.map(Box::new),
                })
            })
            .collect::<Result<Vec<_>, WireError>>()?;
        Ok(BootstrapResponse {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            spans,
            err: v.err.as_ref().map(RunningError::from),
            checkpoint_ts: v.checkpoint_ts,
            redo_checkpoint_ts: v.redo_checkpoint_ts,
            operators: v.operators.iter().map(ScheduleRequest::try_from).collect::<Result<_, _>>()?,
            epoch: Epoch(v.maintainer_epoch),
            merge_operators: v
                .merge_operators
                .iter()
                .map(MergeRequest::try_from)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl TryFrom<pb::MaintainerBootstrapResponse> for BootstrapResponse {
    type Error = WireError;

    /// The same validation as the by-reference conversion, moving the span keys instead of
    /// copying them (a bootstrap response can carry hundreds of thousands of spans).
    fn try_from(mut v: pb::MaintainerBootstrapResponse) -> Result<Self, WireError> {
        const M: &str = "BootstrapTableSpan";
        let spans = std::mem::take(&mut v.spans)
            .into_iter()
            .map(|s| {
                let block = s.block_state.as_ref().map(BlockState::try_from).transpose()?.map(Box::new);
                let raw = required(s.span, M, "span")?;
                Ok(BootstrapSpan {
                    id: dispatcher_id(s.id.as_ref(), M, "ID")?,
                    mode: mode(s.mode, M)?,
                    schema_id: s.schema_id,
                    span: TableSpan::new(raw.keyspace_id, raw.table_id, raw.start_key, raw.end_key)
                        .ok_or(WireError::EmptySpan { message: M })?,
                    state: component_state(s.component_status, M)?,
                    checkpoint_ts: s.checkpoint_ts,
                    block,
                })
            })
            .collect::<Result<Vec<_>, WireError>>()?;
        let mut response = BootstrapResponse::try_from(&v)?;
        response.spans = spans;
        Ok(response)
    }
}

impl TryFrom<&pb::HeartBeatRequest> for Heartbeat {
    type Error = WireError;

    fn try_from(v: &pb::HeartBeatRequest) -> Result<Self, WireError> {
        let watermark = |w: &pb::Watermark| Watermark {
            checkpoint_ts: w.checkpoint_ts,
            resolved_ts: w.resolved_ts,
            seq: w.seq,
        };
        Ok(Heartbeat {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            watermark: v.watermark.as_ref().map(watermark),
            redo_watermark: v.redo_watermark.as_ref().map(watermark),
            statuses: v.statuses.iter().map(DispatcherStatus::try_from).collect::<Result<_, _>>()?,
            complete: v.compelete_status,
            err: v.err.as_ref().map(RunningError::from),
        })
    }
}

impl TryFrom<&pb::MaintainerPostBootstrapResponse> for PostBootstrapResponse {
    type Error = WireError;

    fn try_from(v: &pb::MaintainerPostBootstrapResponse) -> Result<Self, WireError> {
        Ok(PostBootstrapResponse {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            trigger: optional_id(v.table_trigger_event_dispatcher_id.as_ref()),
            err: v.err.as_ref().map(RunningError::from),
            epoch: Epoch(v.maintainer_epoch),
        })
    }
}

impl TryFrom<&pb::MaintainerCloseResponse> for CloseResponse {
    type Error = WireError;

    fn try_from(v: &pb::MaintainerCloseResponse) -> Result<Self, WireError> {
        Ok(CloseResponse {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            success: v.success,
            epoch: Epoch(v.maintainer_epoch),
        })
    }
}

impl From<&pb::RunningError> for RunningError {
    fn from(v: &pb::RunningError) -> Self {
        RunningError {
            time: v.time.clone(),
            node: v.node.clone(),
            code: v.code.clone(),
            message: v.message.clone(),
        }
    }
}

// ---- outbound ----

fn pb_id(id: DispatcherId) -> Option<pb::DispatcherId> {
    Some(pb::DispatcherId { high: id.high(), low: id.low() })
}

fn pb_changefeed(c: &ChangefeedId) -> Option<pb::ChangefeedId> {
    Some(pb::ChangefeedId { high: c.high, low: c.low, name: c.name.clone(), keyspace: c.keyspace.clone() })
}

fn pb_span(s: &TableSpan) -> pb::TableSpan {
    pb::TableSpan {
        table_id: s.table_id,
        start_key: s.start_key.to_vec(),
        end_key: s.end_key.to_vec(),
        keyspace_id: s.keyspace_id,
    }
}

impl From<&RunningError> for pb::RunningError {
    fn from(v: &RunningError) -> Self {
        pb::RunningError {
            time: v.time.clone(),
            node: v.node.clone(),
            code: v.code.clone(),
            message: v.message.clone(),
        }
    }
}

impl From<&ScheduleRequest> for pb::ScheduleDispatcherRequest {
    fn from(v: &ScheduleRequest) -> Self {
        pb::ScheduleDispatcherRequest {
            changefeed_id: pb_changefeed(&v.changefeed),
            config: Some(pb::DispatcherConfig {
                span: v.span().map(pb_span),
                start_ts: v.config.start_ts,
                dispatcher_id: pb_id(v.config.id),
                schema_id: v.config.schema_id,
                mode: v.config.mode.as_i64(),
                skip_dml_as_start_ts: v.config.skip_dml_as_start_ts,
            }),
            schedule_action: match v.action() {
                ScheduleAction::Create => pb::ScheduleAction::Create,
                ScheduleAction::Remove => pb::ScheduleAction::Remove,
            } as i32,
            operator_type: match v.operator_type {
                OperatorType::Add => pb::OperatorType::OAdd,
                OperatorType::Remove => pb::OperatorType::ORemove,
                OperatorType::Move => pb::OperatorType::OMove,
                OperatorType::Split => pb::OperatorType::OSplit,
                OperatorType::Merge => pb::OperatorType::OMerge,
            } as i32,
            maintainer_epoch: v.epoch.0,
        }
    }
}

impl From<&MergeRequest> for pb::MergeDispatcherRequest {
    fn from(v: &MergeRequest) -> Self {
        pb::MergeDispatcherRequest {
            changefeed_id: pb_changefeed(&v.changefeed),
            dispatcher_i_ds: v.sources.iter().filter_map(|id| pb_id(*id)).collect(),
            merged_dispatcher_id: pb_id(v.merged),
            mode: v.mode.as_i64(),
            maintainer_epoch: v.epoch.0,
        }
    }
}

impl From<&DispatcherStatus> for pb::TableSpanStatus {
    fn from(v: &DispatcherStatus) -> Self {
        pb::TableSpanStatus {
            id: pb_id(v.id),
            component_status: v.state.as_i32(),
            checkpoint_ts: v.checkpoint_ts,
            event_size_per_second: v.event_size_per_second,
            mode: v.mode.as_i64(),
        }
    }
}

impl From<&Heartbeat> for pb::HeartBeatRequest {
    fn from(v: &Heartbeat) -> Self {
        let watermark = |w: &Watermark| pb::Watermark {
            checkpoint_ts: w.checkpoint_ts,
            resolved_ts: w.resolved_ts,
            seq: w.seq,
            ..Default::default()
        };
        pb::HeartBeatRequest {
            changefeed_id: pb_changefeed(&v.changefeed),
            watermark: v.watermark.as_ref().map(watermark),
            redo_watermark: v.redo_watermark.as_ref().map(watermark),
            statuses: v.statuses.iter().map(pb::TableSpanStatus::from).collect(),
            compelete_status: v.complete,
            err: v.err.as_ref().map(pb::RunningError::from),
        }
    }
}

impl From<&BootstrapResponse> for pb::MaintainerBootstrapResponse {
    fn from(v: &BootstrapResponse) -> Self {
        pb::MaintainerBootstrapResponse {
            changefeed_id: pb_changefeed(&v.changefeed),
            spans: v
                .spans
                .iter()
                .map(|s| pb::BootstrapTableSpan {
                    id: pb_id(s.id),
                    schema_id: s.schema_id,
                    span: Some(pb_span(&s.span)),
                    component_status: s.state.as_i32(),
                    checkpoint_ts: s.checkpoint_ts,
                    block_state: s.block.as_deref().map(pb::State::from),
                    mode: s.mode.as_i64(),
                })
                .collect(),
            err: v.err.as_ref().map(pb::RunningError::from),
            checkpoint_ts: v.checkpoint_ts,
            redo_checkpoint_ts: v.redo_checkpoint_ts,
            operators: v.operators.iter().map(pb::ScheduleDispatcherRequest::from).collect(),
            maintainer_epoch: v.epoch.0,
            merge_operators: v.merge_operators.iter().map(pb::MergeDispatcherRequest::from).collect(),
        }
    }
}

impl From<&BootstrapRequest> for pb::MaintainerBootstrapRequest {
    fn from(v: &BootstrapRequest) -> Self {
        pb::MaintainerBootstrapRequest {
            changefeed_id: pb_changefeed(&v.changefeed),
            config: v.config.clone(),
            start_ts: v.start_ts,
            table_trigger_event_dispatcher_id: v.trigger.and_then(pb_id),
            is_new_changefeed: v.is_new_changefeed,
            table_trigger_redo_dispatcher_id: v.redo_trigger.and_then(pb_id),
            keyspace_id: v.keyspace_id,
            maintainer_epoch: v.epoch.0,
        }
    }
}

impl From<&PostBootstrapRequest> for pb::MaintainerPostBootstrapRequest {
    fn from(v: &PostBootstrapRequest) -> Self {
        pb::MaintainerPostBootstrapRequest {
            changefeed_id: pb_changefeed(&v.changefeed),
            table_trigger_event_dispatcher_id: v.trigger.and_then(pb_id),
            maintainer_epoch: v.epoch.0,
            ..Default::default()
        }
    }
}

impl From<&CloseRequest> for pb::MaintainerCloseRequest {
    fn from(v: &CloseRequest) -> Self {
        pb::MaintainerCloseRequest {
            changefeed_id: pb_changefeed(&v.changefeed),
            removed: v.removed,
            maintainer_epoch: v.epoch.0,
        }
    }
}

impl From<&CloseResponse> for pb::MaintainerCloseResponse {
    fn from(v: &CloseResponse) -> Self {
        pb::MaintainerCloseResponse {
            changefeed_id: pb_changefeed(&v.changefeed),
            success: v.success,
            maintainer_epoch: v.epoch.0,
        }
    }
}

impl From<&PostBootstrapResponse> for pb::MaintainerPostBootstrapResponse {
    fn from(v: &PostBootstrapResponse) -> Self {
        pb::MaintainerPostBootstrapResponse {
            changefeed_id: pb_changefeed(&v.changefeed),
            table_trigger_event_dispatcher_id: v.trigger.and_then(pb_id),
            err: v.err.as_ref().map(pb::RunningError::from),
            maintainer_epoch: v.epoch.0,
        }
    }
}

mod barrier;
mod coordination;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_response_by_value_equals_by_reference() {
        let span = |t, a: &[u8], b: &[u8]| pb::TableSpan {
            table_id: t,
            start_key: a.to_vec(),
            end_key: b.to_vec(),
            keyspace_id: 0,
        };
        let ok = pb::MaintainerBootstrapResponse {
            spans: vec![pb::BootstrapTableSpan {
                id: Some(pb::DispatcherId { high: 1, low: 2 }),
                span: Some(span(5, b"a", b"b")),
                checkpoint_ts: 9,
                block_state: Some(pb::State {
                    is_blocked: true,
                    block_ts: 7,
                    stage: 2,
                    ..Default::default()
                }),
                ..Default::default()
            }],
            checkpoint_ts: 3,
            maintainer_epoch: 4,
            ..Default::default()
        };
        assert_eq!(BootstrapResponse::try_from(ok.clone()), BootstrapResponse::try_from(&ok));
        let mut bad = ok.clone();
        bad.spans[0].span = Some(span(5, b"b", b"a"));
        assert_eq!(BootstrapResponse::try_from(bad.clone()), BootstrapResponse::try_from(&bad));
        assert!(BootstrapResponse::try_from(bad).is_err());
    }

    fn create_pb() -> pb::ScheduleDispatcherRequest {
        pb::ScheduleDispatcherRequest {
            changefeed_id: Some(pb::ChangefeedId {
                high: 1,
                low: 2,
                name: "cf".into(),
                keyspace: "ks".into(),
            }),
            config: Some(pb::DispatcherConfig {
                span: Some(pb::TableSpan {
                    table_id: 5,
                    start_key: b"a".to_vec(),
                    end_key: b"z".to_vec(),
                    keyspace_id: 0,
                }),
                start_ts: 42,
                dispatcher_id: Some(pb::DispatcherId { high: 0, low: 7 }),
                schema_id: 3,
                mode: 1,
                skip_dml_as_start_ts: true,
            }),
            schedule_action: 0,
            operator_type: 3,
            maintainer_epoch: 4,
        }
    }

    #[test]
    fn schedule_request_round_trips() {
        let p = create_pb();
        let d = ScheduleRequest::try_from(&p).unwrap();
        assert_eq!(d.config.mode, Mode::Redo);
        assert_eq!(d.operator_type, OperatorType::Split);
        assert_eq!(pb::ScheduleDispatcherRequest::from(&d), p);
    }

    #[test]
    fn missing_proto3_enums_decode_as_their_zero_values() {
        let mut p = create_pb();
        p.schedule_action = 0;
        p.operator_type = 0;
        let d = ScheduleRequest::try_from(&p).unwrap();
        assert_eq!((d.action(), d.operator_type), (ScheduleAction::Create, OperatorType::Add));
    }

    /// Hazard R7: the reference panics on a nil dispatcher id; here it is a named refusal.
    #[test]
    fn bad_requests_are_refused_with_a_named_field() {
        let mut p = create_pb();
        p.config.as_mut().unwrap().dispatcher_id = None;
        assert_eq!(
            ScheduleRequest::try_from(&p),
            Err(WireError::Missing { message: "ScheduleDispatcherRequest", field: "config.dispatcherID" })
        );
        let mut p = create_pb();
        p.config.as_mut().unwrap().dispatcher_id = Some(pb::DispatcherId { high: 0, low: 0 });
        assert!(matches!(ScheduleRequest::try_from(&p), Err(WireError::ZeroId { .. })));
        let mut p = create_pb();
        p.config.as_mut().unwrap().mode = 2;
        assert!(matches!(ScheduleRequest::try_from(&p), Err(WireError::Mode { value: 2, .. })));
        let mut p = create_pb();
        p.schedule_action = 9;
        assert!(matches!(
            ScheduleRequest::try_from(&p),
            Err(WireError::Enum { field: "scheduleAction", .. })
        ));
        let mut p = create_pb();
        p.config.as_mut().unwrap().span = None;
        assert!(matches!(
            ScheduleRequest::try_from(&p),
            Err(WireError::Missing { field: "config.span", .. })
        ));
        let mut p = create_pb();
        p.config.as_mut().unwrap().span.as_mut().unwrap().end_key = b"a".to_vec();
        assert!(matches!(ScheduleRequest::try_from(&p), Err(WireError::EmptySpan { .. })));
        let mut p = create_pb();
        p.config = None;
        assert!(matches!(ScheduleRequest::try_from(&p), Err(WireError::Missing { field: "config", .. })));
    }

    #[test]
    fn a_remove_needs_no_span() {
        let mut p = create_pb();
        p.schedule_action = 1;
        p.config.as_mut().unwrap().span = None;
        let d = ScheduleRequest::try_from(&p).unwrap();
        assert_eq!(d.action(), ScheduleAction::Remove);
        assert!(d.span().is_none());
    }

    #[test]
    fn merge_request_round_trips_and_refuses_zero_merged_id() {
        let p = pb::MergeDispatcherRequest {
            changefeed_id: Some(pb::ChangefeedId::default()),
            dispatcher_i_ds: vec![pb::DispatcherId { high: 0, low: 1 }, pb::DispatcherId { high: 0, low: 2 }],
            merged_dispatcher_id: Some(pb::DispatcherId { high: 0, low: 3 }),
            mode: 0,
            maintainer_epoch: 7,
        };
        let d = MergeRequest::try_from(&p).unwrap();
        assert_eq!(pb::MergeDispatcherRequest::from(&d), p);
        let mut zero = p.clone();
        zero.merged_dispatcher_id = Some(pb::DispatcherId { high: 0, low: 0 });
        assert!(matches!(MergeRequest::try_from(&zero), Err(WireError::ZeroId { .. })));
    }
}
