//! The sharded-table lifecycle: metadata in `system.sharding_*`, the durable
//! per-node queues, the fenced master, and the statement handlers.
//!
//! Three background tasks run on every node (see ARCHITECTURE.md):
//! `heartbeat` (liveness, lease, election), `executor::run` (this node's
//! queue) and `coordinator::run` (master only: planning and supervision).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::DaemonClient;

pub mod clock;
pub mod config;
pub mod coordinator;
pub mod daemon;
pub mod executor;
pub mod group;
pub mod handler;
pub mod heartbeat;
pub mod lease;
pub mod ops;
pub mod queue;
pub mod runtime;
pub mod setup;
pub mod state;
pub mod store;
pub mod table_state;
pub mod topology;

pub use config::ShardingConfig;
pub use handler::ShardingHandler;
pub use runtime::Shared;

/// Starts the background tasks on `tasks`; they stop when `shutdown` is
/// cancelled.
pub fn start(
    config: ShardingConfig,
    client: &DaemonClient,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> Arc<Shared> {
    let shared = Shared::new(config, client.clone());
    tasks.spawn(heartbeat::run(shared.clone(), shutdown.child_token()));
    tasks.spawn(executor::run::run(shared.clone(), shutdown.child_token()));
    tasks.spawn(coordinator::run::run(
        shared.clone(),
        shutdown.child_token(),
    ));
    shared
}
