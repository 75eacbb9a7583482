//! Arbitrary event sequences against one maintainer: bootstrap answers with random spans,
//! journals and merges (from nodes, stale epochs and strangers), heartbeats with random statuses
//! and watermarks, membership changes, user requests and DDL. After every step: no panic, and the
//! span controllers' indexes agree with their records (no ghost span, absent iff unbound).
#![no_main]

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId};
use dispatcher_core::maintainer::{Ddl, Event, Maintainer, MaintainerConfig, MemorySchema, TableInfo};
use dispatcher_core::messages::*;
use dispatcher_core::span::TableSpan;
use libfuzzer_sys::fuzz_target;

const NODES: [&str; 4] = ["a", "b", "c", "x"];

fn node(b: u8) -> NodeId {
    NodeId::new(NODES[usize::from(b) % NODES.len()])
}

fn id(b: u8) -> DispatcherId {
    DispatcherId::new(0, u64::from(b % 16) + 1).unwrap()
}

fn mode(b: u8) -> Mode {
    if b & 0x80 == 0 { Mode::Default } else { Mode::Redo }
}

fn table(b: u8) -> TableInfo {
    TableInfo { keyspace_id: 0, table_id: i64::from(b % 4) + 1, schema_id: 1 }
}

/// A span of table `b % 4 + 1`: whole, or a half or a quarter of it.
fn span(b: u8) -> TableSpan {
    let whole = TableSpan::whole_table(0, i64::from(b % 4) + 1);
    match (b >> 2) % 4 {
        0 => whole,
        1 => whole.split_even(2).unwrap()[usize::from(b >> 4) % 2].clone(),
        2 => whole.split_even(4).unwrap()[usize::from(b >> 4) % 4].clone(),
        _ => TableSpan::table_trigger(0),
    }
}

fn state(b: u8) -> ComponentState {
    ComponentState::ALL[usize::from(b) % ComponentState::ALL.len()]
}

fn request(b: &[u8]) -> ScheduleRequest {
    ScheduleRequest {
        changefeed: ChangefeedId::default(),
        config: DispatcherConfig {
            id: id(b[0]),
            mode: mode(b[1]),
            start_ts: u64::from(b[4]) * 10,
            schema_id: 1,
            skip_dml_as_start_ts: false,
        },
        // A create always has its span (the wire refuses one without); a remove may lack it.
        order: match (b[2] & 2 == 0, b[2] & 1 == 0) {
            (true, _) => Order::Create { span: span(b[3]) },
            (false, with_span) => Order::Remove { span: with_span.then(|| span(b[3])) },
        },
        operator_type: [OperatorType::Add, OperatorType::Remove, OperatorType::Move, OperatorType::Split, OperatorType::Merge]
            [usize::from(b[2] >> 2) % 5],
        epoch: Epoch(u64::from(b[1] % 3) + 5),
    }
}

fuzz_target!(|data: &[u8]| {
    let mut schema = MemorySchema::new();
    for t in 1..=3 {
        schema.apply(1, Ddl::Create(table(t - 1)));
    }
    let mut cfg = MaintainerConfig::new(ChangefeedId::default(), node(0), Epoch(7), 100);
    cfg.redo = data.first().is_some_and(|b| b & 1 == 1);
    cfg.balance = data.first().is_some_and(|b| b & 2 == 2);
    let mut m = Maintainer::new(cfg, Box::new(schema), &[node(0), node(1), node(2)]);
    let mut now = 0u64;
    for chunk in data.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        now += u64::from(b[7]) * 10;
        let event = match b[0] % 12 {
            0 | 1 => {
                let mut response = BootstrapResponse {
                    epoch: Epoch(if b[1] & 3 == 0 { 6 } else { 7 }),
                    checkpoint_ts: u64::from(b[2]) * 5,
                    ..Default::default()
                };
                for i in 0..usize::from(b[3] % 6) {
                    let k = b[4].wrapping_add(i as u8 * 37);
                    response.spans.push(BootstrapSpan {
                        id: id(k),
                        mode: mode(k),
                        schema_id: 1,
                        span: span(k.wrapping_mul(7)),
                        state: state(k >> 3),
                        checkpoint_ts: u64::from(k) * 3,
                        block: None,
                    });
                }
                if b[5] & 1 == 1 {
                    response.operators.push(request(&b[2..7]));
                }
                if b[5] & 2 == 2 {
                    response.merge_operators.push(MergeRequest {
                        changefeed: ChangefeedId::default(),
                        sources: vec![id(b[6]), id(b[6].wrapping_add(1))],
                        merged: id(b[6].wrapping_add(2)),
                        mode: mode(b[6]),
                        epoch: Epoch(6),
                    });
                }
                Event::BootstrapResponse { from: node(b[6]), response }
            }
            2 | 3 | 4 => {
                let statuses = (0..usize::from(b[1] % 4))
                    .map(|i| {
                        let k = b[2].wrapping_add(i as u8 * 53);
                        DispatcherStatus {
                            id: id(k),
                            mode: mode(k),
                            state: state(k >> 2),
                            checkpoint_ts: u64::from(b[3]) * 7,
                            event_size_per_second: 0.0,
                        }
                    })
                    .collect();
                let w = |x: u8| Watermark { checkpoint_ts: u64::from(x) * 11, resolved_ts: 0, seq: u64::from(x % 5) };
                let heartbeat = Heartbeat {
                    watermark: (b[4] & 1 == 1).then(|| w(b[5])),
                    redo_watermark: (b[4] & 2 == 2).then(|| w(b[6])),
                    statuses,
                    ..Default::default()
                };
                Event::Heartbeat { from: node(b[6]), heartbeat }
            }
            5 => Event::Tick,
            6 => Event::NodeJoined(node(b[1])),
            7 => Event::NodeLeft(node(b[1])),
            8 => Event::MoveSpan { mode: mode(b[1]), id: id(b[2]), to: node(b[3]) },
            9 => Event::SplitSpan { mode: mode(b[1]), id: id(b[2]), into: usize::from(b[3] % 5) },
            10 => Event::MergeSpans { mode: mode(b[1]), ids: vec![id(b[2]), id(b[3]), id(b[4])][..2 + usize::from(b[5] % 2)].to_vec() },
            _ => match b[1] % 4 {
                0 => Event::CreateTable { table: table(b[2]), spans: usize::from(b[3] % 4), commit_ts: u64::from(b[4]) * 9 },
                1 => Event::DropTable { table: table(b[2]), commit_ts: u64::from(b[4]) * 9 },
                2 => Event::TruncateTable { table: table(b[2]), new_table: table(b[3]), commit_ts: u64::from(b[4]) * 9 },
                _ => Event::Stop,
            },
        };
        let _ = m.step(now, event);
        for md in m.modes().collect::<Vec<_>>() {
            if let Err(e) = m.view(md).unwrap().spans.check_indexes() {
                panic!("{md:?}: {e}");
            }
        }
    }
});
