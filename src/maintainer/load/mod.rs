//! Load-driven scheduling: the traffic each span's dispatcher reports and the upstream's regions
//! turned into splits, merges and moves (scheduling.md of the reference notes).
//!
//! * `regions.rs`: the [`RegionSource`] the embedder implements and the two ways to cut a span
//!   at region boundaries.
//! * `signals.rs`: per-span traffic windows, sampled once per round from the latest rate each
//!   dispatcher reported (by time, not by message count: the reference's H5), and their sums per
//!   table and node.
//! * `checker.rs`: the decisions of one round, bounded (L7) and only on quiet tables (L4) whose
//!   every span has a full window of fresh samples (L6).
//!
//! Everything here is gated by [`LoadConfig::across_nodes`]: with it off, the maintainer behaves
//! exactly as before.

mod checker;
pub mod regions;
mod signals;

pub use regions::{NoRegions, Region, RegionSource};
pub(super) use signals::LoadState;
pub use signals::WINDOW_MAX;

/// The reference's floor for a positive `write-key-threshold` (10 MiB/s).
pub const WRITE_KEY_THRESHOLD_MIN: f64 = 10.0 * 1024.0 * 1024.0;

/// Below this a node's share of a table's traffic is not worth balancing (1 MiB/s, as the
/// reference's traffic balance).
pub const BALANCE_TRAFFIC_MIN: f64 = 1024.0 * 1024.0;

/// Which damping rules the checker follows.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Rules {
    /// Ours: split pieces spread over the nodes by traffic as they are placed, an unsplittable
    /// span never blocks its table (H2), merges gated by lag and a counter, bounded per round.
    #[default]
    Ours,
    /// The reference system's rules and defaults, for measuring ours against them: pieces of a
    /// split placed by count on the origin's terms, traffic balance only after
    /// `balance-score-threshold` rounds, an unsplittable hot span retried every round.
    Reference,
}

/// Per-changefeed settings of load-driven scheduling, with the reference's names and defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadConfig {
    /// `enable-table-across-nodes`: the master switch (default off).
    pub across_nodes: bool,
    /// `region-threshold`: a table with more regions is pre-split, a span with more is split;
    /// 0 turns region checks off (default 10,000).
    pub region_threshold: u64,
    /// `region-count-per-span`: most regions per span at pre-split (default 100).
    pub region_count_per_span: u64,
    /// `write-key-threshold`, in bytes per second: a span whose traffic stays at or above it is
    /// split; 0 turns traffic splits off (default 0). Positive values below
    /// [`WRITE_KEY_THRESHOLD_MIN`] count as that floor.
    pub write_key_threshold: f64,
    /// `balance-score-threshold`: consecutive imbalanced rounds before a traffic-balance move
    /// (default 20).
    pub balance_score_threshold: u32,
    /// `min-traffic-percentage`: a node below this share of the mean is under-loaded (0.8).
    pub min_traffic_percentage: f64,
    /// `max-traffic-percentage`: a node above this share of the mean is over-loaded (1.25).
    pub max_traffic_percentage: f64,
    /// `check-balance-interval`: time between rounds, in milliseconds (default 15,000).
    pub check_balance_interval_ms: u64,
    /// Ours or the reference's.
    pub rules: Rules,
    /// Samples in a span's window (3, as the reference's; 1 to 8, see [`Self::window`]).
    pub window: usize,
    /// Most splits one round starts, over all tables of a mode (L7; the reference has no bound).
    pub splits_per_round: usize,
    /// No merge of a table whose oldest checkpoint is further behind the upstream than this, in
    /// milliseconds (L10; the reference's 30 s, for local merges only). Needs a region source
    /// that knows the upstream's clock.
    pub merge_lag_max_ms: u64,
}

impl Default for LoadConfig {
    fn default() -> Self {
        Self {
            across_nodes: false,
            region_threshold: 10_000,
            region_count_per_span: 100,
            write_key_threshold: 0.0,
            balance_score_threshold: 20,
            min_traffic_percentage: 0.8,
            max_traffic_percentage: 1.25,
            check_balance_interval_ms: 15_000,
            rules: Rules::Ours,
            window: 3,
            splits_per_round: 8,
            merge_lag_max_ms: 30_000,
        }
    }
}

impl LoadConfig {
    /// The window in force: `window` within 1 and [`WINDOW_MAX`].
    pub fn window(&self) -> usize {
        self.window.clamp(1, signals::WINDOW_MAX)
    }

    /// The traffic threshold in force: 0 (off), or at least [`WRITE_KEY_THRESHOLD_MIN`].
    pub fn traffic_threshold(&self) -> f64 {
        let t = self.write_key_threshold;
        if t.is_nan() || t <= 0.0 || t.is_infinite() {
            0.0
        } else {
            t.max(WRITE_KEY_THRESHOLD_MIN)
        }
    }
}
