//! The wire forms of the heartbeat path: requests and responses round trip, a response without
//! influenced dispatchers is refused, and the direct encoder writes what prost writes.

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Mode};
use dispatcher_core::messages::*;
use dispatcher_core::wire::pb;
use proptest::prelude::*;

use super::{answer, block, request_of, response};
use crate::node::manager::id;

#[test]
fn a_response_without_influenced_dispatchers_is_refused_at_the_wire() {
    let p = pb::HeartBeatResponse {
        changefeed_id: None,
        dispatcher_statuses: vec![pb::DispatcherStatus::default()],
        mode: 0,
        maintainer_epoch: 2,
    };
    assert!(matches!(
        HeartBeatResponse::try_from(&p),
        Err(dispatcher_core::wire::WireError::Missing { field: "influencedDispatchers", .. })
    ));
    let ok = response(2, Mode::Redo, vec![answer(Influence::Db { schema_id: 4 }), answer(Influence::All)]);
    let wire = pb::HeartBeatResponse::from(&ok);
    let influenced = |s: &pb::DispatcherStatus| s.influenced_dispatchers.clone().unwrap();
    assert!(wire.dispatcher_statuses.iter().all(|s| influenced(s).exclude_dispatcher_id.is_some()));
    assert_eq!(HeartBeatResponse::try_from(&wire), Ok(ok));
}

#[test]
fn heartbeat_request_round_trips_through_the_wire() {
    let request = Heartbeat {
        changefeed: ChangefeedId { high: 1, low: 2, name: "cf".into(), keyspace: "ks".into() },
        watermark: Some(Watermark { checkpoint_ts: 5, resolved_ts: 6, seq: 7 }),
        redo_watermark: Some(Watermark::NONE),
        statuses: vec![DispatcherStatus {
            id: id(3),
            mode: Mode::Redo,
            state: ComponentState::Stopped,
            checkpoint_ts: 9,
            event_size_per_second: 1.5,
        }],
        complete: true,
        err: None,
    };
    let wire = pb::HeartBeatRequest::from(&request);
    assert!(wire.compelete_status);
    assert_eq!(Heartbeat::try_from(&wire), Ok(request));
}

#[test]
fn block_status_request_round_trips_through_the_wire() {
    let r = request_of(vec![block(1, BlockStage::Done, true, Mode::Default)]);
    let wire = pb::BlockStatusRequest::from(&r);
    assert_eq!(BlockStatusRequest::try_from(&wire), Ok(r));
}

proptest! {
    /// The direct encoder writes exactly what prost writes for the same request.
    #[test]
    fn direct_heartbeat_encoding_equals_prost(
        high in any::<u64>(), low in any::<u64>(), name in ".{0,8}",
        wm in proptest::option::of((any::<u64>(), any::<u64>(), any::<u64>())),
        rows in proptest::collection::vec((1u64..u64::MAX, 0usize..7, any::<u64>(), prop_oneof![Just(0.0f32), any::<f32>()], any::<bool>()), 0..20),
        complete in any::<bool>(),
        err in proptest::option::of(".{0,6}"),
    ) {
        let request = Heartbeat {
            changefeed: ChangefeedId { high, low, name: name.clone(), keyspace: name },
            watermark: wm.map(|(c, r, s)| Watermark { checkpoint_ts: c, resolved_ts: r, seq: s }),
            redo_watermark: Some(Watermark::NONE),
            statuses: rows.into_iter().map(|(d, st, c, rate, redo)| DispatcherStatus {
                id: DispatcherId::new(d, d.rotate_left(7)).unwrap(),
                mode: if redo { Mode::Redo } else { Mode::Default },
                state: ComponentState::ALL[st],
                checkpoint_ts: c,
                event_size_per_second: rate,
            }).collect(),
            complete,
            err: err.map(|m| RunningError { code: "E".into(), message: m, ..RunningError::default() }),
        };
        use prost::Message;
        let direct = dispatcher_core::wire::heartbeat_to_vec(&request);
        prop_assert_eq!(direct.len(), dispatcher_core::wire::heartbeat_len(&request));
        prop_assert_eq!(direct, pb::HeartBeatRequest::from(&request).encode_to_vec());
    }
}
