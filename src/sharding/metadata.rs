//! Where this node's sharding metadata lives, and making it on first use:
//! the metadata tables, their attachment to the user cluster, and the marker
//! that says they are ready (spec §6.2). The first master is then elected by
//! the heartbeat (the lease has one writer).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use md5::{Digest, Md5};
use tracing::info;

use crate::ids::{ClusterName, NodeId};
use crate::sharding::daemon;
use crate::sharding::daemon::LocalNode;
use crate::sharding::node::NodeApi;
use crate::sharding::records::Scope;
use crate::sharding::store::{MetaStore, SqlStore, StoreError};
use crate::sharding::topology::Membership;

/// PHP Buddy's topology fingerprint: `md5(join('|', sorted nodes))`.
pub fn cluster_hash(members: &Membership) -> String {
    let joined: Vec<&str> = members.active.iter().map(|n| n.as_str()).collect();
    format!("{:x}", Md5::digest(joined.join("|").as_bytes()))
}

/// Why the metadata could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Daemon(#[from] daemon::DaemonError),
    #[error("sharding metadata is being set up by another node: retry")]
    SetUpElsewhere,
}

/// A handle on where the metadata lives. Cheap to clone.
#[derive(Clone)]
pub struct Metadata {
    node: Arc<dyn NodeApi>,
    /// `None` until the metadata is known to exist (checked again each time).
    binding: Arc<RwLock<Option<Scope>>>,
    /// This node made the metadata: it starts the first master term.
    founded_here: Arc<AtomicBool>,
}

impl Metadata {
    pub fn new(node: Arc<dyn NodeApi>) -> Self {
        Self {
            node,
            binding: Arc::default(),
            founded_here: Arc::default(),
        }
    }

    fn store_at(&self, scope: Scope) -> Arc<dyn MetaStore> {
        Arc::new(SqlStore::new(self.node.clone(), scope))
    }

    /// The metadata store, or `None` while sharding is not (completely) set
    /// up here.
    pub async fn store(&self) -> Result<Option<Arc<dyn MetaStore>>, StoreError> {
        let known = self.binding.read().ok().and_then(|b| b.clone());
        if let Some(scope) = known {
            return Ok(Some(self.store_at(scope)));
        }
        let probe = self.store_at(Scope::Local);
        if !probe.is_initialized().await? {
            return Ok(None);
        }
        // The `cluster` key is written last by the setup: until it is there
        // (here or through replication) the metadata is not ready, and where
        // it lives must not be guessed (a wrong guess would be cached).
        let Some(scope) = probe.ready_scope().await? else {
            return Ok(None);
        };
        self.bind(scope.clone());
        Ok(Some(self.store_at(scope)))
    }

    fn bind(&self, scope: Scope) {
        if let Ok(mut b) = self.binding.write() {
            *b = Some(scope);
        }
    }

    /// Whether this node made the metadata (and may start the first term).
    pub fn founded_here(&self) -> bool {
        self.founded_here.load(Ordering::Relaxed)
    }

    /// The store, setting the metadata up first when this node has none. A
    /// setup that was interrupted half-way (tables made, keys not written) is
    /// completed.
    pub async fn ensure(
        &self,
        node: &LocalNode,
        cluster: Option<&ClusterName>,
    ) -> Result<Arc<dyn MetaStore>, SetupError> {
        if let Some(store) = self.store().await? {
            return Ok(store);
        }
        let me: NodeId = node.id().await?;
        let scope = Scope::from(cluster.cloned());
        let store = self.store_at(scope.clone());
        store.prepare_tables().await?;
        if store.ready_scope().await?.is_some() {
            // Another node completed the setup meanwhile; its rows reached us.
            return self.store().await?.ok_or(SetupError::SetUpElsewhere);
        }
        let members = match cluster {
            Some(c) => daemon::cluster_health(&*self.node, c)
                .await
                .map_err(StoreError::from)?
                .map(|h| h.membership)
                .unwrap_or_else(|| Membership::single(&me)),
            None => Membership::single(&me),
        };
        store.put_cluster_hash(&cluster_hash(&members)).await?;
        self.founded_here.store(true, Ordering::Relaxed);
        // Written last: it marks the metadata as ready (see `store`).
        store.put_ready_scope(&scope).await?;
        self.bind(scope.clone());
        info!(node = %me, cluster = %scope, "sharding metadata set up");
        Ok(store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_buddy() {
        let m = Membership {
            all: Default::default(),
            active: [NodeId::new("b"), NodeId::new("a")].into(),
            primary: true,
        };
        assert_eq!(cluster_hash(&m), format!("{:x}", Md5::digest(b"a|b")));
    }

    #[tokio::test]
    async fn a_setup_another_node_finished_but_this_node_cannot_see_yet_asks_for_a_retry() {
        use crate::sharding::testing::{identity, no_such_table, ok, table, FakeNode};
        // The metadata tables do not exist here yet (`DESC` fails), but the
        // `cluster` key another node wrote is there once they are made.
        let node = FakeNode::new(|sql, _| {
            if let Some(reply) = identity(sql) {
                reply
            } else if sql.starts_with("DESC") {
                no_such_table()
            } else if sql.starts_with("SELECT `value`") {
                table(&["value", "updated_at"], &[&["[\"\"]", "1"]])
            } else {
                ok()
            }
        });
        let api: Arc<dyn NodeApi> = Arc::new(node.clone());
        let metadata = Metadata::new(Arc::clone(&api));
        let err = metadata
            .ensure(&LocalNode::new(api), None)
            .await
            .err()
            .expect("refused");
        assert_eq!(
            err.to_string(),
            "sharding metadata is being set up by another node: retry"
        );
    }
}
