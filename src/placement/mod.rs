//! Placement and rebalance planning: pure functions, no I/O, no clock, no
//! randomness. The same input always gives the same output, byte for byte.
//!
//! * [`initial_placement`] places a new table exactly as PHP Buddy does, so
//!   mixed clusters and Manticore's own tests agree on layouts.
//! * [`plan_rebalance`] turns a [`Model`] (nodes with states, tables with
//!   their current placement) into a [`RebalancePlan`]: a target placement per
//!   table and the moves that reach it with the fewest replica copies.
//! * [`create_steps`], [`drop_steps`] and [`rebalance_steps`] translate a
//!   placement or a plan into per-node SQL [`Step`]s for the queue.
//! * [`document`] holds the JSON shapes behind `shardbuddy plan`.
//!
//! `README.md` beside this file documents the algorithms, the tie-breaks, the
//! minimal-movement bound and the data-safety protocol of a move.

mod balance;
mod clusters;
pub mod document;
mod error;
mod initial;
mod layout;
mod model;
pub(crate) mod names;
mod plan;
mod solve;
mod steps;

pub use clusters::ClusterMap;
pub use error::{ModelError, PlacementError};
pub use initial::initial_placement;
pub use layout::Placement;
pub use model::{Model, NodeSpec, NodeState, ShardSize, TableModel};
pub use names::{internal_cluster_name, is_internal_cluster_name, shard_table_name, ShardTable};
pub use plan::{plan_rebalance, Move, MoveReason, RebalancePlan, TablePlan, Totals};
pub use steps::{
    create_steps, create_steps_with_existing, drop_steps, rebalance_steps, wrapper_ddl, Action,
    Ddl, Step, StepContext, TableDdl,
};
