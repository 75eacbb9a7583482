//! The maintainer manager (cluster.md §6.4): the coordinator version gate (K2), admission above
//! the high-water epoch once the previous maintainer stopped (K6, K7), single-step liveness (K9),
//! cascade closes resent until every member answered, and the local fence (K8).

use dispatcher_core::ids::{Epoch, NodeId};
use dispatcher_core::maintainer::manager::*;
use dispatcher_core::maintainer::{Maintainer, MaintainerConfig, MemorySchema};
use dispatcher_core::messages::*;

use super::harness::{cf, node};

struct Factory;

impl MaintainerFactory for Factory {
    fn build(
        &mut self,
        add: &AddMaintainer,
        node: &NodeId,
        members: &[NodeId],
    ) -> Result<Maintainer, String> {
        if add.config == b"bad" {
            return Err("unreadable config".into());
        }
        let cfg = MaintainerConfig::new(add.changefeed.clone(), node.clone(), add.epoch, add.checkpoint_ts);
        Ok(Maintainer::new(cfg, Box::new(MemorySchema::new()), members))
    }
}

struct Node {
    m: MaintainerManager,
    now: u64,
    out: Vec<ManagerOutput>,
}

impl Node {
    fn new() -> Self {
        let m = MaintainerManager::new(node(2), NodeEpoch(50), ManagerConfig::default(), Box::new(Factory));
        let mut n = Node { m, now: 1_000, out: Vec::new() };
        n.step(ManagerEvent::Members(vec![(node(1), 1), (node(2), 2), (node(3), 3)]));
        n
    }

    fn step(&mut self, event: ManagerEvent) {
        let out = self.m.step(self.now, event);
        self.out.extend(out);
    }

    fn command(&mut self, from: u32, message: ToManager) {
        self.step(ManagerEvent::FromCoordinator { from: node(from), message });
    }

    fn bootstrap(&mut self, from: u32, version: i64) {
        self.command(
            from,
            ToManager::Bootstrap(CoordinatorBootstrapRequest { version: CoordinatorVersion(version) }),
        );
    }

    fn add(&mut self, from: u32, name: &str, epoch: u64) {
        let add = AddMaintainer {
            changefeed: cf(name),
            config: b"{}".to_vec(),
            checkpoint_ts: 100,
            is_new: false,
            keyspace_id: 0,
            epoch: Epoch(epoch),
        };
        self.command(from, ToManager::AddMaintainer(add));
    }

    fn remove(&mut self, from: u32, name: &str, epoch: u64, cascade: bool) {
        let remove = RemoveMaintainer {
            changefeed: cf(name),
            cascade,
            removed: cascade,
            keyspace_id: 0,
            epoch: Epoch(epoch),
        };
        self.command(from, ToManager::RemoveMaintainer(remove));
    }

    fn tick(&mut self, ms: u64) {
        self.now += ms;
        self.step(ManagerEvent::Tick);
    }

    fn take(&mut self) -> Vec<ManagerOutput> {
        std::mem::take(&mut self.out)
    }

    /// The maintainer statuses sent to the coordinator since the last `take`, as (name, epoch, working).
    fn reported(&self) -> Vec<(String, Epoch, bool)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                ManagerOutput::ToCoordinator { message: ToCoordinator::Maintainers(h), .. } => Some(h),
                _ => None,
            })
            .flat_map(|h| h.statuses.iter().map(|s| (s.changefeed.name.clone(), s.epoch, s.working())))
            .collect()
    }

    fn running(&self, name: &str) -> Option<Epoch> {
        self.m.maintainer(&cf(name)).map(|m| m.config().epoch)
    }

    fn closes(&self) -> Vec<(NodeId, Epoch)> {
        self.out
            .iter()
            .filter_map(|o| match o {
                ManagerOutput::ToNode { to, message: ToNode::Close(c) } => Some((to.clone(), c.epoch)),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn k2_commands_come_only_from_the_coordinator_answered_last_at_the_highest_version() {
    let mut n = Node::new();
    n.add(1, "a", 3);
    assert_eq!(n.running("a"), None, "no coordinator has bootstrapped this node yet");
    n.bootstrap(1, 10);
    let answered = n.take();
    assert!(matches!(
        answered.first(),
        Some(ManagerOutput::ToCoordinator { to, message: ToCoordinator::Bootstrap(_) }) if to == &node(1)
    ));
    assert!(answered
        .iter()
        .any(|o| matches!(o, ManagerOutput::ToCoordinator { message: ToCoordinator::Node(_), .. })));
    n.bootstrap(3, 9);
    assert!(n.take().is_empty(), "an older coordinator's bootstrap is ignored");
    n.add(3, "a", 3);
    assert_eq!(n.running("a"), None);
    n.add(1, "a", 3);
    assert_eq!(n.running("a"), Some(Epoch(3)));
    // H6: once the shell sees a newer election, the old coordinator's commands stop at once.
    n.step(ManagerEvent::Elected { node: node(3), version: CoordinatorVersion(11) });
    n.take();
    n.add(1, "b", 1);
    assert_eq!(n.running("b"), None);
    n.bootstrap(1, 10);
    assert!(n.take().is_empty());
    n.bootstrap(3, 11);
    n.add(3, "b", 1);
    assert_eq!(n.running("b"), Some(Epoch(1)));
}

#[test]
fn k7_an_add_replaces_a_maintainer_only_after_it_stopped_and_only_with_a_higher_epoch() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.add(1, "a", 3);
    n.add(1, "a", 4);
    assert_eq!(n.running("a"), Some(Epoch(3)), "the running one has not stopped");
    n.remove(1, "a", 3, false);
    assert_eq!(n.running("a"), None);
    n.add(1, "a", 2);
    assert_eq!(n.running("a"), None, "K6: below the highest epoch seen");
    n.add(1, "a", 4);
    assert_eq!(n.running("a"), Some(Epoch(4)));
    // The high-water mark outlives the forgotten status of a stopped maintainer.
    n.remove(1, "a", 4, false);
    n.tick(200);
    n.tick(200);
    n.add(1, "a", 4);
    assert_eq!(n.running("a"), None);
}

#[test]
fn a_remove_for_another_epoch_leaves_the_maintainer_alone() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.add(1, "a", 5);
    n.remove(1, "a", 4, false);
    n.remove(1, "a", 6, false);
    assert_eq!(n.running("a"), Some(Epoch(5)));
}

#[test]
fn statuses_are_reported_when_they_change_and_every_second_and_a_stopped_one_five_times() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.add(1, "a", 5);
    n.take();
    n.tick(200);
    assert_eq!(n.reported(), [("a".into(), Epoch(5), true)]);
    n.take();
    n.tick(200);
    assert!(n.reported().is_empty());
    n.tick(1_000);
    assert_eq!(n.reported(), [("a".into(), Epoch(5), true)]);
    n.take();
    n.remove(1, "a", 5, false);
    n.tick(200);
    assert_eq!(n.reported(), [("a".into(), Epoch(5), false)]);
    // Reported a few more times (one lost report must not hide it), then forgotten.
    for _ in 0..4 {
        n.take();
        n.tick(1_000);
        assert_eq!(n.reported(), [("a".into(), Epoch(5), false)]);
    }
    n.take();
    n.tick(2_000);
    assert!(n.reported().is_empty(), "forgotten after five reports");
    // A remove for it afterwards is answered from nothing: stopped at the epoch asked.
    n.remove(1, "a", 5, false);
    assert_eq!(n.reported(), [("a".into(), Epoch(5), false)]);
}

fn answer_bootstrap(n: &mut Node, from: u32, name: &str, epoch: u64, err: bool) {
    let response = BootstrapResponse {
        changefeed: cf(name),
        spans: Vec::new(),
        err: err.then(|| RunningError { message: "trigger mismatch".into(), ..RunningError::default() }),
        checkpoint_ts: 0,
        redo_checkpoint_ts: 0,
        operators: Vec::new(),
        epoch: Epoch(epoch),
        merge_operators: Vec::new(),
    };
    n.step(ManagerEvent::FromNode { from: node(from), message: ToMaintainer::Bootstrap(response) });
}

fn answer_close(n: &mut Node, from: u32, name: &str, epoch: u64, success: bool) {
    let response = CloseResponse { changefeed: cf(name), success, epoch: Epoch(epoch) };
    n.step(ManagerEvent::FromNode { from: node(from), message: ToMaintainer::Close(response) });
}

impl Node {
    /// The close's bootstraps sent since the last `take`, as (node, epoch, trigger named).
    fn takeovers(&self) -> Vec<(NodeId, Epoch, bool)> {
        let mut v: Vec<_> = self
            .out
            .iter()
            .filter_map(|o| match o {
                ManagerOutput::ToNode { to, message: ToNode::Bootstrap(b) } => {
                    Some((to.clone(), b.epoch, b.trigger.is_some()))
                }
                _ => None,
            })
            .collect();
        v.sort();
        v
    }
}

#[test]
fn a_cascade_remove_takes_every_member_over_then_closes_it_until_each_answers() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.add(1, "a", 5);
    n.take();
    // The coordinator stops at a new epoch: the running maintainer is superseded.
    n.remove(1, "a", 6, true);
    assert_eq!(n.running("a"), None);
    assert_eq!(
        n.takeovers(),
        [(node(1), Epoch(6), false), (node(2), Epoch(6), false), (node(3), Epoch(6), false)]
    );
    assert!(n.closes().is_empty(), "nothing is closed before it is taken over");
    n.take();
    answer_bootstrap(&mut n, 1, "a", 6, false);
    answer_bootstrap(&mut n, 2, "a", 6, true); // an older trigger in the way: asked again
    answer_bootstrap(&mut n, 3, "a", 5, false); // another epoch's answer
    assert_eq!(n.closes(), [(node(1), Epoch(6))], "closed as soon as taken over");
    answer_close(&mut n, 1, "a", 6, false); // closing, not done yet
    n.take();
    n.tick(200);
    assert_eq!(
        n.reported(),
        [("a".into(), Epoch(6), true)],
        "reported working while it closes: its stop is not done"
    );
    n.take();
    n.tick(400);
    assert_eq!(n.closes(), [(node(1), Epoch(6))], "resent to the node not done");
    assert_eq!(n.takeovers(), [(node(2), Epoch(6), false), (node(3), Epoch(6), false)]);
    answer_close(&mut n, 1, "a", 6, true);
    answer_bootstrap(&mut n, 2, "a", 6, false);
    answer_close(&mut n, 2, "a", 6, true);
    n.step(ManagerEvent::Members(vec![(node(1), 1), (node(2), 2)])); // n3 left: nothing of it to close
    n.take();
    n.tick(1_000);
    assert_eq!(n.reported(), [("a".into(), Epoch(6), false)]);
    assert!(n.closes().is_empty() && n.takeovers().is_empty());
}

#[test]
fn a_cascade_remove_at_the_maintainers_own_epoch_takes_its_node_over_with_its_trigger() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.add(1, "a", 5);
    n.take();
    n.remove(1, "a", 5, true);
    assert_eq!(
        n.takeovers(),
        [(node(1), Epoch(5), false), (node(2), Epoch(5), true), (node(3), Epoch(5), false)]
    );
}

#[test]
fn a_cascade_remove_for_a_changefeed_not_hosted_runs_a_removal_only_close() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.take();
    n.remove(1, "gone", 8, true);
    assert_eq!(n.takeovers().len(), 3);
    // A node that never answers (a newer owner refuses silently) is given up on in time.
    for _ in 0..70 {
        n.tick(500);
    }
    assert!(n.reported().contains(&("gone".into(), Epoch(8), false)));
    n.take();
    n.tick(500);
    assert!(n.takeovers().is_empty());
}

#[test]
fn k9_liveness_moves_one_step_forward_for_this_lifetime_only_and_stopping_takes_no_add() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    let set =
        |target, epoch| ToManager::SetLiveness(SetNodeLiveness { target, node_epoch: NodeEpoch(epoch) });
    n.command(1, set(NodeLiveness::Stopping, 50));
    assert_eq!(n.m.liveness(), NodeLiveness::Alive, "two steps at once are refused");
    n.command(1, set(NodeLiveness::Draining, 49));
    assert_eq!(n.m.liveness(), NodeLiveness::Alive, "another lifetime's request");
    n.take();
    n.command(1, set(NodeLiveness::Draining, 50));
    assert_eq!(n.m.liveness(), NodeLiveness::Draining);
    let answer = n.out.iter().find_map(|o| match o {
        ManagerOutput::ToCoordinator { message: ToCoordinator::Liveness(a), .. } => Some(*a),
        _ => None,
    });
    assert_eq!(
        answer,
        Some(NodeLivenessApplied { applied: NodeLiveness::Draining, node_epoch: NodeEpoch(50) })
    );
    n.add(1, "a", 1);
    assert_eq!(n.running("a"), Some(Epoch(1)), "draining still takes adds in flight");
    n.command(1, set(NodeLiveness::Stopping, 50));
    n.add(1, "b", 1);
    assert_eq!(n.running("b"), None);
    n.command(1, set(NodeLiveness::Alive, 50));
    assert_eq!(n.m.liveness(), NodeLiveness::Stopping, "never back");
}

#[test]
fn k8_a_fenced_manager_stops_everything_and_sends_nothing_more() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.add(1, "a", 1);
    n.take();
    n.step(ManagerEvent::Fenced);
    assert!(n.m.fenced());
    assert_eq!(n.running("a"), None);
    n.tick(1_000);
    n.bootstrap(1, 12);
    n.add(1, "b", 1);
    assert!(n.take().is_empty());
    assert_eq!(n.running("b"), None);
}

#[test]
fn a_maintainer_that_cannot_be_built_is_reported_stopped_with_its_error() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    let add = AddMaintainer {
        changefeed: cf("a"),
        config: b"bad".to_vec(),
        checkpoint_ts: 100,
        is_new: true,
        keyspace_id: 0,
        epoch: Epoch(1),
    };
    n.command(1, ToManager::AddMaintainer(add));
    n.take();
    n.tick(200);
    let status = n.out.iter().find_map(|o| match o {
        ManagerOutput::ToCoordinator { message: ToCoordinator::Maintainers(h), .. } => {
            h.statuses.first().cloned()
        }
        _ => None,
    });
    let status = status.expect("a status");
    assert!(!status.working());
    assert_eq!(status.errors[0].message, "unreadable config");
}

#[test]
fn the_hosted_maintainer_bootstraps_the_members_and_reports_bootstrap_done() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.add(1, "a", 4);
    let asked: Vec<NodeId> = n
        .out
        .iter()
        .filter_map(|o| match o {
            ManagerOutput::ToNode { to, message: ToNode::Bootstrap(b) } if b.epoch == Epoch(4) => {
                Some(to.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(asked.len(), 3, "{asked:?}");
}

#[test]
fn a_refused_add_is_answered_stopped_at_its_epoch_so_it_is_not_resent_forever() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.add(1, "a", 3);
    n.remove(1, "a", 3, false);
    n.take();
    n.add(1, "a", 2); // below the highest epoch seen
    assert_eq!(n.reported(), [("a".into(), Epoch(2), false)]);
    let set =
        ToManager::SetLiveness(SetNodeLiveness { target: NodeLiveness::Draining, node_epoch: NodeEpoch(50) });
    n.command(1, set);
    let set =
        ToManager::SetLiveness(SetNodeLiveness { target: NodeLiveness::Stopping, node_epoch: NodeEpoch(50) });
    n.command(1, set);
    n.take();
    n.add(1, "b", 1); // a stopping node takes none
    assert_eq!(n.reported(), [("b".into(), Epoch(1), false)]);
}

#[test]
fn a_close_with_no_members_known_is_not_done_and_a_stale_one_is_not_rerun() {
    let m = MaintainerManager::new(node(2), NodeEpoch(50), ManagerConfig::default(), Box::new(Factory));
    let mut n = Node { m, now: 1_000, out: Vec::new() };
    n.bootstrap(1, 10);
    n.remove(1, "gone", 8, true);
    n.tick(200);
    assert_eq!(n.reported(), [("gone".into(), Epoch(8), true)], "closing: no member known, nothing done");
    n.step(ManagerEvent::Members(vec![(node(2), 2)]));
    assert_eq!(n.takeovers(), [(node(2), Epoch(8), false)]);
    answer_bootstrap(&mut n, 2, "gone", 8, false);
    answer_close(&mut n, 2, "gone", 8, true);
    for _ in 0..6 {
        n.tick(1_000);
    }
    n.take();
    // Forgotten after its reports; a delayed copy of the remove is answered, not run again.
    n.remove(1, "gone", 8, true);
    assert_eq!(n.reported(), [("gone".into(), Epoch(8), false)]);
    assert!(n.takeovers().is_empty());
}

#[test]
fn a_maintainers_first_checkpoint_after_its_bootstrap_is_reported_at_once_later_ones_each_second() {
    let mut n = Node::new();
    n.bootstrap(1, 10);
    n.add(1, "a", 4);
    for from in 1..=3 {
        answer_bootstrap(&mut n, from, "a", 4, false);
    }
    n.tick(10);
    n.take();
    let checkpoints = |n: &Node| -> Vec<u64> {
        n.out
            .iter()
            .filter_map(|o| match o {
                ManagerOutput::ToCoordinator { message: ToCoordinator::Maintainers(h), .. } => Some(h),
                _ => None,
            })
            .flat_map(|h| h.statuses.iter().map(|s| s.checkpoint_ts))
            .collect()
    };
    let beat = |n: &mut Node, ts: u64, seq: u64| {
        for from in 1..=3 {
            let heartbeat = Heartbeat {
                changefeed: cf("a"),
                watermark: Some(Watermark { checkpoint_ts: ts, resolved_ts: ts, seq }),
                ..Default::default()
            };
            n.step(ManagerEvent::FromNode { from: node(from), message: ToMaintainer::Heartbeat(heartbeat) });
        }
    };
    beat(&mut n, 200, 1);
    n.tick(10);
    assert_eq!(checkpoints(&n), [200], "the first progress goes out at the next tick");
    n.take();
    beat(&mut n, 300, 2);
    n.tick(10);
    assert!(checkpoints(&n).is_empty(), "later progress waits for the period");
    n.tick(1_000);
    assert_eq!(checkpoints(&n), [300]);
}
