//! The consistency checker: compares what the sharding metadata says
//! (`system.sharding_table`, the operation records in
//! `system.sharding_state`) with what every node actually holds, and lists
//! every difference. `shardbuddy check --node <host:http_port>` prints them;
//! the fault tests poll [`check`] until it finds none.
//!
//! What is compared, for every table in the committed placement:
//! * each node the placement names holds the physical table of each shard it
//!   is given (`system.<t>_s<N>`) and a `type='shard'` table `<t>` whose
//!   routes (its `local=` and the mirrors of its `agent=`s) reach each shard
//!   on exactly the nodes holding it;
//! * a shard held by two or more nodes is in a replication cluster on each of
//!   them, and its copies hold the same number of rows;
//!
//! and on every node of the cluster: no physical shard table the placement
//! does not put there, no `type='shard'` table over shard tables of a table
//! that is not placed there, and no replication cluster (other than the one
//! the metadata lives in) holding no table. An operation that is still
//! running is reported too: the cluster is consistent only at rest (a
//! rebalance whose placement is in force and whose only steps left wait for
//! nodes that are down counts as at rest).
//!
//! Everything is read, nothing is changed. Each node is read through its
//! HTTP listener (`/sql?mode=raw`), the way shardbuddy reads other nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use crate::client::ClientError;
use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::ShardTable;
use crate::sharding::daemon;
use crate::sharding::holdings::{self, Holdings, Orphan, Placed};
use crate::sharding::node::NodeApi;
use crate::sharding::records::{GroupStatus, Scope, TableStatus};
use crate::sharding::store::{MetaStore, SqlStore, StoreError};

/// One difference between the metadata and the nodes, printed as one line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Discrepancy {
    /// An operation group that has not reached a final status.
    Running {
        group: String,
        kind: String,
        table: String,
        status: String,
    },
    /// A CREATE or DROP request that has not been answered yet.
    Requested { table: String, status: String },
    /// A node the placement names could not be read.
    Unreadable { node: NodeId, error: String },
    /// A placed shard whose physical table is missing on its node.
    MissingCopy {
        table: TableName,
        shard: u32,
        node: NodeId,
    },
    /// A physical shard table the placement does not put on its node.
    OrphanShard { node: NodeId, shard: ShardTable },
    /// A placed table without its `type='shard'` table on a node.
    MissingWrapper { table: TableName, node: NodeId },
    /// A `type='shard'` table whose routes to a shard differ from the nodes
    /// holding it.
    WrongRoute {
        table: TableName,
        node: NodeId,
        shard: u32,
        routes: BTreeSet<NodeId>,
        holders: BTreeSet<NodeId>,
    },
    /// A `type='shard'` table over the shards of a table not placed there.
    StrayWrapper { table: String, node: NodeId },
    /// A shard with several copies that is in no replication cluster on one
    /// of its holders.
    NotReplicated {
        table: TableName,
        shard: u32,
        node: NodeId,
    },
    /// A replication cluster that is not primary on a node.
    ClusterDown {
        cluster: ClusterName,
        node: NodeId,
        status: String,
    },
    /// A replication cluster, other than the metadata's own, holding nothing.
    EmptyCluster { cluster: ClusterName, node: NodeId },
    /// Copies of one shard holding different numbers of rows.
    RowCounts {
        table: TableName,
        shard: u32,
        counts: BTreeMap<NodeId, u64>,
    },
}

fn list(nodes: &BTreeSet<NodeId>) -> String {
    if nodes.is_empty() {
        return "no node".into();
    }
    nodes
        .iter()
        .map(NodeId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Discrepancy::Running {
                group,
                kind,
                table,
                status,
            } => write!(
                f,
                "operation {group} ({kind} of table '{table}') is still {status}"
            ),
            Discrepancy::Requested { table, status } => write!(
                f,
                "the request for table '{table}' is still {status}"
            ),
            Discrepancy::Unreadable { node, error } => {
                write!(f, "node {node} holds copies but cannot be read: {error}")
            }
            Discrepancy::MissingCopy { table, shard, node } => write!(
                f,
                "missing copy: shard {shard} of table '{table}' is placed on {node}, which has no {}",
                ShardTable::new(table, *shard)
            ),
            Discrepancy::OrphanShard { node, shard } => write!(
                f,
                "orphan shard table: {node} holds {shard}, which the placement does not put there"
            ),
            Discrepancy::MissingWrapper { table, node } => write!(
                f,
                "missing wrapper: table '{table}' is placed on {node}, which has no type='shard' table '{table}'"
            ),
            Discrepancy::WrongRoute {
                table,
                node,
                shard,
                routes,
                holders,
            } => write!(
                f,
                "stale wrapper: table '{table}' on {node} sends shard {shard} to {} but it is held by {}",
                list(routes),
                list(holders)
            ),
            Discrepancy::StrayWrapper { table, node } => write!(
                f,
                "stray wrapper: {node} has a type='shard' table '{table}' over shard tables, and the placement of '{table}' does not name {node}"
            ),
            Discrepancy::NotReplicated { table, shard, node } => write!(
                f,
                "shard {shard} of table '{table}' has several copies but is in no replication cluster on {node}"
            ),
            Discrepancy::ClusterDown {
                cluster,
                node,
                status,
            } => write!(f, "replication cluster {cluster} is {status} on {node}"),
            Discrepancy::EmptyCluster { cluster, node } => write!(
                f,
                "replication cluster {cluster} on {node} holds no table"
            ),
            Discrepancy::RowCounts {
                table,
                shard,
                counts,
            } => {
                let counts: Vec<String> =
                    counts.iter().map(|(n, c)| format!("{n}: {c}")).collect();
                write!(
                    f,
                    "the copies of shard {shard} of table '{table}' hold different row counts ({})",
                    counts.join(", ")
                )
            }
        }
    }
}

/// Why the check could not be made at all.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CheckError {
    #[error("cannot read node {node}: {source}")]
    Entry { node: String, source: ClientError },
    #[error("cannot read the sharding metadata through {node}: {source}")]
    Metadata { node: String, source: StoreError },
    #[error(
        "the sharding metadata on {node} is not current (it is not a synced member of a primary component of cluster '{cluster}'): run the check through another node, or again once this one has synced"
    )]
    NotCurrent { node: String, cluster: String },
}

/// What one check found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The nodes read, and those of the cluster that could not be read
    /// while holding nothing (not a discrepancy, but worth saying).
    pub nodes: BTreeSet<NodeId>,
    pub unread: BTreeMap<NodeId, String>,
    pub tables: usize,
    /// Sorted, one per difference found.
    pub discrepancies: Vec<Discrepancy>,
}

impl Report {
    pub fn is_consistent(&self) -> bool {
        self.discrepancies.is_empty()
    }
}

/// Checks the cluster `entry` (any node's API handle) belongs to.
pub async fn check(entry: Arc<dyn NodeApi>) -> Result<Report, CheckError> {
    let entry_name = || "the entry node".to_string();
    let info = daemon::discover(&*entry).await.map_err(|e| match e {
        daemon::DaemonError::Client(source) => CheckError::Entry {
            node: entry_name(),
            source,
        },
        daemon::DaemonError::NodeId(e) => CheckError::Entry {
            node: entry_name(),
            source: ClientError::Decode {
                url: "SHOW SETTINGS".into(),
                reason: e.to_string(),
            },
        },
    })?;
    let me = info.id;
    let metadata_err = |source| CheckError::Metadata {
        node: me.to_string(),
        source,
    };
    let mut report = Report::default();
    let probe = SqlStore::new(Arc::clone(&entry), Scope::Local);
    let scope = if probe.is_initialized().await.map_err(metadata_err)? {
        probe.ready_scope().await.map_err(metadata_err)?
    } else {
        None
    };
    let Some(scope) = scope else {
        // No sharding metadata: nothing can be inconsistent with it, but
        // shard tables left on this node are still orphans.
        let holdings = holdings::read(&*entry, &me)
            .await
            .map_err(|source| CheckError::Entry {
                node: me.to_string(),
                source,
            })?;
        report.nodes.insert(me.clone());
        compare(
            &BTreeMap::new(),
            &BTreeMap::from([(me, holdings)]),
            None,
            &mut report,
        );
        return Ok(report);
    };
    let store = SqlStore::new(Arc::clone(&entry), scope.clone());
    // A node cut off from the quorum, or rejoining, serves metadata that may
    // be stale: nothing is judged from it (compared again once it is read).
    let not_current = || CheckError::NotCurrent {
        node: me.to_string(),
        cluster: scope.cluster().map(ToString::to_string).unwrap_or_default(),
    };
    let current_view = || async {
        daemon::current_view(&*entry, &scope)
            .await
            .map_err(|source| CheckError::Entry {
                node: me.to_string(),
                source,
            })
    };
    let view = current_view().await?.ok_or_else(not_current)?;

    // Operations still running: the cluster is consistent only at rest.
    for (group, record) in store.groups().await.map_err(metadata_err)? {
        // A settled rebalance is in force; only its steps on nodes that
        // are down wait for them to come back.
        let settled = record.rebalance.as_ref().is_some_and(|r| r.settled);
        if !record.status.is_final() && !settled {
            report.discrepancies.push(Discrepancy::Running {
                group: group.to_string(),
                kind: format!("{:?}", record.kind).to_lowercase(),
                table: record.table.to_string(),
                status: group_status(record.status).into(),
            });
        }
    }
    for (table, state) in store.tables().await.map_err(metadata_err)? {
        if matches!(
            state.status,
            TableStatus::Requested | TableStatus::Processing
        ) {
            let status = match state.status {
                TableStatus::Requested => "requested",
                _ => "processing",
            };
            report.discrepancies.push(Discrepancy::Requested {
                table: table.to_string(),
                status: status.into(),
            });
        }
    }

    // The placement: (table, shard) → holders, and every placed node.
    let placed = holdings::placed(&store.placement_rows(None).await.map_err(metadata_err)?);
    report.tables = placed.len();
    if current_view().await?.as_ref() != Some(&view) {
        return Err(not_current());
    }

    // Every node: the metadata cluster's members and every placed node.
    let mut nodes: BTreeSet<NodeId> = placed.values().flat_map(|n| n.keys().cloned()).collect();
    nodes.insert(me.clone());
    if let Some(cluster) = scope.cluster() {
        if let Ok(Some(health)) = daemon::cluster_health(&*entry, cluster).await {
            nodes.extend(health.membership.all);
        }
    }
    // A node placed with no shard (it only has the wrapper: a node that is
    // down once a rebalance moved its copies away) holds no data.
    let holders: BTreeSet<&NodeId> = placed
        .values()
        .flat_map(|n| n.iter().filter(|(_, s)| !s.is_empty()).map(|(n, _)| n))
        .collect();
    let mut held = BTreeMap::new();
    for node in &nodes {
        let api = if *node == me {
            Arc::clone(&entry)
        } else {
            entry.for_node(node)
        };
        match holdings::read(&*api, node).await {
            Ok(holdings) => {
                report.nodes.insert(node.clone());
                held.insert(node.clone(), holdings);
            }
            Err(e) if holders.contains(node) => {
                report.discrepancies.push(Discrepancy::Unreadable {
                    node: node.clone(),
                    error: e.to_string(),
                })
            }
            Err(e) => {
                report.unread.insert(node.clone(), e.to_string());
            }
        }
    }
    compare(&placed, &held, scope.cluster(), &mut report);

    // Row counts of copies, where every holder of a shard could be read.
    for (table, by_node) in &placed {
        let mut by_shard: BTreeMap<u32, Vec<&NodeId>> = BTreeMap::new();
        for (node, shards) in by_node {
            for shard in shards {
                by_shard.entry(*shard).or_default().push(node);
            }
        }
        for (shard, holders) in by_shard {
            if holders.len() < 2 {
                continue;
            }
            let physical = ShardTable::new(table, shard);
            let mut counts = BTreeMap::new();
            for node in holders {
                let has_it = held.get(node).is_some_and(|h| h.shards.contains(&physical));
                if !has_it {
                    continue;
                }
                let api = if *node == me {
                    Arc::clone(&entry)
                } else {
                    entry.for_node(node)
                };
                if let Ok(n) = row_count(&*api, &physical).await {
                    counts.insert(node.clone(), n);
                }
            }
            let distinct: BTreeSet<u64> = counts.values().copied().collect();
            if distinct.len() > 1 {
                report.discrepancies.push(Discrepancy::RowCounts {
                    table: table.clone(),
                    shard,
                    counts,
                });
            }
        }
    }
    report.discrepancies.sort();
    report.discrepancies.dedup();
    Ok(report)
}

fn group_status(status: GroupStatus) -> &'static str {
    match status {
        GroupStatus::Committed => "committed",
        GroupStatus::Aborting => "aborting",
        GroupStatus::RollingBack => "rolling back",
        GroupStatus::Done => "done",
        GroupStatus::RollbackFailed => "rollback failed",
        GroupStatus::Stale => "stale",
        GroupStatus::Stopped => "stopped",
        GroupStatus::Undone => "undone",
    }
}

/// Compares the placement with what the nodes in `held` hold (nodes that
/// could not be read are not in it and are not compared).
fn compare(
    placed: &Placed,
    held: &BTreeMap<NodeId, Holdings>,
    metadata_cluster: Option<&ClusterName>,
    report: &mut Report,
) {
    let out = &mut report.discrepancies;
    for (table, by_node) in placed {
        let mut holders_of: BTreeMap<u32, BTreeSet<NodeId>> = BTreeMap::new();
        for (node, shards) in by_node {
            for shard in shards {
                holders_of.entry(*shard).or_default().insert(node.clone());
            }
        }
        for (node, shards) in by_node {
            let Some(holdings) = held.get(node) else {
                continue;
            };
            for shard in shards {
                let physical = ShardTable::new(table, *shard);
                if !holdings.shards.contains(&physical) {
                    out.push(Discrepancy::MissingCopy {
                        table: table.clone(),
                        shard: *shard,
                        node: node.clone(),
                    });
                }
                let copies = holders_of.get(shard).map_or(0, BTreeSet::len);
                let clustered = holdings
                    .clusters
                    .iter()
                    .any(|c| c.tables.iter().any(|t| *t == physical.to_string()));
                if copies >= 2 && !clustered {
                    out.push(Discrepancy::NotReplicated {
                        table: table.clone(),
                        shard: *shard,
                        node: node.clone(),
                    });
                }
            }
            let Some(routes) = holdings.wrappers.get(table) else {
                out.push(Discrepancy::MissingWrapper {
                    table: table.clone(),
                    node: node.clone(),
                });
                continue;
            };
            let shards: BTreeSet<u32> = holders_of
                .keys()
                .copied()
                .chain(routes.keys().filter(|s| s.table == *table).map(|s| s.shard))
                .collect();
            for shard in shards {
                let to = routes
                    .get(&ShardTable::new(table, shard))
                    .cloned()
                    .unwrap_or_default();
                let by = holders_of.get(&shard).cloned().unwrap_or_default();
                if to != by {
                    out.push(Discrepancy::WrongRoute {
                        table: table.clone(),
                        node: node.clone(),
                        shard,
                        routes: to,
                        holders: by,
                    });
                }
            }
        }
    }
    for orphan in holdings::orphans(placed, held, metadata_cluster) {
        out.push(match orphan {
            Orphan::Shard { node, shard, .. } => Discrepancy::OrphanShard { node, shard },
            Orphan::Wrapper { node, table } => Discrepancy::StrayWrapper {
                table: table.to_string(),
                node,
            },
            Orphan::Cluster { node, cluster } => Discrepancy::EmptyCluster { cluster, node },
        });
    }
    for (node, holdings) in held {
        for cluster in &holdings.clusters {
            if Some(&cluster.name) == metadata_cluster {
                continue;
            }
            if cluster.status != "primary" {
                out.push(Discrepancy::ClusterDown {
                    cluster: cluster.name.clone(),
                    node: node.clone(),
                    status: if cluster.status.is_empty() {
                        "in no known state".into()
                    } else {
                        cluster.status.clone()
                    },
                });
            }
        }
    }
}

/// `SELECT COUNT(*)` of a physical shard table.
async fn row_count(api: &dyn NodeApi, table: &ShardTable) -> Result<u64, ClientError> {
    let set = api
        .query_one(&format!("SELECT COUNT(*) FROM {table}"))
        .await?;
    let cell = set.rows.first().and_then(|r| r.first());
    Ok(match cell {
        Some(serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
        Some(serde_json::Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    })
}

#[cfg(test)]
mod tests;
