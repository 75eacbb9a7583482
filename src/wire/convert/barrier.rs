//! The heartbeat path's answers and the barrier's messages: barrier answers, heartbeat responses,
//! checkpoint and redo messages, block states and block statuses. Validated the same way as the
//! rest of [`super`].

use super::*;

fn barrier_event(commit_ts: u64, is_sync_point: bool) -> BarrierEvent {
    BarrierEvent { commit_ts, is_sync_point }
}

impl TryFrom<&pb::DispatcherStatus> for BarrierAnswer {
    type Error = WireError;

    fn try_from(v: &pb::DispatcherStatus) -> Result<Self, WireError> {
        const M: &str = "HeartBeatResponse.DispatcherStatus";
        // The reference dereferences a nil influencedDispatchers (a panic); here it is refused.
        let inf = required(v.influenced_dispatchers.as_ref(), M, "influencedDispatchers")?;
        let influence = match pb::InfluenceType::try_from(inf.influence_type) {
            Ok(pb::InfluenceType::All) => Influence::All,
            Ok(pb::InfluenceType::Db) => Influence::Db { schema_id: inf.schema_id },
            Ok(pb::InfluenceType::Normal) => Influence::Normal {
                ids: inf
                    .dispatcher_i_ds
                    .iter()
                    .map(|id| dispatcher_id(Some(id), M, "DispatcherIDs"))
                    .collect::<Result<_, _>>()?,
            },
            Err(_) => {
                return Err(WireError::Enum { message: M, field: "InfluenceType", value: inf.influence_type })
            }
        };
        let action = match &v.action {
            None => None,
            Some(a) => Some(BarrierAction {
                pass: match pb::Action::try_from(a.action) {
                    Ok(pb::Action::Write) => false,
                    Ok(pb::Action::Pass) => true,
                    Err(_) => return Err(WireError::Enum { message: M, field: "action", value: a.action }),
                },
                event: barrier_event(a.commit_ts, a.is_sync_point),
            }),
        };
        Ok(BarrierAnswer {
            influence,
            action,
            ack: v.ack.as_ref().map(|a| barrier_event(a.commit_ts, a.is_sync_point)),
            ignored: v.ignored_block_status.as_ref().map(|a| barrier_event(a.commit_ts, a.is_sync_point)),
        })
    }
}

impl From<&BarrierAnswer> for pb::DispatcherStatus {
    fn from(v: &BarrierAnswer) -> Self {
        let zero = Some(pb::DispatcherId { high: 0, low: 0 });
        let influenced = match &v.influence {
            // Old nodes dereference excludeDispatcherId for All and DB: send the all-zero id.
            Influence::All => pb::InfluencedDispatchers {
                influence_type: pb::InfluenceType::All as i32,
                exclude_dispatcher_id: zero,
                ..Default::default()
            },
            Influence::Db { schema_id } => pb::InfluencedDispatchers {
                influence_type: pb::InfluenceType::Db as i32,
                schema_id: *schema_id,
                exclude_dispatcher_id: zero,
                ..Default::default()
            },
            Influence::Normal { ids } => pb::InfluencedDispatchers {
                influence_type: pb::InfluenceType::Normal as i32,
                dispatcher_i_ds: ids.iter().filter_map(|id| pb_id(*id)).collect(),
                ..Default::default()
            },
        };
        pb::DispatcherStatus {
            influenced_dispatchers: Some(influenced),
            action: v.action.map(|a| pb::DispatcherAction {
                action: if a.pass { pb::Action::Pass } else { pb::Action::Write } as i32,
                commit_ts: a.event.commit_ts,
                is_sync_point: a.event.is_sync_point,
            }),
            ack: v.ack.map(|a| pb::Ack { commit_ts: a.commit_ts, is_sync_point: a.is_sync_point }),
            ignored_block_status: v
                .ignored
                .map(|a| pb::IgnoredBlockStatus { commit_ts: a.commit_ts, is_sync_point: a.is_sync_point }),
        }
    }
}

impl TryFrom<&pb::HeartBeatResponse> for HeartBeatResponse {
    type Error = WireError;

    fn try_from(v: &pb::HeartBeatResponse) -> Result<Self, WireError> {
        Ok(HeartBeatResponse {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            answers: v.dispatcher_statuses.iter().map(BarrierAnswer::try_from).collect::<Result<_, _>>()?,
            mode: mode(v.mode, "HeartBeatResponse")?,
            epoch: Epoch(v.maintainer_epoch),
        })
    }
}

impl From<&HeartBeatResponse> for pb::HeartBeatResponse {
    fn from(v: &HeartBeatResponse) -> Self {
        pb::HeartBeatResponse {
            changefeed_id: pb_changefeed(&v.changefeed),
            dispatcher_statuses: v.answers.iter().map(pb::DispatcherStatus::from).collect(),
            mode: v.mode.as_i64(),
            maintainer_epoch: v.epoch.0,
        }
    }
}

impl From<&pb::CheckpointTsMessage> for CheckpointTsMessage {
    fn from(v: &pb::CheckpointTsMessage) -> Self {
        CheckpointTsMessage {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            checkpoint_ts: v.checkpoint_ts,
        }
    }
}

impl From<&CheckpointTsMessage> for pb::CheckpointTsMessage {
    fn from(v: &CheckpointTsMessage) -> Self {
        pb::CheckpointTsMessage {
            changefeed_id: pb_changefeed(&v.changefeed),
            checkpoint_ts: v.checkpoint_ts,
        }
    }
}

impl From<&pb::RedoMetaMessage> for RedoMetaMessage {
    fn from(v: &pb::RedoMetaMessage) -> Self {
        RedoMetaMessage {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            resolved_ts: v.resolved_ts,
            checkpoint_ts: v.checkpoint_ts,
            epoch: Epoch(v.maintainer_epoch),
        }
    }
}

impl From<&pb::RedoResolvedTsForwardMessage> for RedoResolvedTsForward {
    fn from(v: &pb::RedoResolvedTsForwardMessage) -> Self {
        RedoResolvedTsForward {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            resolved_ts: v.resolved_ts,
            epoch: Epoch(v.maintainer_epoch),
        }
    }
}

fn influence_kind(v: i32, message: &'static str) -> Result<InfluenceKind, WireError> {
    match pb::InfluenceType::try_from(v) {
        Ok(pb::InfluenceType::All) => Ok(InfluenceKind::All),
        Ok(pb::InfluenceType::Db) => Ok(InfluenceKind::Db),
        Ok(pb::InfluenceType::Normal) => Ok(InfluenceKind::Normal),
        Err(_) => Err(WireError::Enum { message, field: "InfluenceType", value: v }),
    }
}

fn pb_influence_kind(v: InfluenceKind) -> i32 {
    match v {
        InfluenceKind::All => pb::InfluenceType::All as i32,
        InfluenceKind::Db => pb::InfluenceType::Db as i32,
        InfluenceKind::Normal => pb::InfluenceType::Normal as i32,
    }
}

fn influenced_tables(v: &pb::InfluencedTables, message: &'static str) -> Result<InfluencedTables, WireError> {
    Ok(InfluencedTables {
        kind: influence_kind(v.influence_type, message)?,
        table_ids: v.table_i_ds.clone(),
        schema_id: v.schema_id,
    })
}

fn pb_influenced_tables(v: &InfluencedTables) -> pb::InfluencedTables {
    pb::InfluencedTables {
        influence_type: pb_influence_kind(v.kind),
        table_i_ds: v.table_ids.clone(),
        schema_id: v.schema_id,
    }
}

impl TryFrom<&pb::State> for BlockState {
    type Error = WireError;

    fn try_from(v: &pb::State) -> Result<Self, WireError> {
        const M: &str = "State";
        let detail = BlockDetail {
            block_tables: v.block_tables.as_ref().map(|t| influenced_tables(t, M)).transpose()?,
            need_dropped_tables: v
                .need_dropped_tables
                .as_ref()
                .map(|t| influenced_tables(t, M))
                .transpose()?,
            need_added_tables: v
                .need_added_tables
                .iter()
                .map(|t| AddedTable { table_id: t.table_id, schema_id: t.schema_id, splitable: t.splitable })
                .collect(),
            updated_schemas: v
                .updated_schemas
                .iter()
                .map(|c| SchemaIdChange {
                    table_id: c.table_id,
                    old_schema_id: c.old_schema_id,
                    new_schema_id: c.new_schema_id,
                })
                .collect(),
            route_table_admissions: v
                .route_table_admissions
                .iter()
                .map(|r| RouteTableAdmission {
                    source_schema: r.source_schema_name.clone(),
                    source_table: r.source_table_name.clone(),
                    target_schema: r.target_schema_name.clone(),
                    target_table: r.target_table_name.clone(),
                    action: r.action,
                })
                .collect(),
        };
        Ok(BlockState {
            is_blocked: v.is_blocked,
            block_ts: v.block_ts,
            is_sync_point: v.is_sync_point,
            stage: BlockStage::from_i32(v.stage).ok_or(WireError::Enum {
                message: M,
                field: "stage",
                value: v.stage,
            })?,
            detail: std::sync::Arc::new(detail),
        })
    }
}

impl From<&BlockState> for pb::State {
    fn from(v: &BlockState) -> Self {
        let d = &*v.detail;
        pb::State {
            is_blocked: v.is_blocked,
            block_ts: v.block_ts,
            block_tables: d.block_tables.as_ref().map(pb_influenced_tables),
            need_dropped_tables: d.need_dropped_tables.as_ref().map(pb_influenced_tables),
            need_added_tables: d
                .need_added_tables
                .iter()
                .map(|t| pb::Table { table_id: t.table_id, schema_id: t.schema_id, splitable: t.splitable })
                .collect(),
            updated_schemas: d
                .updated_schemas
                .iter()
                .map(|c| pb::SchemaIdChange {
                    table_id: c.table_id,
                    old_schema_id: c.old_schema_id,
                    new_schema_id: c.new_schema_id,
                })
                .collect(),
            is_sync_point: v.is_sync_point,
            stage: v.stage.as_i32(),
            route_table_admissions: d
                .route_table_admissions
                .iter()
                .map(|r| pb::RouteTableAdmission {
                    source_schema_name: r.source_schema.clone(),
                    source_table_name: r.source_table.clone(),
                    target_schema_name: r.target_schema.clone(),
                    target_table_name: r.target_table.clone(),
                    action: r.action,
                })
                .collect(),
        }
    }
}

impl TryFrom<&pb::BlockStatusRequest> for BlockStatusRequest {
    type Error = WireError;

    fn try_from(v: &pb::BlockStatusRequest) -> Result<Self, WireError> {
        const M: &str = "TableSpanBlockStatus";
        let statuses = v
            .block_statuses
            .iter()
            .map(|s| {
                Ok(BlockStatus {
                    id: dispatcher_id(s.id.as_ref(), M, "ID")?,
                    mode: mode(s.mode, M)?,
                    state: BlockState::try_from(required(s.state.as_ref(), M, "state")?)?,
                })
            })
            .collect::<Result<_, WireError>>()?;
        Ok(BlockStatusRequest {
            changefeed: changefeed(v.changefeed_id.as_ref()),
            statuses,
            mode: mode(v.mode, "BlockStatusRequest")?,
        })
    }
}

impl From<&BlockStatusRequest> for pb::BlockStatusRequest {
    fn from(v: &BlockStatusRequest) -> Self {
        pb::BlockStatusRequest {
            changefeed_id: pb_changefeed(&v.changefeed),
            block_statuses: v
                .statuses
                .iter()
                .map(|s| pb::TableSpanBlockStatus {
                    id: pb_id(s.id),
                    state: Some(pb::State::from(&s.state)),
                    mode: s.mode.as_i64(),
                })
                .collect(),
            mode: v.mode.as_i64(),
        }
    }
}
