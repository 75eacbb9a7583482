//! What the threads share: the seeded generator, the spans and ids they fight over, the
//! maintainer they pretend to be, and the message builders.

use dispatcher_core::ids::{ChangefeedId, DispatcherId, Epoch, Mode, NodeId, Ts};
use dispatcher_core::messages::{
    BootstrapRequest, CloseRequest, DispatcherConfig, MergeRequest, OperatorType, Order,
    PostBootstrapRequest, ScheduleAction, ScheduleRequest,
};
use dispatcher_core::span::TableSpan;

/// The simulator's seeded generator, with one stream per (seed, round, thread).
pub struct Rng(dispatcher_core::sim::rng::Rng);

impl Rng {
    /// A generator for one thread of one round of a seeded run.
    pub fn new(seed: u64, round: u64, thread: u64) -> Self {
        let stream =
            seed ^ round.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ thread.wrapping_mul(0xD1B5_4A32_D192_ED03);
        Rng(dispatcher_core::sim::rng::Rng::new(stream))
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.next_u64() % n
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.0.chance(percent)
    }
}

/// Changefeeds per run: one orchestrator holds a manager for each.
pub const CHANGEFEEDS: usize = 2;
/// Tables per changefeed.
pub const TABLES: [i64; 2] = [1, 2];
/// Start ts of every create the request threads send.
pub const START: Ts = 100;

pub fn changefeed(cf: usize) -> ChangefeedId {
    ChangefeedId { high: 7, low: cf as u64 + 1, name: format!("cf{cf}"), keyspace: String::new() }
}

/// The spans the request threads create dispatchers on: per table its four quarters and its two
/// halves, so that creates overlap each other and adjacent quarters can merge into a half.
pub fn spans() -> Vec<TableSpan> {
    let mut all = Vec::new();
    for t in TABLES {
        let q = TableSpan::whole_table(0, t).split_even(4).expect("a table splits in four");
        all.extend(q.iter().cloned());
        all.push(q[0].joined_with(&q[1]));
        all.push(q[2].joined_with(&q[3]));
    }
    all
}

/// Index pairs into [`spans`] that a merge may join (quarters 0+1 and 2+3 of each table).
pub fn merge_pairs() -> Vec<(usize, usize)> {
    (0..TABLES.len()).flat_map(|t| [(6 * t, 6 * t + 1), (6 * t + 2, 6 * t + 3)]).collect()
}

pub fn id(n: u64) -> DispatcherId {
    DispatcherId::new(0, n).expect("a nonzero id")
}

/// Create ids count up from 1, merged ids from here: the two never meet.
pub const MERGED_IDS: u64 = 1 << 40;

/// The table trigger of every changefeed, the same across owners.
pub fn trigger() -> DispatcherId {
    id(1 << 50)
}

/// The maintainer node of owner epoch `epoch` (owners rotate over four nodes).
pub fn maintainer(epoch: u64) -> NodeId {
    NodeId::new(&format!("mt{}", epoch % 4))
}

pub fn schedule(
    cf: usize,
    action: ScheduleAction,
    mode: Mode,
    id: DispatcherId,
    span: Option<TableSpan>,
    epoch: u64,
) -> ScheduleRequest {
    ScheduleRequest {
        changefeed: changefeed(cf),
        // A Remove carries no floor (0, as the reference sends): any incarnation of the id.
        config: DispatcherConfig {
            id,
            mode,
            start_ts: if action == ScheduleAction::Create { START } else { 0 },
            schema_id: 1,
            skip_dml_as_start_ts: false,
        },
        order: Order::new(action, span).expect("a create names its span"),
        operator_type: if action == ScheduleAction::Create {
            OperatorType::Add
        } else {
            OperatorType::Remove
        },
        epoch: Epoch(epoch),
    }
}

pub fn merge(
    cf: usize,
    mode: Mode,
    sources: Vec<DispatcherId>,
    merged: DispatcherId,
    epoch: u64,
) -> MergeRequest {
    MergeRequest { changefeed: changefeed(cf), sources, merged, mode, epoch: Epoch(epoch) }
}

pub fn bootstrap(cf: usize, epoch: u64) -> BootstrapRequest {
    BootstrapRequest {
        changefeed: changefeed(cf),
        start_ts: START,
        trigger: Some(trigger()),
        redo_trigger: Some(trigger()),
        epoch: Epoch(epoch),
        ..BootstrapRequest::default()
    }
}

pub fn post_bootstrap(cf: usize, epoch: u64) -> PostBootstrapRequest {
    PostBootstrapRequest { changefeed: changefeed(cf), trigger: Some(trigger()), epoch: Epoch(epoch) }
}

pub fn close(cf: usize, epoch: u64) -> CloseRequest {
    CloseRequest { changefeed: changefeed(cf), removed: true, epoch: Epoch(epoch) }
}
