//! What this node's shardbuddy can say about the cluster, read through the
//! sharding seams (the metadata store, the node API, `SHOW SHARDING STATUS`'s
//! own code) into one plain value. The Prometheus exposition and the status
//! page are both drawn from it, so they never disagree.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ids::NodeId;
use crate::sharding::clock::now_ms;
use crate::sharding::daemon;
use crate::sharding::ops::common::OpError;
use crate::sharding::ops::{show, Context};
use crate::sharding::records::{GroupKind, GroupRecord, GroupStatus, QueueStatus};
use crate::sharding::store::MetaStore;

/// One snapshot of the cluster as this node sees it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClusterView {
    /// This node's id (`host:api_port`).
    pub me: String,
    /// Whether the sharding metadata exists here (nothing below is known
    /// while it does not).
    pub ready: bool,
    /// The lease holder, and the lease's epoch.
    pub master: Option<String>,
    pub epoch: u64,
    pub is_master: bool,
    /// Members of the cluster the metadata lives in, with whether this node
    /// sees them in the cluster's view.
    pub nodes: Vec<NodeLiveness>,
    pub queue: Vec<QueueCount>,
    /// Age of the oldest queue row not processed yet (the master's wall
    /// clock wrote `created_at`: the figure is as good as the clocks agree).
    pub oldest_pending_s: Option<f64>,
    pub operations: Vec<OperationCount>,
    /// Operation groups that are not final yet.
    pub running: Vec<RunningOperation>,
    /// Objects the master's cleanup removed, in the cleanup operations on
    /// record (kept for the retention period).
    pub cleaned: u64,
    pub tables: Vec<TableView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeLiveness {
    pub node: String,
    pub up: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueCount {
    pub node: String,
    pub status: &'static str,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct OperationCount {
    pub kind: String,
    pub state: String,
    pub count: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunningOperation {
    pub group: String,
    pub kind: String,
    pub state: String,
    pub table: String,
    /// Seconds since its master started it (that master's wall clock).
    pub age_s: f64,
    /// Its queue rows: processed, failed (last attempt), waiting for a node
    /// that was down when the rebalance was planned, and all of them.
    pub steps_done: u64,
    pub steps_failed: u64,
    pub steps_deferred: u64,
    pub steps_total: u64,
    /// A rebalance whose steps are done but on the deferred nodes: its
    /// target placement is in force.
    pub settled: bool,
    /// Why a rebalance runs (`node lost`, …); empty for other kinds.
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableView {
    pub name: String,
    /// The worst `rf_status` of its shards: `ok`, `degraded` or `broken`.
    pub rf_status: String,
    pub shards: Vec<ShardView>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ShardView {
    pub shard: u32,
    pub rf_status: String,
    pub copies: Vec<CopyView>,
}

/// Where one copy of a shard stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CopyState {
    /// Held by a node that is up.
    Live,
    /// Being made (queued, or the target of a running rebalance).
    Building,
    /// Still held, but a running rebalance moves it elsewhere.
    Retiring,
    /// Held by a node that is down.
    Missing,
}

#[derive(Debug, Clone, Serialize)]
pub struct CopyView {
    pub node: String,
    pub state: CopyState,
}

/// Reads everything the view holds. The statuses of shard copies come from
/// the code that answers `SHOW SHARDING STATUS`, acting for nobody in
/// particular (the helper's own rights).
pub async fn gather(ctx: &Context) -> Result<ClusterView, OpError> {
    let me = ctx.node.id().await?;
    let mut view = ClusterView {
        me: me.to_string(),
        ..ClusterView::default()
    };
    let Some(store) = ctx.metadata.store().await? else {
        return Ok(view);
    };
    view.ready = true;
    if let Some(lease) = store.lease().await? {
        view.is_master = lease.node == me;
        view.master = Some(lease.node.to_string());
        view.epoch = lease.epoch;
    }
    if let Some(members) = daemon::membership(&**ctx.node.api(), store.scope(), &me).await {
        view.nodes = members
            .all
            .union(&members.active)
            .map(|n| NodeLiveness {
                node: n.to_string(),
                up: members.active.contains(n),
            })
            .collect();
    }
    let groups = store.groups().await?;
    queue_and_operations(&*store, &groups, &mut view).await?;
    let status = show::status(ctx, "", None).await?;
    view.tables = tables(
        status.first().map(|s| s.rows.len()).unwrap_or(0),
        |i, col| status.first().and_then(|s| s.text(i, col)),
        &retiring(&groups),
    );
    Ok(view)
}

fn name_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

async fn queue_and_operations(
    store: &dyn MetaStore,
    groups: &BTreeMap<crate::sharding::records::GroupName, GroupRecord>,
    view: &mut ClusterView,
) -> Result<(), OpError> {
    let now = now_ms();
    let mut queue: BTreeMap<(NodeId, QueueStatus), u64> = BTreeMap::new();
    let mut operations: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut oldest: Option<i64> = None;
    for (name, group) in groups {
        *operations
            .entry((name_of(&group.kind), name_of(&group.status)))
            .or_default() += 1;
        if group.kind == GroupKind::Cleanup && group.status == GroupStatus::Done {
            view.cleaned += group.removes.len() as u64;
        }
        let rows = store.group_rows(name).await?;
        let deferred_nodes: &[NodeId] = group
            .rebalance
            .as_ref()
            .map_or(&[], |r| r.deferred.as_slice());
        let (mut done, mut failed, mut deferred) = (0, 0, 0);
        for row in &rows {
            *queue.entry((row.node.clone(), row.status)).or_default() += 1;
            if row.status == QueueStatus::Processed {
                done += 1;
                continue;
            }
            if deferred_nodes.contains(&row.node) {
                // Waits for its node to come back (`shardbuddy_node_up`).
                deferred += 1;
                continue;
            }
            if row.status == QueueStatus::Error {
                failed += 1;
            }
            if !group.status.is_final() {
                oldest = Some(oldest.map_or(row.created_at, |o| o.min(row.created_at)));
            }
        }
        if !group.status.is_final() {
            view.running.push(RunningOperation {
                group: name.to_string(),
                kind: name_of(&group.kind),
                state: name_of(&group.status),
                table: group.table.to_string(),
                age_s: seconds_between(group.started_at_ms, now),
                steps_done: done,
                steps_failed: failed,
                steps_deferred: deferred,
                steps_total: rows.len() as u64,
                settled: group.rebalance.as_ref().is_some_and(|r| r.settled),
                reason: group
                    .rebalance
                    .as_ref()
                    .map(|r| r.reason.clone())
                    .unwrap_or_default(),
            });
        }
    }
    view.queue = queue
        .into_iter()
        .map(|((node, status), rows)| QueueCount {
            node: node.to_string(),
            status: status.as_str(),
            rows,
        })
        .collect();
    view.operations = operations
        .into_iter()
        .map(|((kind, state), count)| OperationCount { kind, state, count })
        .collect();
    view.oldest_pending_s = oldest.map(|at| seconds_between(at, now));
    Ok(())
}

fn seconds_between(from_ms: i64, to_ms: i64) -> f64 {
    (to_ms.saturating_sub(from_ms)).max(0) as f64 / 1000.0
}

/// `(table, shard) → nodes` that hold a copy a running, unsettled rebalance
/// does not keep there.
type Targets = BTreeMap<(String, u32), BTreeSet<String>>;

/// The target holders of every shard of every running rebalance.
fn retiring(groups: &BTreeMap<crate::sharding::records::GroupName, GroupRecord>) -> Targets {
    let mut targets = Targets::new();
    for group in groups.values() {
        if group.kind != GroupKind::Rebalance
            || group.status != GroupStatus::Committed
            || group.rebalance.as_ref().is_none_or(|r| r.settled)
        {
            continue;
        }
        let Some(plan) = &group.rebalance else {
            continue;
        };
        // Every shard the table has in the plan gets an entry, so a holder
        // missing from it is known to be left.
        let shards: BTreeSet<u32> = plan.target.iter().flat_map(|(_, s)| s.clone()).collect();
        for shard in shards {
            targets.insert((group.table.to_string(), shard), BTreeSet::new());
        }
        for (node, shards) in &plan.target {
            for shard in shards {
                if let Some(holders) = targets.get_mut(&(group.table.to_string(), *shard)) {
                    holders.insert(node.to_string());
                }
            }
        }
    }
    targets
}

/// Tables from `SHOW SHARDING STATUS`'s rows (`cell(row, column)`).
fn tables(
    rows: usize,
    cell: impl Fn(usize, &str) -> Option<String>,
    targets: &Targets,
) -> Vec<TableView> {
    let mut out: BTreeMap<String, BTreeMap<u32, ShardView>> = BTreeMap::new();
    for i in 0..rows {
        let (Some(table), Some(shard), Some(node), Some(status)) = (
            cell(i, "table"),
            cell(i, "shard").and_then(|s| s.parse::<u32>().ok()),
            cell(i, "node"),
            cell(i, "status"),
        ) else {
            continue;
        };
        let kept = targets
            .get(&(table.clone(), shard))
            .is_none_or(|holders| holders.contains(&node));
        let state = match status.as_str() {
            "pending" => CopyState::Building,
            "inactive" => CopyState::Missing,
            _ if !kept => CopyState::Retiring,
            _ => CopyState::Live,
        };
        let entry = out
            .entry(table)
            .or_default()
            .entry(shard)
            .or_insert_with(|| ShardView {
                shard,
                rf_status: cell(i, "rf_status").unwrap_or_default(),
                copies: Vec::new(),
            });
        entry.copies.push(CopyView { node, state });
    }
    out.into_iter()
        .map(|(name, shards)| {
            let shards: Vec<ShardView> = shards.into_values().collect();
            TableView {
                name,
                rf_status: worst(shards.iter().map(|s| s.rf_status.as_str())).to_string(),
                shards,
            }
        })
        .collect()
}

/// The worst of several `rf_status` values.
fn worst<'a>(statuses: impl Iterator<Item = &'a str>) -> &'a str {
    let rank = |s: &str| match s {
        "ok" => 0,
        "degraded" => 1,
        _ => 2,
    };
    statuses.max_by_key(|s| rank(s)).unwrap_or("ok")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_are_live_building_retiring_or_missing() {
        let rows = [
            ["t", "0", "a", "active", "ok"],
            ["t", "0", "b", "active", "ok"],
            ["t", "0", "c", "pending", "ok"],
            ["t", "1", "a", "inactive", "degraded"],
            ["t", "1", "b", "active", "degraded"],
            ["u", "0", "a", "active", "ok"],
        ];
        let columns = ["table", "shard", "node", "status", "rf_status"];
        let cell = |i: usize, col: &str| {
            let at = columns.iter().position(|c| *c == col)?;
            Some(rows[i][at].to_string())
        };
        let targets = Targets::from([(
            ("t".to_string(), 0),
            BTreeSet::from(["a".to_string(), "c".to_string()]),
        )]);
        let tables = tables(rows.len(), cell, &targets);
        assert_eq!(tables.len(), 2);
        let t = &tables[0];
        assert_eq!((t.name.as_str(), t.rf_status.as_str()), ("t", "degraded"));
        let states: Vec<Vec<CopyState>> = t
            .shards
            .iter()
            .map(|s| s.copies.iter().map(|c| c.state).collect())
            .collect();
        use CopyState::*;
        assert_eq!(
            states,
            vec![vec![Live, Retiring, Building], vec![Missing, Live]]
        );
        assert_eq!(tables[1].rf_status, "ok");
    }

    #[test]
    fn the_worst_rf_status_wins() {
        assert_eq!(worst(["ok", "degraded", "ok"].into_iter()), "degraded");
        assert_eq!(worst(["degraded", "broken"].into_iter()), "broken");
        assert_eq!(worst(std::iter::empty()), "ok");
    }
}
