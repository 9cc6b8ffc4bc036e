//! The sharded-table lifecycle: metadata in `system.sharding_*`, the durable
//! per-node queues, the fenced master, and the statement handlers.

pub mod coordinator;
pub mod executor;
pub mod group;
pub mod lease;
pub mod queue;
pub mod state;
pub mod topology;
