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
    /// `cluster_<c>_conf_id`: changes with every view of the cluster.
    pub conf_id: String,
}

impl ClusterHealth {
    /// Whether this node's copy of the cluster's tables is current: a synced
    /// member (or a donor) of a primary component. A survivor of a lost
    /// quorum stays `synced` in a `non-primary` component, and a node that
    /// rejoins is `primary` while still `joining` (`golden/facts.md` §3, the
    /// survivor of a 2-of-3 loss and the restart timeline): either may hold
    /// stale rows.
    pub fn is_current(&self) -> bool {
        self.status == "primary" && matches!(self.node_state.as_str(), "synced" | "donor")
    }
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
        conf_id: get("conf_id").unwrap_or_default(),
    }))
}

/// The view in which this node's copy of the metadata in `scope` is
/// current (its `conf_id`; local metadata always is), or `None` while it
/// may be stale. A decision read between two equal answers was read from
/// current rows.
pub async fn current_view(
    client: &dyn NodeApi,
    scope: &crate::sharding::records::Scope,
) -> Result<Option<String>, ClientError> {
    let Some(cluster) = scope.cluster() else {
        return Ok(Some(String::new()));
    };
    Ok(cluster_health(client, cluster)
        .await?
        .filter(ClusterHealth::is_current)
        .map(|h| h.conf_id))
}

/// One replication cluster a node runs, as it reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterReport {
    pub name: ClusterName,
    /// `cluster_<c>_status`: `primary`, `non-primary`, …
    pub status: String,
    /// `cluster_<c>_nodes_set`: the members it was formed with.
    pub nodes_set: BTreeSet<NodeId>,
    /// `cluster_<c>_indexes`: the tables it holds.
    pub tables: Vec<String>,
}

/// Every replication cluster the node runs: `SHOW STATUS LIKE 'cluster%'`
/// lists them in blocks, each led by a `cluster_name` row (a name may hold
/// `_`, so the block, not the counter's text, says which cluster a row is
/// about).
pub async fn cluster_reports(client: &dyn NodeApi) -> Result<Vec<ClusterReport>, ClientError> {
    let set = client.query_one("SHOW STATUS LIKE 'cluster%'").await?;
    let mut reports: Vec<ClusterReport> = Vec::new();
    for i in 0..set.rows.len() {
        let (Some(counter), value) = (set.text(i, "Counter"), set.text(i, "Value")) else {
            continue;
        };
        let value = value.unwrap_or_default();
        if counter == "cluster_name" {
            if let Ok(name) = ClusterName::parse(&value) {
                reports.push(ClusterReport {
                    name,
                    status: String::new(),
                    nodes_set: BTreeSet::new(),
                    tables: Vec::new(),
                });
            }
            continue;
        }
        let Some(report) = reports.last_mut() else {
            continue;
        };
        let Some(field) = counter
            .strip_prefix("cluster_")
            .and_then(|rest| rest.strip_prefix(report.name.as_str()))
            .and_then(|rest| rest.strip_prefix('_'))
        else {
            continue;
        };
        match field {
            "status" => report.status = value,
            "nodes_set" => report.nodes_set = topology::parse_nodes_set(&value),
            "indexes" => {
                report.tables = value
                    .split(',')
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .map(str::to_string)
                    .collect()
            }
            _ => {}
        }
    }
    Ok(reports)
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

/// This node: the API of its daemon (acting as `system.buddy`), its
/// identity, and the gate of its wrapper swaps. Cheap to clone.
#[derive(Clone)]
pub struct LocalNode {
    api: Arc<dyn NodeApi>,
    identity: Arc<OnceCell<NodeInfo>>,
    wrappers: WrapperGate,
}

/// A rebalance replaces a node's wrapper by `DROP TABLE … OPTION force=1`
/// then `CREATE TABLE` (searchd has no atomic swap, `golden/facts.md` §7,
/// item 6): between the two, `SHOW TABLES` does not list the table. Only
/// this node's executor changes its wrappers, so a listing that must not
/// fall in that gap (which tables a user may see) waits for a swap under
/// way, and a swap waits for the listings that started before it.
#[derive(Clone, Default)]
pub struct WrapperGate(Arc<tokio::sync::RwLock<()>>);

impl WrapperGate {
    /// Held while a wrapper is swapped.
    pub async fn swap(&self) -> tokio::sync::RwLockWriteGuard<'_, ()> {
        self.0.write().await
    }

    /// Held while this node's tables are listed.
    pub async fn listing(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.0.read().await
    }
}

impl LocalNode {
    pub fn new(api: Arc<dyn NodeApi>) -> Self {
        Self {
            api,
            identity: Arc::default(),
            wrappers: WrapperGate::default(),
        }
    }

    pub fn api(&self) -> &Arc<dyn NodeApi> {
        &self.api
    }

    pub fn wrappers(&self) -> &WrapperGate {
        &self.wrappers
    }

    /// This node's identity, discovered once.
    pub async fn info(&self) -> Result<&NodeInfo, DaemonError> {
        self.identity.get_or_try_init(|| discover(&*self.api)).await
    }

    pub async fn id(&self) -> Result<NodeId, DaemonError> {
        Ok(self.info().await?.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protocol::{Column, ColumnType, ResultSet};
    use crate::sharding::testing::FakeNode;

    #[tokio::test]
    async fn cluster_reports_are_read_block_by_block() {
        let rows = [
            ("cluster_name", "c"),
            ("cluster_c_status", "primary"),
            ("cluster_c_nodes_set", "127.0.0.1:9312,127.0.0.1:9412"),
            (
                "cluster_c_indexes",
                "system.sharding_state,system.sharding_queue",
            ),
            ("cluster_name", "rs_a_b"),
            ("cluster_rs_a_b_status", "non-primary"),
            ("cluster_rs_a_b_nodes_set", "127.0.0.1:9312,127.0.0.1:9512"),
            ("cluster_rs_a_b_indexes_count", "2"),
            ("cluster_rs_a_b_indexes", "system.t_s0,system.t_s2"),
            ("cluster_name", "empty"),
            ("cluster_empty_indexes", ""),
        ];
        let node = FakeNode::new(move |sql, _| {
            assert_eq!(sql, "SHOW STATUS LIKE 'cluster%'");
            let mut set = ResultSet::with_columns(vec![
                Column::new("Counter", ColumnType::String),
                Column::new("Value", ColumnType::String),
            ]);
            for (k, v) in rows {
                set.push_row(vec![json!(k), json!(v)]);
            }
            Ok(vec![set])
        });
        let reports = cluster_reports(&node).await.unwrap();
        let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["c", "rs_a_b", "empty"]);
        let rs = &reports[1];
        assert_eq!(rs.status, "non-primary");
        assert_eq!(rs.tables, ["system.t_s0", "system.t_s2"]);
        assert_eq!(
            rs.nodes_set,
            BTreeSet::from([NodeId::new("127.0.0.1:9312"), NodeId::new("127.0.0.1:9512")])
        );
        assert_eq!(reports[0].tables.len(), 2);
        assert!(reports[2].tables.is_empty() && reports[2].status.is_empty());
    }
}
