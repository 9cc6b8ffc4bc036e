//! What a node actually holds of sharding's objects (physical shard tables,
//! `type='shard'` tables and their routes, replication clusters), and which
//! of them no metadata accounts for: the orphans. The consistency checker
//! compares holdings with the metadata; the master's cleanup removes the
//! orphans it may remove; `SHOW SHARDING HEALTH` lists them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::client::ClientError;
use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::{is_internal_cluster_name, ShardTable};
use crate::sharding::daemon::{self, ClusterReport};
use crate::sharding::node::NodeApi;
use crate::sharding::records::PlacementRow;

/// Committed placement by table: node → the shards it holds.
pub type Placed = BTreeMap<TableName, BTreeMap<NodeId, BTreeSet<u32>>>;

/// The placement rows as a map.
pub fn placed(rows: &[PlacementRow]) -> Placed {
    let mut placed: Placed = BTreeMap::new();
    for row in rows {
        placed
            .entry(row.table.clone())
            .or_default()
            .entry(row.node.clone())
            .or_default()
            .extend(row.shards.iter().copied());
    }
    placed
}

/// What one node holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holdings {
    /// Physical shard tables (`system.<t>_s<N>`).
    pub shards: BTreeSet<ShardTable>,
    /// `type='shard'` tables: name → each shard table they route to and
    /// the nodes they route it to.
    pub wrappers: BTreeMap<TableName, BTreeMap<ShardTable, BTreeSet<NodeId>>>,
    pub clusters: Vec<ClusterReport>,
}

impl Holdings {
    /// The replication cluster `shard` is in on this node, if any.
    pub fn cluster_of(&self, shard: &ShardTable) -> Option<&ClusterName> {
        let name = shard.to_string();
        self.clusters
            .iter()
            .find(|c| c.tables.contains(&name))
            .map(|c| &c.name)
    }
}

/// Reads what `api`'s node (`node`) holds.
pub async fn read(api: &dyn NodeApi, node: &NodeId) -> Result<Holdings, ClientError> {
    let mut holdings = Holdings::default();
    let system = api.query_one("SHOW TABLES FROM system").await?;
    holdings.shards = (0..system.rows.len())
        .filter_map(|i| system.text(i, "Table"))
        .filter_map(|t| ShardTable::parse(&t))
        .collect();
    let tables = api.query_one("SHOW TABLES").await?;
    for i in 0..tables.rows.len() {
        let (Some(name), kind) = (tables.text(i, "Table"), tables.text(i, "Type")) else {
            continue;
        };
        // Only names shardbuddy could have made need a look (and these
        // need no quoting).
        let Some(table) = TableName::parse(&name).ok().filter(|t| t.as_str() == name) else {
            continue;
        };
        if !matches!(kind.as_deref(), Some("shard" | "distributed")) {
            continue;
        }
        let ddl = api
            .query_one(&format!("SHOW CREATE TABLE {table} OPTION force=1"))
            .await?;
        let Some(text) = ddl.text(0, "Create Table") else {
            continue;
        };
        if text.contains("type='shard'") {
            holdings.wrappers.insert(table, routes_of(&text, node));
        }
    }
    holdings.clusters = daemon::cluster_reports(api).await?;
    Ok(holdings)
}

/// Where a `type='shard'` table's DDL, read on `node`, sends each shard
/// table: its `local='…'` (`node` itself) and the mirrors of its
/// `agent='host:port:table|…[options]'`.
pub fn routes_of(ddl: &str, node: &NodeId) -> BTreeMap<ShardTable, BTreeSet<NodeId>> {
    let mut routes: BTreeMap<ShardTable, BTreeSet<NodeId>> = BTreeMap::new();
    for (clause, value) in quoted_clauses(ddl) {
        match clause {
            "local" => {
                if let Some(shard) = ShardTable::parse(value) {
                    routes.entry(shard).or_default().insert(node.clone());
                }
            }
            "agent" => {
                let mirrors = value.split('[').next().unwrap_or_default();
                for mirror in mirrors.split('|') {
                    let Some((node, table)) = mirror.trim().rsplit_once(':') else {
                        continue;
                    };
                    for table in table.split(',') {
                        if let Some(shard) = ShardTable::parse(table.trim()) {
                            routes.entry(shard).or_default().insert(NodeId::new(node));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    routes
}

/// `name='value'` pairs of a DDL text, for `local` and `agent`.
fn quoted_clauses(ddl: &str) -> Vec<(&'static str, &str)> {
    let mut out = Vec::new();
    for clause in ["local", "agent"] {
        let opener = format!("{clause}='");
        let mut rest = ddl;
        while let Some(at) = rest.find(&opener) {
            let after = &rest[at + opener.len()..];
            let Some(end) = after.find('\'') else {
                break;
            };
            // Only a clause at a word boundary (not `xlocal='…'`).
            let boundary = at == 0 || !rest.as_bytes()[at - 1].is_ascii_alphanumeric();
            if boundary {
                out.push((clause, &after[..end]));
            }
            rest = &after[end + 1..];
        }
    }
    out
}

/// An object on a node that no placement accounts for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Orphan {
    /// A physical shard table the placement does not put on its node, and
    /// the replication cluster it is in there, if any.
    Shard {
        node: NodeId,
        shard: ShardTable,
        cluster: Option<ClusterName>,
    },
    /// A `type='shard'` table over the shards of a table not placed there.
    Wrapper { node: NodeId, table: TableName },
    /// A replication cluster, other than the metadata's own, holding no
    /// table.
    Cluster { node: NodeId, cluster: ClusterName },
}

impl Orphan {
    pub fn node(&self) -> &NodeId {
        match self {
            Orphan::Shard { node, .. }
            | Orphan::Wrapper { node, .. }
            | Orphan::Cluster { node, .. } => node,
        }
    }

    /// Whether the cleanup may remove it by itself: a shard table in no
    /// replication cluster (detaching one from a cluster would detach it on
    /// every member), a wrapper, and an empty cluster whose name shardbuddy
    /// makes (an empty cluster of the user's own is theirs).
    pub fn removable(&self) -> bool {
        match self {
            Orphan::Shard { cluster, .. } => cluster.is_none(),
            Orphan::Wrapper { .. } => true,
            Orphan::Cluster { cluster, .. } => is_internal_cluster_name(cluster),
        }
    }

    /// How to remove it by hand.
    pub fn remedy(&self) -> String {
        match self {
            Orphan::Shard {
                shard,
                cluster: Some(cluster),
                ..
            } => format!(
                "check that no copy of it is still needed, then run on that node: ALTER CLUSTER {cluster} DROP {shard}; DROP TABLE {shard}"
            ),
            Orphan::Cluster { cluster, .. } if !is_internal_cluster_name(cluster) => {
                format!("not made by sharding: keep it, or DELETE CLUSTER {cluster} if it is unused")
            }
            _ => "the master's cleanup removes it (SHARDBUDDY_CLEANUP_MS) while no operation runs".into(),
        }
    }
}

impl fmt::Display for Orphan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Orphan::Shard { node, shard, .. } => write!(
                f,
                "orphan shard table: {node} holds {shard}, which the placement does not put there"
            ),
            Orphan::Wrapper { node, table } => write!(
                f,
                "stray wrapper: {node} has a type='shard' table '{table}' over shard tables, and the placement of '{table}' does not name {node}"
            ),
            Orphan::Cluster { node, cluster } => write!(
                f,
                "replication cluster {cluster} on {node} holds no table"
            ),
        }
    }
}

/// Every object in `held` that `placed` does not account for. The
/// metadata's own cluster is never an orphan.
pub fn orphans(
    placed: &Placed,
    held: &BTreeMap<NodeId, Holdings>,
    metadata_cluster: Option<&ClusterName>,
) -> Vec<Orphan> {
    let mut out = Vec::new();
    let placed_on = |table: &TableName, node: &NodeId| placed.get(table).and_then(|n| n.get(node));
    for (node, holdings) in held {
        for shard in &holdings.shards {
            if !placed_on(&shard.table, node).is_some_and(|s| s.contains(&shard.shard)) {
                out.push(Orphan::Shard {
                    node: node.clone(),
                    shard: shard.clone(),
                    cluster: holdings.cluster_of(shard).cloned(),
                });
            }
        }
        for (table, routes) in &holdings.wrappers {
            let over_own_shards = routes.keys().any(|s| s.table == *table);
            if over_own_shards && placed_on(table, node).is_none() {
                out.push(Orphan::Wrapper {
                    node: node.clone(),
                    table: table.clone(),
                });
            }
        }
        for cluster in &holdings.clusters {
            if Some(&cluster.name) != metadata_cluster && cluster.tables.is_empty() {
                out.push(Orphan::Cluster {
                    node: node.clone(),
                    cluster: cluster.name.clone(),
                });
            }
        }
    }
    out.sort();
    out
}
