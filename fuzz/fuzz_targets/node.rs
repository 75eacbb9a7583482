//! Arbitrary bytes of arbitrary message kinds through the node's one entry point, the path the
//! simulator's deliveries take: `wire::decode_to_node`, then `Orchestrator::handle`. What does
//! not decode is refused by the wire; what decodes is handled; nothing panics, and after every
//! message each manager keeps the invariants of `common::check`. A valid bootstrap of the
//! default changefeed runs first, so that decoded requests (a missing changefeed id decodes as
//! the default one) reach a manager; the creates a step asks for are built at once.
#![no_main]

use dispatcher_core::ids::{Epoch, NodeId};
use dispatcher_core::messages::{BootstrapRequest, MessageKind, ToNode};
use dispatcher_core::node::{Effect, Orchestrator, Reaction};
use dispatcher_core::wire::decode_to_node;
use libfuzzer_sys::fuzz_target;

mod common;

fn absorb(node: &Orchestrator, step: Reaction) {
    for effect in step.effects {
        if let Effect::Create(ticket) = effect {
            for manager in node.managers() {
                let _ = manager.commit_create(&ticket);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let node = Orchestrator::new(NodeId::new("n1")).with_redo(true);
    let boot = BootstrapRequest { start_ts: 1, epoch: Epoch(1), ..BootstrapRequest::default() };
    let first = node.handle(&NodeId::new("m1"), ToNode::Bootstrap(boot));
    absorb(&node, first);
    for manager in node.managers() {
        manager.mark_redo_ready();
    }
    // Frames: kind, sender, length, then that many bytes of the message.
    let mut rest = data;
    while let [kind, from, len, tail @ ..] = rest {
        let kind = MessageKind::ALL[usize::from(*kind) % MessageKind::ALL.len()];
        let from = NodeId::new(&format!("m{}", from % 3));
        let (bytes, tail) = tail.split_at(usize::from(*len).min(tail.len()));
        rest = tail;
        let Ok(message) = decode_to_node(kind, bytes) else { continue };
        let step = node.handle(&from, message);
        absorb(&node, step);
        for manager in node.managers() {
            common::check(&manager);
        }
    }
});
