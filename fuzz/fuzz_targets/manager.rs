//! Arbitrary request/callback sequences against one dispatcher manager. After every step:
//! no two alive dispatchers of one mode overlap, and every journal entry is backed by the record
//! it concerns (a Create by a record still creating, a Remove by a live one): no leaked operator.
#![no_main]

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId};
use dispatcher_core::messages::*;
use dispatcher_core::node::{CreateTicket, DispatcherManager, Effect, ManagerConfig, Reaction};
use dispatcher_core::span::TableSpan;
use libfuzzer_sys::fuzz_target;

mod common;
use common::check;

const SPANS: [(&[u8], &[u8]); 5] = [(b"a", b"m"), (b"m", b"z"), (b"a", b"z"), (b"f", b"p"), (b"z", b"zz")];

struct World {
    dm: DispatcherManager,
    owner: (NodeId, u64),
    tickets: Vec<CreateTicket>,
}

impl World {
    fn absorb(&mut self, step: Reaction) {
        for e in step.effects {
            if let Effect::Create(t) = e {
                self.tickets.push(t);
            }
        }
    }
}

fn did(n: u8) -> DispatcherId {
    DispatcherId::new(0, u64::from(n % 8) + 1).unwrap()
}

fn mode(b: u8) -> Mode {
    if b & 0x80 == 0 { Mode::Default } else { Mode::Redo }
}

fn request(w: &World, b: &[u8; 3], action: ScheduleAction) -> (NodeId, ScheduleRequest) {
    let (s, e) = SPANS[usize::from(b[1]) % SPANS.len()];
    let stale = b[2] & 0x40 != 0;
    let epoch = if stale { w.owner.1.saturating_sub(1) } else { w.owner.1 };
    let request = ScheduleRequest {
        changefeed: ChangefeedId::default(),
        config: DispatcherConfig {
            id: did(b[0]),
            mode: mode(b[2]),
            start_ts: 100,
            schema_id: 1,
            skip_dml_as_start_ts: false,
        },
        order: Order::new(action, TableSpan::new(0, 1, s.to_vec(), e.to_vec())).expect("SPANS are valid"),
        operator_type: OperatorType::Move,
        epoch: Epoch(epoch),
    };
    (w.owner.0.clone(), request)
}

fuzz_target!(|data: &[u8]| {
    let dm = DispatcherManager::new(ManagerConfig {
        node: NodeId::new("n1"),
        changefeed: ChangefeedId::default(),
        keyspace_id: 0,
        redo_enabled: true,
    });
    dm.mark_redo_ready();
    let mut w = World { dm, owner: (NodeId::new("mt1"), 1), tickets: Vec::new() };
    let boot = |epoch| BootstrapRequest { start_ts: 1, epoch: Epoch(epoch), ..BootstrapRequest::default() };
    let first = w.dm.handle_bootstrap(&w.owner.0.clone(), &boot(1));
    w.absorb(first);
    for chunk in data.chunks_exact(4).take(64) {
        let b = [chunk[1], chunk[2], chunk[3]];
        let step = match chunk[0] % 9 {
            0 | 1 => {
                let (from, r) = request(&w, &b, ScheduleAction::Create);
                w.dm.handle_schedule(&from, r)
            }
            2 => {
                let (from, r) = request(&w, &b, ScheduleAction::Remove);
                w.dm.handle_schedule(&from, r)
            }
            3 if !w.tickets.is_empty() => {
                let t = w.tickets.remove(usize::from(b[0]) % w.tickets.len());
                let _ = w.dm.commit_create(&t);
                let _ = w.dm.dispatcher_state_changed(t.id(), t.mode(), ComponentState::Working, 100);
                continue;
            }
            4 if !w.tickets.is_empty() => {
                let t = w.tickets.remove(usize::from(b[0]) % w.tickets.len());
                w.dm.create_failed(&t, RunningError::default())
            }
            5 => w.dm.dispatcher_closed(did(b[0]), mode(b[2]), u64::from(b[1]), None),
            6 => {
                let state = ComponentState::from_i32(i32::from(b[1] % 7)).unwrap_or(ComponentState::Working);
                w.dm.dispatcher_state_changed(did(b[0]), mode(b[2]), state, u64::from(b[1]))
            }
            7 => {
                let request = MergeRequest {
                    changefeed: ChangefeedId::default(),
                    sources: vec![did(b[0]), did(b[1])],
                    merged: did(b[2]),
                    mode: mode(b[2]),
                    epoch: Epoch(w.owner.1),
                };
                w.dm.handle_merge(&w.owner.0.clone(), request)
            }
            _ => {
                if b[0] & 1 == 0 {
                    w.owner = (NodeId::new(&format!("mt{}", w.owner.1 + 1)), w.owner.1 + 1);
                }
                let owner = w.owner.clone();
                w.dm.handle_bootstrap(&owner.0, &boot(owner.1))
            }
        };
        w.absorb(step);
        check(&w.dm);
    }
});
