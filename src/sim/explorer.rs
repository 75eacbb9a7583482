//! The two timeline generators behind `sim --random`, chosen per sweep.

use super::random::Shape;
use super::scenario::Scenario;

crate::names::named_enum! {
    "explorer";
    /// Which generator makes a seed's timeline.
    #[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
    pub enum Explorer {
        /// The first explorer: one fixed shape, every kind of operation and fault in one fixed
        /// mix, faults at random times only. Kept to measure the swarm explorer against.
        Classic = "classic",
        /// Per-seed shapes, feature subsets and weights, and phase-aimed faults (`sim/swarm`).
        #[default]
        Swarm = "swarm",
    }
}

impl Explorer {
    /// The timeline of `seed`. For the swarm, a zero in `shape` lets the seed draw that number.
    pub fn generate(self, seed: u64, shape: Shape) -> Scenario {
        match self {
            Explorer::Classic => {
                let d = Shape::default();
                let nodes = if shape.nodes == 0 { d.nodes } else { shape.nodes };
                let tables = if shape.tables == 0 { d.tables } else { shape.tables };
                super::random::generate(seed, Shape { nodes, tables, ..d })
            }
            Explorer::Swarm => super::swarm::generate(seed, shape),
        }
    }
}
