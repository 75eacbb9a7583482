//! Property test: arbitrary interleavings of membership changes, ticks, bootstrap answers,
//! maintainer statuses (any changefeed, epoch, state), liveness reports, users' requests, store
//! failures and held store replies, against the coordinator and an in-memory store.
//!
//! Checked after every step: nothing panics; an epoch is added on one node only (K4) and only
//! once the store has it (K3); a cascade remove of a changefeed the store keeps is sent only while
//! its stored lifecycle says it must stop (K13); stored checkpoints only go up (K11, asserted by
//! the store itself).

use std::collections::BTreeMap;

use dispatcher_core::coordinator::*;
use dispatcher_core::ids::{Epoch, NodeId};
use dispatcher_core::messages::*;
use proptest::prelude::*;

use super::harness::*;

const NAMES: [&str; 3] = ["a", "b", "c"];

#[derive(Clone, Debug)]
enum Action {
    Members(Vec<(u32, u64)>),
    Tick(u64),
    Bootstrap(u32, Vec<(u8, u64, bool, bool)>),
    Report(u32, Vec<(u8, u64, bool, bool)>),
    Liveness(u32, u8),
    Create(u8),
    Pause(u8),
    Resume(u8),
    Remove(u8),
    Move(u8, u32),
    Fail(u8),
    Hold(bool),
    Release,
}

fn statuses() -> impl Strategy<Value = Vec<(u8, u64, bool, bool)>> {
    proptest::collection::vec((0..3u8, 1..8u64, any::<bool>(), any::<bool>()), 0..3)
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => proptest::collection::vec((1..4u32, 1..3u64), 0..4).prop_map(Action::Members),
        4 => (1..1_500u64).prop_map(Action::Tick),
        2 => (1..4u32, statuses()).prop_map(|(n, s)| Action::Bootstrap(n, s)),
        4 => (1..4u32, statuses()).prop_map(|(n, s)| Action::Report(n, s)),
        1 => (1..4u32, 0..3u8).prop_map(|(n, l)| Action::Liveness(n, l)),
        1 => (0..3u8).prop_map(Action::Create),
        1 => (0..3u8).prop_map(Action::Pause),
        1 => (0..3u8).prop_map(Action::Resume),
        1 => (0..3u8).prop_map(Action::Remove),
        1 => (0..3u8, 1..4u32).prop_map(|(c, n)| Action::Move(c, n)),
        1 => (0..3u8).prop_map(Action::Fail),
        1 => any::<bool>().prop_map(Action::Hold),
        2 => Just(Action::Release),
    ]
}

fn to_statuses(list: &[(u8, u64, bool, bool)]) -> Vec<MaintainerStatus> {
    list.iter()
        .map(|&(c, epoch, working, done)| {
            let mut s = status(NAMES[usize::from(c)], epoch, working, 500);
            s.bootstrap_done = working && done;
            s
        })
        .collect()
}

/// The model's checks on what was sent since the last call.
fn check(c: &mut Cluster, added: &mut BTreeMap<(String, Epoch), NodeId>) -> Result<(), TestCaseError> {
    for (to, message) in c.take_sent() {
        match message {
            ToManager::AddMaintainer(add) => {
                let name = add.changefeed.name.clone();
                let stored = c.store.get(&name).map(|s| s.epoch);
                prop_assert!(
                    stored.is_some_and(|e| e >= add.epoch),
                    "K3: {name}@{} sent, store has {stored:?}",
                    add.epoch.0
                );
                let first = added.entry((name.clone(), add.epoch)).or_insert_with(|| to.clone());
                prop_assert_eq!(&*first, &to, "K4: {}@{} added on two nodes", name, add.epoch.0);
            }
            ToManager::RemoveMaintainer(remove) if remove.cascade => {
                if let Some(s) = c.store.get(&remove.changefeed.name) {
                    let must_stop = s.progress != Progress::None || s.state != FeedState::Normal;
                    prop_assert!(
                        must_stop,
                        "K13: cascade remove of running {}: {:?}",
                        remove.changefeed.name,
                        s
                    );
                }
            }
            _ => {}
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_coordinator_keeps_k3_k4_k11_k13_under_any_interleaving(
        actions in proptest::collection::vec(action(), 1..120)
    ) {
        let mut c = Cluster::new(vec![running("a", 2), stored("b", 1, FeedState::Stopped, Progress::None)]);
        let mut added = BTreeMap::new();
        for (next_request, action) in (1..).zip(actions) {
            match action {
                Action::Members(list) => {
                    let mut members: BTreeMap<u32, u64> = BTreeMap::new();
                    for (n, inc) in list {
                        members.insert(n, u64::from(n) * 10 + inc);
                    }
                    let members = members.into_iter().map(|(n, inc)| Member { node: node(n), incarnation: inc }).collect();
                    c.step(Event::Members(members));
                }
                Action::Tick(ms) => c.tick(ms),
                Action::Bootstrap(n, list) => {
                    let response = CoordinatorBootstrapResponse { statuses: to_statuses(&list), ..Default::default() };
                    for inc in [u64::from(n) * 10 + 1, u64::from(n) * 10 + 2] {
                        let message = ToCoordinator::Bootstrap(response.clone());
                        c.step(Event::Received { from: node(n), incarnation: inc, message });
                    }
                }
                Action::Report(n, list) => {
                    let heartbeat = MaintainerHeartbeat { statuses: to_statuses(&list) };
                    for inc in [u64::from(n) * 10 + 1, u64::from(n) * 10 + 2] {
                        let message = ToCoordinator::Maintainers(heartbeat.clone());
                        c.step(Event::Received { from: node(n), incarnation: inc, message });
                    }
                }
                Action::Liveness(n, l) => {
                    let liveness = NodeLiveness::from_i32(i32::from(l)).unwrap_or(NodeLiveness::Alive);
                    let heartbeat = NodeHeartbeat { liveness, node_epoch: NodeEpoch(9), drain_target: None };
                    for inc in [u64::from(n) * 10 + 1, u64::from(n) * 10 + 2] {
                        let message = ToCoordinator::Node(heartbeat.clone());
                        c.step(Event::Received { from: node(n), incarnation: inc, message });
                    }
                }
                Action::Create(i) => {
                    let name = ["c", "d", "a"][usize::from(i)];
                    c.request(next_request, Request::Create { id: cf(name), config: b"{}".to_vec(), start_ts: 100 });
                }
                Action::Pause(i) => c.request(next_request, Request::Pause { name: NAMES[usize::from(i)].into() }),
                Action::Resume(i) => c.request(next_request, Request::Resume { name: NAMES[usize::from(i)].into() }),
                Action::Remove(i) => c.request(next_request, Request::Remove { name: NAMES[usize::from(i)].into() }),
                Action::Move(i, n) => {
                    c.request(next_request, Request::MoveMaintainer { name: NAMES[usize::from(i)].into(), to: node(n) });
                }
                Action::Fail(kind) => {
                    c.fail_next = Some([MetaError::Unavailable, MetaError::Conflict, MetaError::Unavailable][usize::from(kind)]);
                }
                Action::Hold(on) => c.hold = on,
                Action::Release => {
                    if !c.held.is_empty() {
                        c.release();
                    }
                }
            }
            check(&mut c, &mut added)?;
        }
    }
}
