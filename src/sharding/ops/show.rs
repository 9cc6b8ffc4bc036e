//! `SHOW SHARDING STATUS [[c:]t]` and `SHOW SHARDING MASTER` (spec §5.7),
//! limited to the tables the requesting user can see (spec §1.8).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::ids::{NodeId, TableName};
use crate::placement::{self, Action, ClusterMap, Ddl, ShardTable};
use crate::protocol::{Column, ColumnType, ResultSet};
use crate::sharding::daemon;
use crate::sharding::ops::common::{is_permission_denied, OpError};
use crate::sharding::ops::Context;
use crate::sharding::records::{PlacementRow, Scope};
use crate::sharding::store::MetaStore;
use crate::sql::QualifiedName;

/// Tables the user can see, with their types (`SHOW TABLES` as the user). A
/// user the daemon refuses `SHOW TABLES` (no read grant at all) sees nothing:
/// the statement then answers an empty result, as Manticore's does. The
/// listing never falls between the two halves of a wrapper swap.
pub(super) async fn visible_tables(
    ctx: &Context,
    user: &str,
) -> Result<BTreeMap<String, String>, OpError> {
    let listed = {
        let _listing = ctx.node.wrappers().listing().await;
        ctx.node.api().as_user(user).query_one("SHOW TABLES").await
    };
    let set = match listed {
        Ok(set) => set,
        Err(e) if is_permission_denied(&e) => return Ok(BTreeMap::new()),
        Err(e) => return Err(e.into()),
    };
    Ok((0..set.rows.len())
        .filter_map(|i| {
            Some((
                set.text(i, "Table")?,
                set.text(i, "Type").unwrap_or_default(),
            ))
        })
        .collect())
}

/// Members that are down (none for local sharding).
async fn inactive_nodes(ctx: &Context, scope: &Scope) -> Result<BTreeSet<NodeId>, OpError> {
    let Some(c) = scope.cluster() else {
        return Ok(BTreeSet::new());
    };
    Ok(daemon::cluster_health(&**ctx.node.api(), c)
        .await?
        .map(|h| h.membership.inactive())
        .unwrap_or_default())
}

/// `(node, table, shard)` whose creation is still queued.
async fn pending_shards(
    store: &dyn MetaStore,
) -> Result<BTreeSet<(NodeId, TableName, u32)>, OpError> {
    Ok(store
        .unprocessed_rows()
        .await?
        .into_iter()
        .filter_map(|r| match r.action {
            Action::Ddl(Ddl::CreateShard { shard, .. }) => Some((r.node, shard.table, shard.shard)),
            _ => None,
        })
        .collect())
}

/// The target holders of every shard a running (not yet settled)
/// rebalance changes.
async fn copies_being_built(
    store: &dyn MetaStore,
) -> Result<BTreeMap<(TableName, u32), Vec<NodeId>>, OpError> {
    let mut out: BTreeMap<(TableName, u32), Vec<NodeId>> = BTreeMap::new();
    for group in store.groups().await?.into_values() {
        let Some(plan) = group.rebalance.as_ref().filter(|p| !p.settled) else {
            continue;
        };
        if group.status.is_final() {
            continue;
        }
        for (node, shards) in &plan.target {
            for shard in shards {
                out.entry((group.table.clone(), *shard))
                    .or_default()
                    .push(node.clone());
            }
        }
    }
    Ok(out)
}

/// Adds what `node` reports of its replication clusters to `clusters` (a
/// node that does not answer adds nothing).
async fn observe(ctx: &Context, node: &NodeId, clusters: &mut ClusterMap) {
    let api = ctx.node.api().for_node(node);
    if let Ok(reports) = daemon::cluster_reports(&*api).await {
        clusters.reported(node);
        for r in reports {
            clusters.insert(node, r.name, r.tables);
        }
    }
}

fn status_columns() -> Vec<Column> {
    [
        ("table", ColumnType::String),
        ("shard", ColumnType::LongLong),
        ("node", ColumnType::String),
        ("status", ColumnType::String),
        ("cluster", ColumnType::String),
        ("replication_cluster", ColumnType::String),
        ("rf", ColumnType::LongLong),
        ("rf_status", ColumnType::String),
    ]
    .into_iter()
    .map(|(n, t)| Column::new(n, t))
    .collect()
}

pub async fn status(
    ctx: &Context,
    user: &str,
    target: Option<&QualifiedName>,
) -> Result<Vec<ResultSet>, OpError> {
    let mut out = ResultSet::with_columns(status_columns());
    let Some(store) = ctx.metadata.store().await? else {
        return Ok(vec![out]);
    };
    let visible = visible_tables(ctx, user).await?;
    let rows = store.placement_rows(target.map(|q| &q.table)).await?;
    let pending = pending_shards(&*store).await?;
    let (inactive, shards) = shard_holders(ctx, rows, &visible, target).await?;
    let building = copies_being_built(&*store).await?;
    let drained: BTreeSet<NodeId> = store.drained().await?.into_keys().collect();
    let mut asked = BTreeSet::new();
    let mut clusters = ClusterMap::default();
    for ((table, shard), (cluster, mut holders)) in shards {
        holders.sort();
        let down = inactive.get(&cluster).cloned().unwrap_or_default();
        let status_of = |n: &NodeId| {
            if pending.contains(&(n.clone(), table.clone(), shard)) {
                "pending"
            } else if down.contains(n) {
                "inactive"
            } else if drained.contains(n) {
                // Serving, and about to be moved off (ALTER CLUSTER … DRAIN NODE).
                "draining"
            } else {
                "active"
            }
        };
        let alive = holders
            .iter()
            .filter(|n| matches!(status_of(n), "active" | "draining"))
            .count();
        let rf_status = rf_status(alive, holders.len());
        // The cluster a holder reports the shard in (a rebalance moves shards
        // into clusters of its own); where none says, the one CREATE made.
        let here = ShardTable::new(&table, shard);
        for node in holders
            .iter()
            .chain(building.get(&(table.clone(), shard)).into_iter().flatten())
        {
            if !down.contains(node) && asked.insert(node.clone()) {
                observe(ctx, node, &mut clusters).await;
            }
        }
        let replication_cluster = holders
            .iter()
            .find_map(|n| clusters.cluster_of(n, &here))
            .cloned()
            .unwrap_or_else(|| placement::internal_cluster_name(&holders));
        let mut push = |node: &NodeId, status: &str, replication: &str| {
            out.push_row(vec![
                json!(table.as_str()),
                json!(shard),
                json!(node.as_str()),
                json!(status),
                json!(cluster.to_string()),
                json!(replication),
                json!(holders.len()),
                json!(rf_status),
            ]);
        };
        for node in &holders {
            push(node, status_of(node), replication_cluster.as_str());
        }
        // Copies a running rebalance is making, in their new replica set.
        if let Some(target) = building.get(&(table.clone(), shard)) {
            for node in target.iter().filter(|n| !holders.contains(n)) {
                let joined = clusters.cluster_of(node, &here).map(|c| c.to_string());
                push(node, "pending", joined.as_deref().unwrap_or(""));
            }
        }
    }
    Ok(vec![out])
}

/// The inactive nodes of each scope.
type InactiveByScope = BTreeMap<Scope, BTreeSet<NodeId>>;
/// (table, shard) -> (scope, holders).
type ShardHolders = BTreeMap<(TableName, u32), (Scope, Vec<NodeId>)>;

/// The holders of each visible (table, shard) with its scope, and the
/// inactive nodes of each scope involved.
async fn shard_holders(
    ctx: &Context,
    rows: Vec<PlacementRow>,
    visible: &BTreeMap<String, String>,
    target: Option<&QualifiedName>,
) -> Result<(InactiveByScope, ShardHolders), OpError> {
    let mut inactive = InactiveByScope::new();
    let mut shards = ShardHolders::new();
    for row in rows {
        if !visible.contains_key(row.table.as_str()) {
            continue;
        }
        if let Some(c) = target.and_then(|q| q.cluster.as_ref()) {
            if row.scope.cluster() != Some(c) {
                continue;
            }
        }
        if !inactive.contains_key(&row.scope) {
            let down = inactive_nodes(ctx, &row.scope).await?;
            inactive.insert(row.scope.clone(), down);
        }
        for s in &row.shards {
            let entry = shards
                .entry((row.table.clone(), *s))
                .or_insert_with(|| (row.scope.clone(), Vec::new()));
            entry.1.push(row.node.clone());
        }
    }
    Ok((inactive, shards))
}

/// A shard's `rf_status` from how many of its copies are active.
fn rf_status(alive: usize, copies: usize) -> &'static str {
    if alive == copies {
        "ok"
    } else if alive > 0 {
        "degraded"
    } else {
        "broken"
    }
}

pub async fn master(ctx: &Context, user: &str) -> Result<Vec<ResultSet>, OpError> {
    let mut out = ResultSet::with_columns(vec![
        Column::new("node", ColumnType::String),
        Column::new("status", ColumnType::String),
    ]);
    let Some(store) = ctx.metadata.store().await? else {
        return Ok(vec![out]);
    };
    let visible = visible_tables(ctx, user).await?;
    if !visible.values().any(|ty| ty == "shard") {
        return Ok(vec![out]);
    }
    let Some(lease) = store.lease().await? else {
        return Ok(vec![out]);
    };
    let down = inactive_nodes(ctx, store.scope()).await?;
    let status = if down.contains(&lease.node) {
        "inactive"
    } else {
        "active"
    };
    out.push_row(vec![json!(lease.node.as_str()), json!(status)]);
    Ok(vec![out])
}
