//! `SHOW SHARDING STATUS [[c:]t]` and `SHOW SHARDING MASTER` (spec §5.7),
//! limited to the tables the requesting user can see (spec §1.8).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use regex::Regex;
use serde_json::json;

use crate::ids::{ClusterName, NodeId};
use crate::placement;
use crate::protocol::{Column, ColumnType, ResultSet};
use crate::sharding::daemon;
use crate::sharding::lease::Lease;
use crate::sharding::ops::common::{is_permission_denied, OpError};
use crate::sharding::runtime::Shared;
use crate::sharding::state::StateKey;
use crate::sharding::store::Store;
use crate::sql::QualifiedName;

/// Tables the user can see, with their types (`SHOW TABLES` as the user). A
/// user the daemon refuses `SHOW TABLES` (no read grant at all) sees nothing:
/// the statement then answers an empty result, as Manticore's does.
async fn visible_tables(shared: &Shared, user: &str) -> Result<BTreeMap<String, String>, OpError> {
    let set = match shared.client.as_user(user).query_one("SHOW TABLES").await {
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

/// Members that are down, per user cluster (`""` = local: never down).
async fn inactive_nodes(shared: &Shared, cluster: &str) -> Result<BTreeSet<NodeId>, OpError> {
    let Ok(c) = ClusterName::parse(cluster) else {
        return Ok(BTreeSet::new());
    };
    Ok(daemon::cluster_health(&shared.client, &c)
        .await?
        .map(|h| h.membership.inactive())
        .unwrap_or_default())
}

static PENDING_SHARD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?[`"]?system\.([^\s`"]+?)_s(\d+)[`"]?"#,
    )
    .expect("regex")
});

/// `(node, table, shard)` whose creation is still queued.
async fn pending_shards(store: &Store) -> Result<BTreeSet<(NodeId, String, u32)>, OpError> {
    Ok(store
        .unprocessed_rows()
        .await?
        .into_iter()
        .filter_map(|r| {
            let c = PENDING_SHARD.captures(&r.query)?;
            Some((r.node, c[1].to_string(), c[2].parse().ok()?))
        })
        .collect())
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
    shared: &Shared,
    user: &str,
    target: Option<&QualifiedName>,
) -> Result<Vec<ResultSet>, OpError> {
    let mut out = ResultSet::with_columns(status_columns());
    let Some(store) = shared.store().await? else {
        return Ok(vec![out]);
    };
    let visible = visible_tables(shared, user).await?;
    let rows = store.placement_rows(target.map(|q| &q.table)).await?;
    let pending = pending_shards(&store).await?;
    let mut inactive: BTreeMap<String, BTreeSet<NodeId>> = BTreeMap::new();
    // (table, shard) -> (cluster, holders)
    let mut shards: BTreeMap<(String, u32), (String, Vec<NodeId>)> = BTreeMap::new();
    for row in rows {
        if !visible.contains_key(&row.table) {
            continue;
        }
        if let Some(c) = target.and_then(|q| q.cluster.as_ref()) {
            if c.as_str() != row.cluster {
                continue;
            }
        }
        if !inactive.contains_key(&row.cluster) {
            let down = inactive_nodes(shared, &row.cluster).await?;
            inactive.insert(row.cluster.clone(), down);
        }
        for s in &row.shards {
            let entry = shards
                .entry((row.table.clone(), *s))
                .or_insert_with(|| (row.cluster.clone(), Vec::new()));
            entry.1.push(row.node.clone());
        }
    }
    for ((table, shard), (cluster, mut holders)) in shards {
        holders.sort();
        let down = inactive.get(&cluster).cloned().unwrap_or_default();
        let status_of = |n: &NodeId| {
            if pending.contains(&(n.clone(), table.clone(), shard)) {
                "pending"
            } else if down.contains(n) {
                "inactive"
            } else {
                "active"
            }
        };
        let alive = holders.iter().filter(|n| status_of(n) == "active").count();
        let rf_status = if alive == holders.len() {
            "ok"
        } else if alive > 0 {
            "degraded"
        } else {
            "broken"
        };
        let replication_cluster = placement::internal_cluster_name(&holders);
        for node in &holders {
            out.push_row(vec![
                json!(table),
                json!(shard),
                json!(node.as_str()),
                json!(status_of(node)),
                json!(cluster),
                json!(replication_cluster.as_str()),
                json!(holders.len()),
                json!(rf_status),
            ]);
        }
    }
    Ok(vec![out])
}

pub async fn master(shared: &Shared, user: &str) -> Result<Vec<ResultSet>, OpError> {
    let mut out = ResultSet::with_columns(vec![
        Column::new("node", ColumnType::String),
        Column::new("status", ColumnType::String),
    ]);
    let Some(store) = shared.store().await? else {
        return Ok(vec![out]);
    };
    let visible = visible_tables(shared, user).await?;
    if !visible.values().any(|ty| ty == "shard") {
        return Ok(vec![out]);
    }
    let Some(lease) = store.get_as::<Lease>(&StateKey::MasterLease).await? else {
        return Ok(vec![out]);
    };
    let cluster = store.cluster().map(|c| c.to_string()).unwrap_or_default();
    let down = inactive_nodes(shared, &cluster).await?;
    let status = if down.contains(&lease.node) {
        "inactive"
    } else {
        "active"
    };
    out.push_row(vec![json!(lease.node.as_str()), json!(status)]);
    Ok(vec![out])
}
