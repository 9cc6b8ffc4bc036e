//! The sharded-table lifecycle: metadata in `system.sharding_*`, the durable
//! per-node queues, the fenced master, and the statement handlers.

pub mod clock;
pub mod config;
pub mod coordinator;
pub mod daemon;
pub mod executor;
pub mod group;
pub mod heartbeat;
pub mod lease;
pub mod queue;
pub mod runtime;
pub mod state;
pub mod store;
pub mod table_state;
pub mod topology;
