//! The barrier's messages against the cores that consume them. On the maintainer side: block
//! status requests (as raw bytes through the wire decoder, so unset fields arrive as the wire's
//! defaults, barrier.md H-L; and built from the input with every stage, scope and table-set
//! change) interleaved with ticks, trigger progress and bootstrap answers carrying block states.
//! On the node side: heartbeat responses as raw bytes (an empty action is a Write, an empty
//! influence is All) answered by dispatchers' barrier state machines. After every step: no
//! panic, the span controllers' indexes agree with their records, and no dispatcher counts more
//! unacknowledged reports than it made.
#![no_main]

use std::sync::Arc;

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId};
use dispatcher_core::maintainer::{Ddl, Event, Maintainer, MaintainerConfig, MemorySchema, TableInfo};
use dispatcher_core::messages::*;
use dispatcher_core::node::barrier::{BlockEvent, DispatcherBarrier, Step};
use dispatcher_core::span::TableSpan;
use dispatcher_core::wire::{decode_to_maintainer, decode_to_node};
use libfuzzer_sys::fuzz_target;

const NODES: [&str; 3] = ["a", "b", "c"];

fn node(b: u8) -> NodeId {
    NodeId::new(NODES[usize::from(b) % NODES.len()])
}

fn id(b: u8) -> DispatcherId {
    DispatcherId::new(0, u64::from(b % 8) + 1).unwrap()
}

fn table(t: i64) -> TableInfo {
    TableInfo { keyspace_id: 0, table_id: t, schema_id: 1 + t % 2 }
}

fn tables(b: u8) -> InfluencedTables {
    match b % 3 {
        0 => InfluencedTables { kind: InfluenceKind::All, table_ids: Vec::new(), schema_id: 0 },
        1 => InfluencedTables { kind: InfluenceKind::Db, table_ids: Vec::new(), schema_id: i64::from(b >> 2) % 3 },
        _ => InfluencedTables {
            kind: InfluenceKind::Normal,
            table_ids: (0..i64::from(b >> 6) + 1).map(|i| (i64::from(b >> 2) + i) % 5).collect(),
            schema_id: 0,
        },
    }
}

fn state(b: &[u8; 8]) -> BlockState {
    let detail = BlockDetail {
        block_tables: (b[3] & 1 == 1).then(|| tables(b[4])),
        need_dropped_tables: (b[3] & 2 == 2).then(|| tables(b[5])),
        need_added_tables: if b[3] & 4 == 4 {
            vec![AddedTable { table_id: i64::from(b[5] % 6) + 1, schema_id: 1, splitable: true }]
        } else {
            Vec::new()
        },
        updated_schemas: if b[3] & 8 == 8 {
            vec![SchemaIdChange { table_id: i64::from(b[5] % 4) + 1, old_schema_id: 1, new_schema_id: 2 }]
        } else {
            Vec::new()
        },
        route_table_admissions: Vec::new(),
    };
    BlockState {
        is_blocked: b[3] & 16 == 0,
        block_ts: 100 + u64::from(b[2] % 16) * 10,
        is_sync_point: b[2] & 0x80 != 0,
        stage: BlockStage::ALL[usize::from(b[1]) % 4],
        detail: Arc::new(detail),
    }
}

fn spans() -> Vec<(NodeId, BootstrapSpan)> {
    let mut out = Vec::new();
    for t in 1..=4i64 {
        let whole = TableSpan::whole_table(0, t);
        let parts = if t % 2 == 0 { whole.split_even(2).unwrap() } else { vec![whole] };
        for (i, span) in parts.into_iter().enumerate() {
            let k = (t * 2 + i as i64) as u8;
            out.push((
                node(k),
                BootstrapSpan {
                    id: id(k),
                    mode: Mode::Default,
                    schema_id: table(t).schema_id,
                    span,
                    state: ComponentState::Working,
                    checkpoint_ts: 100,
                    block: None,
                },
            ));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut schema = MemorySchema::new();
    for t in 1..=4 {
        schema.apply(1, Ddl::Create(table(t)));
    }
    let cfg = MaintainerConfig::new(ChangefeedId::default(), node(0), Epoch(7), 100);
    let mut m = Maintainer::new(cfg, Box::new(schema), &[node(0), node(1), node(2)]);
    let trigger = m.view(Mode::Default).unwrap().trigger;
    let mut dispatchers: Vec<(DispatcherBarrier, usize)> = (0..4).map(|i| (DispatcherBarrier::new(i == 0), 0)).collect();
    let mut now = 0u64;
    let mut bootstrapped = false;
    for chunk in data.chunks(8) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        now += u64::from(b[7]) * 10;
        if !bootstrapped {
            // Every node answers, some spans carrying a block state (B17).
            bootstrapped = true;
            let _ = m.step(now, Event::Tick);
            let all = spans();
            for n in 0..3u8 {
                let mut response = BootstrapResponse { epoch: Epoch(7), checkpoint_ts: 100, ..Default::default() };
                for (at, mut s) in all.iter().filter(|(at, _)| *at == node(n)).cloned() {
                    let _ = at;
                    if b[0] & (1 << (s.id.low() % 8)) != 0 {
                        s.block = Some(Box::new(state(&b)));
                    }
                    response.spans.push(s);
                }
                let _ = m.step(now, Event::BootstrapResponse { from: node(n), response });
            }
            continue;
        }
        match b[0] % 8 {
            // Raw bytes through the wire: whatever decodes is handled.
            0 => {
                if let Ok(message) = decode_to_maintainer(MessageKind::BlockStatusRequest, &chunk[1..]) {
                    if let Some(event) = Event::received(node(b[1]), message) {
                        let _ = m.step(now, event);
                    }
                }
            }
            1..=3 => {
                let who = if b[6] % 5 == 0 { trigger } else { id(b[6]) };
                let status = BlockStatus { id: who, mode: Mode::Default, state: state(&b) };
                let request =
                    BlockStatusRequest { changefeed: ChangefeedId::default(), statuses: vec![status], mode: Mode::Default };
                let _ = m.step(now, Event::BlockStatus { from: node(b[5]), request });
            }
            4 => {
                let status = DispatcherStatus {
                    id: trigger,
                    mode: Mode::Default,
                    state: ComponentState::Working,
                    checkpoint_ts: 100 + u64::from(b[1]) * 3,
                    event_size_per_second: 0.0,
                };
                let heartbeat = Heartbeat { statuses: vec![status], ..Default::default() };
                let _ = m.step(now, Event::Heartbeat { from: node(0), heartbeat });
            }
            5 => {
                let _ = m.step(now, Event::Tick);
            }
            // The node side: a heartbeat response as raw bytes, answered by a dispatcher.
            6 => {
                if let Ok(ToNode::Barrier(response)) = decode_to_node(MessageKind::HeartBeatResponse, &chunk[1..]) {
                    for answer in &response.answers {
                        let (d, reports) = &mut dispatchers[usize::from(b[1]) % 4];
                        let steps = d.answer(answer, 100 + u64::from(b[2]), now);
                        *reports += steps.iter().filter(|s| matches!(s, Step::Report(_))).count();
                    }
                }
            }
            _ => {
                let (d, reports) = &mut dispatchers[usize::from(b[1]) % 4];
                let event = BlockEvent {
                    commit_ts: 100 + u64::from(b[2] % 16) * 10,
                    is_sync_point: b[2] & 0x80 != 0,
                    blocking: b[3] & 1 == 1,
                    wide: b[3] & 2 == 2,
                    not_sync: b[3] & 4 == 4,
                    detail: state(&b).detail,
                };
                let steps = match b[4] % 4 {
                    0 => d.meet(event).unwrap_or_default(),
                    1 => d.flushed(now).unwrap_or_default(),
                    2 => d.done(now).unwrap_or_default(),
                    _ => d.tick(now),
                };
                *reports += steps.iter().filter(|s| matches!(s, Step::Report(_))).count();
            }
        }
        if let Err(e) = m.view(Mode::Default).unwrap().spans.check_indexes() {
            panic!("{e}");
        }
        for (d, reports) in &dispatchers {
            assert!(d.unacknowledged() <= *reports, "more reports awaiting an ACK than were made (B19)");
        }
    }
});
