//! What the local daemon reports about itself and its clusters
//! (`SHOW SETTINGS`, `SHOW STATUS`), typed, and [`LocalNode`]: this node's
//! API handle with its identity, discovered once.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::OnceCell;

use crate::client::ClientError;
use crate::ids::{ClusterName, NodeId};
use crate::sharding::node::NodeApi;
use crate::sharding::topology::{self, Membership, NodeIdError};
use crate::sqltext::quote_literal;

#[derive(Debug, Clone, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    NodeId(#[from] NodeIdError),
}

/// This node, as discovered at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: NodeId,
    /// `searchd.data_dir`: cluster directories (`'<name>' as path`) live here.
    pub data_dir: Option<PathBuf>,
}

/// `SHOW STATUS LIKE '<pattern>'` as a map of counter to value.
pub async fn status(
    client: &dyn NodeApi,
    pattern: &str,
) -> Result<BTreeMap<String, String>, ClientError> {
    let set = client
        .query_one(&format!("SHOW STATUS LIKE {}", quote_literal(pattern)))
        .await?;
    Ok((0..set.rows.len())
        .filter_map(|i| {
            Some((
                set.text(i, "Counter")?,
                set.text(i, "Value").unwrap_or_default(),
            ))
        })
        .collect())
}

/// The addresses of this host's interfaces, to recognise this node in a
/// cluster's member list.
fn local_addresses() -> BTreeSet<String> {
    let mut out: BTreeSet<String> = ["127.0.0.1".to_string(), "localhost".to_string()].into();
    if let Ok(addrs) = nix::ifaddrs::getifaddrs() {
        for a in addrs {
            if let Some(ip) = a.address.as_ref().and_then(|s| s.as_sockaddr_in()) {
                out.insert(ip.ip().to_string());
            }
        }
    }
    out
}

/// Discovers the node id and data dir (spec §7.1, without its port-only bug).
pub async fn discover(client: &dyn NodeApi) -> Result<NodeInfo, DaemonError> {
    let set = client.query_one("SHOW SETTINGS").await?;
    let mut listen = Vec::new();
    let mut data_dir = None;
    for i in 0..set.rows.len() {
        match set.text(i, "Setting_name").as_deref() {
            Some("searchd.listen") => listen.extend(set.text(i, "Value")),
            Some("searchd.data_dir") => data_dir = set.text(i, "Value").map(PathBuf::from),
            _ => {}
        }
    }
    let members: BTreeSet<NodeId> = status(client, "cluster_%_nodes_set")
        .await?
        .values()
        .flat_map(|v| topology::parse_nodes_set(v))
        .collect();
    let id = topology::node_id(&listen, &members, &local_addresses())?;
    Ok(NodeInfo { id, data_dir })
}

/// Health of one replication cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterHealth {
    pub status: String,
    pub node_state: String,
    pub size: usize,
    pub membership: Membership,
    /// Buddy's live-node count: the `replication` entries in `nodes_view`.
    pub view_count: usize,
}

/// `None` when this node is not in the cluster.
pub async fn cluster_health(
    client: &dyn NodeApi,
    cluster: &ClusterName,
) -> Result<Option<ClusterHealth>, ClientError> {
    let counters = status(client, &format!("cluster_{cluster}_%")).await?;
    let get = |name: &str| counters.get(&format!("cluster_{cluster}_{name}")).cloned();
    let Some(view) = get("nodes_view") else {
        return Ok(None);
    };
    let status = get("status").unwrap_or_default();
    let all = topology::parse_nodes_set(&get("nodes_set").unwrap_or_default());
    let active = topology::parse_nodes_view(&view);
    Ok(Some(ClusterHealth {
        membership: Membership {
            all: all.union(&active).cloned().collect(),
            active,
            primary: status == "primary",
        },
        status,
        node_state: get("node_state").unwrap_or_default(),
        size: get("size").and_then(|s| s.parse().ok()).unwrap_or(0),
        view_count: topology::view_node_count(&view),
    }))
}

/// Live membership of the place the metadata lives: the user cluster as this
/// node sees it, or this node alone for local sharding. `None` when the
/// cluster status cannot be read or this node is not in the cluster.
pub async fn membership(
    client: &dyn NodeApi,
    scope: &crate::sharding::records::Scope,
    me: &NodeId,
) -> Option<Membership> {
    let Some(cluster) = scope.cluster() else {
        return Some(Membership::single(me));
    };
    match cluster_health(client, cluster).await {
        Ok(health) => health.map(|h| h.membership),
        Err(e) => {
            tracing::debug!(error = %e, "cannot read cluster status");
            None
        }
    }
}

/// This node: the API of its daemon (acting as `system.buddy`) and its
/// identity. Cheap to clone.
#[derive(Clone)]
pub struct LocalNode {
    api: Arc<dyn NodeApi>,
    identity: Arc<OnceCell<NodeInfo>>,
}

impl LocalNode {
    pub fn new(api: Arc<dyn NodeApi>) -> Self {
        Self {
            api,
            identity: Arc::default(),
        }
    }

    pub fn api(&self) -> &Arc<dyn NodeApi> {
        &self.api
    }

    /// This node's identity, discovered once.
    pub async fn info(&self) -> Result<&NodeInfo, DaemonError> {
        self.identity.get_or_try_init(|| discover(&*self.api)).await
    }

    pub async fn id(&self) -> Result<NodeId, DaemonError> {
        Ok(self.info().await?.id.clone())
    }
}
