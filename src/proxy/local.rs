//! Nodes that run without a helper (`buddy_path` set empty) cannot answer
//! sharding statements, nor run their share of the queues. For each such
//! node the proxy runs what the helper would: the sharding services
//! against the node's HTTP listener, and the same handler table the Buddy
//! endpoint dispatches to.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::backends::Backends;
use crate::client::{ClientConfig, DaemonClient};
use crate::handler::{Handler, Registry};
use crate::sharding::{self, ShardingConfig, ShardingHandler};

/// The helpers the proxy runs, by the MySQL address of their node.
pub struct LocalHelpers {
    registries: Mutex<BTreeMap<String, Arc<Registry>>>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl LocalHelpers {
    pub fn new(shutdown: CancellationToken, tasks: TaskTracker) -> Self {
        Self {
            registries: Mutex::default(),
            shutdown,
            tasks,
        }
    }

    /// Starts a helper for every node known to run without one.
    pub fn cover(&self, backends: &Backends) {
        for backend in backends.all() {
            let Some(details) = backend.details().filter(|d| !d.helper) else {
                continue;
            };
            let mut registries = self.registries.lock().unwrap_or_else(|p| p.into_inner());
            if registries.contains_key(&backend.mysql) {
                continue;
            }
            let (config, warnings) = ShardingConfig::from_env(|name| std::env::var(name).ok());
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            let client = DaemonClient::new(ClientConfig {
                base_url: details.http.clone(),
                token: std::env::var("BUDDY_TOKEN").ok(),
                timeout: Duration::from_secs(60),
                connect_timeout: Duration::from_secs(3),
            });
            let context = sharding::start(config, &client, &self.shutdown, &self.tasks);
            let handlers: Vec<Box<dyn Handler>> = vec![Box::new(ShardingHandler::new(context))];
            tracing::info!(node = %backend.mysql, "the node runs no helper: the proxy answers its sharding statements and runs its queue");
            registries.insert(backend.mysql.clone(), Arc::new(Registry::new(handlers)));
        }
    }

    /// The handler table for `node`, when the proxy runs its helper.
    pub fn registry(&self, node: &str) -> Option<Arc<Registry>> {
        self.registries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(node)
            .cloned()
    }
}
