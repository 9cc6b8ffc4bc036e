//! The master: only the node holding the lease runs it. It turns CREATE/DROP
//! requests into queue rows (so queue ids are globally ordered and stamped
//! with its epoch), supervises every operation group to completion, rolls
//! failed groups back on the nodes that ran them, and purges finished work.
//!
//! Decisions are a pure function of a snapshot ([`engine`], in the manner of
//! openraft's Engine/Runtime split); [`driver`] only loads the snapshot and
//! applies the commands.

pub mod command;
pub mod driver;
mod encode;
pub mod engine;
pub mod plan;
pub mod progress;
pub mod rebalance;
pub mod snapshot;

#[cfg(test)]
mod tests;

pub use command::{Command, Event};
pub use engine::{EngineConfig, MasterEngine};
pub use snapshot::Snapshot;
