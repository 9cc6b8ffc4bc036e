//! The sharded-table lifecycle: metadata in `system.sharding_*`, the durable
//! per-node queues, the fenced master, and the statement handlers.
//!
//! # Layout
//!
//! Decisions are pure functions of what they are given; I/O lives in thin
//! drivers behind two small traits:
//!
//! * pure: [`records`] (every persisted value, its codec and status
//!   transitions), [`election`], [`master::engine`] (and its planners),
//!   [`executor::decide`], [`executor::verdict`], [`topology`], [`config`];
//! * seams: [`node::NodeApi`] (a Manticore node) and [`store::MetaStore`]
//!   (the metadata);
//! * drivers, one task each on every node (see ARCHITECTURE.md):
//!   [`heartbeat`] (registration, lease, election), [`executor::driver`]
//!   (this node's queue) and [`master::driver`] (master only: planning and
//!   supervision), all looping through [`ticker::Ticker`];
//! * [`holdings`]: what nodes hold and which of it is orphaned (read by the
//!   master's cleanup, `SHOW SHARDING HEALTH` and the checker);
//! * [`ops`]: the statement handlers.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::DaemonClient;

pub mod clock;
pub mod config;
pub mod daemon;
pub mod election;
pub mod executor;
pub mod heartbeat;
pub mod holdings;
pub mod master;
pub mod metadata;
pub mod node;
pub mod ops;
pub mod pulse;
pub mod records;
pub mod store;
#[cfg(test)]
pub(crate) mod testing;
pub mod ticker;
pub mod topology;
pub mod wording;

pub use config::ShardingConfig;
pub use ops::ShardingHandler;

use daemon::LocalNode;
use election::Role;
use metadata::Metadata;
use ticker::Signals;

/// Starts the background tasks on `tasks` (they stop when `shutdown` is
/// cancelled) and returns what the statement handlers work with.
pub fn start(
    config: ShardingConfig,
    client: &DaemonClient,
    shutdown: &CancellationToken,
    tasks: &TaskTracker,
) -> Arc<ops::Context> {
    let node = LocalNode::new(Arc::new(client.as_system()));
    let metadata = Metadata::new(node.api().clone());
    let signals = Arc::new(Signals::default());
    let pulse = Arc::new(pulse::Pulse::new());
    let (role_tx, role_rx) = watch::channel(Role::Follower { master: None });
    tasks.spawn(heartbeat::run(
        heartbeat::Heartbeat {
            node: node.clone(),
            metadata: metadata.clone(),
            signals: signals.clone(),
            pulse: pulse.clone(),
            interval: config.heartbeat_interval,
            lease_timeout: config.lease_timeout,
            role: role_tx,
        },
        shutdown.child_token(),
    ));
    tasks.spawn(executor::driver::run(
        executor::driver::Executor {
            node: node.clone(),
            metadata: metadata.clone(),
            signals: signals.clone(),
            poll: config.poll_interval,
            retry: config.retry,
        },
        shutdown.child_token(),
    ));
    tasks.spawn(master::driver::run(
        master::driver::Master {
            node: node.clone(),
            metadata: metadata.clone(),
            signals: signals.clone(),
            poll: config.poll_interval,
            config: master::EngineConfig {
                retry: config.retry,
                retention: config.retention,
                rebalance: master::engine::RebalanceConfig {
                    delay: config.rebalance_delay,
                    parallel: config.rebalance_parallel,
                    retry_after: config.rebalance_retry,
                    automatic: config.rebalance_auto,
                    attempts: config.rebalance_attempts,
                    stall_after: config.stall_after,
                },
                liveness: config.lease_timeout,
            },
            cleanup: config.cleanup_interval,
            role: role_rx,
        },
        shutdown.child_token(),
    ));
    Arc::new(ops::Context {
        config,
        node,
        metadata,
        signals,
        pulse,
    })
}
