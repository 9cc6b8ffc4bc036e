//! What the sharding tasks and handlers share: configuration, the local
//! daemon client, this node's identity, where the metadata lives, the current
//! role, and the wake-up signals between tasks of this process.

use std::sync::{Arc, RwLock};

use tokio::sync::{watch, Notify, OnceCell};

use crate::client::DaemonClient;
use crate::ids::ClusterName;
use crate::sharding::config::ShardingConfig;
use crate::sharding::daemon::{self, DaemonError, NodeInfo};
use crate::sharding::lease::Role;
use crate::sharding::state::StateKey;
use crate::sharding::store::{Store, StoreError};

/// Where this node's sharding metadata lives.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Binding {
    /// Not known yet, or the metadata tables do not exist (checked again each time).
    Unknown,
    /// The tables exist; `None` = local sharding, `Some(c)` = attached to cluster `c`.
    Bound(Option<ClusterName>),
}

pub struct Shared {
    pub config: ShardingConfig,
    /// Acts as `system.buddy` on the local daemon.
    pub client: DaemonClient,
    node: OnceCell<NodeInfo>,
    binding: RwLock<Binding>,
    role_tx: watch::Sender<Role>,
    /// New queue rows for this node were written locally.
    pub wake_executor: Notify,
    /// A request, a group change or a finished row: the master should look.
    pub wake_coordinator: Notify,
    /// The lease should be (re)considered now.
    pub wake_heartbeat: Notify,
    /// A `table:<t>` value changed locally: waiting statements should re-read.
    pub table_changed: Notify,
}

impl Shared {
    pub fn new(config: ShardingConfig, client: DaemonClient) -> Arc<Self> {
        let (role_tx, _) = watch::channel(Role::Follower { master: None });
        Arc::new(Self {
            config,
            client: client.as_system(),
            node: OnceCell::new(),
            binding: RwLock::new(Binding::Unknown),
            role_tx,
            wake_executor: Notify::new(),
            wake_coordinator: Notify::new(),
            wake_heartbeat: Notify::new(),
            table_changed: Notify::new(),
        })
    }

    /// This node's identity, discovered once.
    pub async fn node(&self) -> Result<&NodeInfo, DaemonError> {
        self.node
            .get_or_try_init(|| daemon::discover(&self.client))
            .await
    }

    /// The metadata store, or `None` while sharding is not (completely) set
    /// up here.
    pub async fn store(&self) -> Result<Option<Store>, StoreError> {
        let known = self
            .binding
            .read()
            .map(|b| b.clone())
            .unwrap_or(Binding::Unknown);
        if let Binding::Bound(cluster) = known {
            return Ok(Some(Store::new(self.client.clone(), cluster)));
        }
        let probe = Store::new(self.client.clone(), None);
        if !probe.is_initialized().await? {
            return Ok(None);
        }
        // The `cluster` key is written last by the setup: until it is there
        // (here or through replication) the metadata is not ready, and where
        // it lives must not be guessed (a wrong guess would be cached).
        let cluster = match probe.get_as::<String>(&StateKey::Cluster).await? {
            None => return Ok(None),
            Some(name) if name.is_empty() => None,
            Some(name) => Some(
                ClusterName::parse(&name)
                    .map_err(|e| StoreError::Corrupt(format!("state 'cluster': {e}")))?,
            ),
        };
        self.bind(cluster.clone());
        Ok(Some(Store::new(self.client.clone(), cluster)))
    }

    /// Records where the metadata lives (after setting it up here).
    pub fn bind(&self, cluster: Option<ClusterName>) {
        if let Ok(mut b) = self.binding.write() {
            *b = Binding::Bound(cluster);
        }
    }

    pub fn role(&self) -> Role {
        self.role_tx.borrow().clone()
    }

    pub fn subscribe_role(&self) -> watch::Receiver<Role> {
        self.role_tx.subscribe()
    }

    pub fn set_role(&self, role: Role) {
        self.role_tx.send_if_modified(|r| {
            let changed = *r != role;
            *r = role;
            changed
        });
    }
}
