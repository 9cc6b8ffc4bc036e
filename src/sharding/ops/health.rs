//! `SHOW SHARDING HEALTH`: the cluster's sharding health as SQL, one row per
//! fact (`section`, `item`, `value`, `detail`), the overall status first
//! and one `alert` row per problem with what to do about it.
//!
//! Overall status: `critical` when a shard has no live copy or no master
//! holds the lease; `warning` when a shard is below its RF, a node is down
//! or drained, a rebalance failed (within the retention period), a queue
//! step is failing or an orphan was found; `healthy` otherwise.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use crate::ids::{NodeId, TableName};
use crate::protocol::{Column, ColumnType, ResultSet};
use crate::sharding::daemon;
use crate::sharding::holdings;
use crate::sharding::ops::common::OpError;
use crate::sharding::ops::show::visible_tables;
use crate::sharding::ops::Context;
use crate::sharding::records::{GroupKind, GroupStatus, QueueStatus, TableStatus};
use crate::sharding::store::MetaStore;

struct Report {
    rows: Vec<[String; 4]>,
    alerts: Vec<(&'static str, String, String)>,
}

impl Report {
    fn fact(
        &mut self,
        section: &str,
        item: impl Into<String>,
        value: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.rows
            .push([section.into(), item.into(), value.into(), detail.into()]);
    }

    fn alert(&mut self, severity: &'static str, what: String, action: impl Into<String>) {
        self.alerts.push((severity, what, action.into()));
    }
}

fn join(nodes: &BTreeSet<NodeId>) -> String {
    nodes
        .iter()
        .map(NodeId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

pub async fn health(ctx: &Context, user: &str) -> Result<Vec<ResultSet>, OpError> {
    let mut out = ResultSet::with_columns(
        ["section", "item", "value", "detail"]
            .into_iter()
            .map(|n| Column::new(n, ColumnType::String))
            .collect(),
    );
    let Some(store) = ctx.metadata.store().await? else {
        out.push_row(vec![
            json!("status"),
            json!("overall"),
            json!("healthy"),
            json!("no sharded table on this node"),
        ]);
        return Ok(vec![out]);
    };
    let visible = visible_tables(ctx, user).await?;
    let mut report = Report {
        rows: Vec::new(),
        alerts: Vec::new(),
    };
    let me = ctx.node.id().await?;
    let members = daemon::membership(&**ctx.node.api(), store.scope(), &me).await;
    let (live, all) = match &members {
        Some(m) => {
            let mut all = m.all.clone();
            all.extend(m.active.iter().cloned());
            (m.active.clone(), all)
        }
        None => (BTreeSet::new(), BTreeSet::new()),
    };
    report_master(&mut report, &*store, &live, members.is_some()).await?;
    let drained = report_nodes(&mut report, &*store, &live, &all, members.is_some()).await?;
    report_tables(&mut report, &*store, &visible, &live).await?;
    report_queue(&mut report, &*store).await?;
    report_operations(&mut report, &*store).await?;
    report_orphans(&mut report, ctx, &*store, &me, &live).await?;
    render(&mut out, report, !drained.is_empty());
    Ok(vec![out])
}

/// The `master` fact (who holds the lease) and its alerts.
async fn report_master(
    report: &mut Report,
    store: &dyn MetaStore,
    live: &BTreeSet<NodeId>,
    members_known: bool,
) -> Result<(), OpError> {
    match store.lease().await? {
        Some(lease) => {
            let state = if live.contains(&lease.node) {
                "active"
            } else {
                "inactive"
            };
            report.fact(
                "master",
                lease.node.as_str(),
                format!("epoch {}", lease.epoch),
                state,
            );
            if !live.contains(&lease.node) && members_known {
                report.alert(
                    "critical",
                    format!("the master {} is not live", lease.node),
                    "a new master takes the lease within SHARDBUDDY_LEASE_TIMEOUT_MS; check that \
                     the live nodes run shardbuddy",
                );
            }
        }
        None => report.alert(
            "critical",
            "no node holds the master lease".into(),
            "check that the nodes run shardbuddy (searchd's buddy_path)",
        ),
    }
    Ok(())
}

/// The `nodes` facts (live, down, drained) and their alerts; returns the drained nodes.
async fn report_nodes(
    report: &mut Report,
    store: &dyn MetaStore,
    live: &BTreeSet<NodeId>,
    all: &BTreeSet<NodeId>,
    members_known: bool,
) -> Result<BTreeSet<NodeId>, OpError> {
    let down: BTreeSet<NodeId> = all.difference(live).cloned().collect();
    report.fact(
        "nodes",
        "live",
        format!("{}/{}", live.len(), all.len()),
        if down.is_empty() {
            String::new()
        } else {
            format!("down: {}", join(&down))
        },
    );
    if !members_known {
        report.alert(
            "warning",
            "the cluster's membership cannot be read on this node".into(),
            "check SHOW STATUS LIKE 'cluster%' on this node",
        );
    }
    for node in &down {
        report.alert(
            "warning",
            format!("node {node} is down"),
            "bring it back, or let the rebalance rebuild its copies on the other nodes",
        );
    }
    let drained: BTreeSet<NodeId> = store.drained().await?.into_keys().collect();
    if !drained.is_empty() {
        report.fact(
            "nodes",
            "drained",
            drained.len().to_string(),
            join(&drained),
        );
    }
    Ok(drained)
}

/// Tables by rf_status: one `table` fact per visible table and its alerts.
async fn report_tables(
    report: &mut Report,
    store: &dyn MetaStore,
    visible: &BTreeMap<String, String>,
    live: &BTreeSet<NodeId>,
) -> Result<(), OpError> {
    let mut shards: BTreeMap<(TableName, u32), Vec<NodeId>> = BTreeMap::new();
    for row in store.placement_rows(None).await? {
        if !visible.contains_key(row.table.as_str()) {
            continue;
        }
        for s in &row.shards {
            shards
                .entry((row.table.clone(), *s))
                .or_default()
                .push(row.node.clone());
        }
    }
    let mut tables: BTreeMap<TableName, [usize; 3]> = BTreeMap::new();
    for ((table, _), holders) in &shards {
        let alive = holders.iter().filter(|n| live.contains(*n)).count();
        let i = if alive == holders.len() {
            0
        } else if alive > 0 {
            1
        } else {
            2
        };
        tables.entry(table.clone()).or_default()[i] += 1;
    }
    for (table, [ok, degraded, broken]) in &tables {
        let status = if *broken > 0 {
            "broken"
        } else if *degraded > 0 {
            "degraded"
        } else {
            "ok"
        };
        report.fact(
            "table",
            table.as_str(),
            status,
            format!("shards ok {ok}, degraded {degraded}, broken {broken}"),
        );
        if *broken > 0 {
            report.alert(
                "critical",
                format!("table {table}: {broken} shard(s) have no live copy"),
                "bring back a node that holds them; nothing can be copied meanwhile",
            );
        } else if *degraded > 0 {
            report.alert(
                "warning",
                format!("table {table}: {degraded} shard(s) are below their RF"),
                "see SHOW REBALANCE STATUS; with SHARDBUDDY_REBALANCE_AUTO=0 run REBALANCE TABLE",
            );
        }
    }
    Ok(())
}

/// The `queue` facts (unprocessed steps per node by status) and the failing-steps alert.
async fn report_queue(report: &mut Report, store: &dyn MetaStore) -> Result<(), OpError> {
    let mut queue: BTreeMap<NodeId, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let mut failing = 0;
    for row in store.unprocessed_rows().await? {
        let status = match row.status {
            QueueStatus::Created => "created",
            QueueStatus::Processing => "processing",
            QueueStatus::Error => {
                failing += 1;
                "error"
            }
            QueueStatus::Processed => continue,
        };
        *queue
            .entry(row.node)
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    for (node, counts) in &queue {
        let total: usize = counts.values().sum();
        let detail = counts
            .iter()
            .map(|(s, n)| format!("{s} {n}"))
            .collect::<Vec<_>>()
            .join(", ");
        report.fact("queue", node.as_str(), total.to_string(), detail);
    }
    if failing > 0 {
        report.alert(
            "warning",
            format!("{failing} queue step(s) failed their last attempt"),
            "they are retried with back-off; see the [BUDDY] lines in searchd's log",
        );
    }
    Ok(())
}

/// The `operations` facts (running and failed groups) and one alert per failed one.
async fn report_operations(report: &mut Report, store: &dyn MetaStore) -> Result<(), OpError> {
    let groups = store.groups().await?;
    let running: Vec<String> = groups
        .iter()
        .filter(|(_, g)| g.kind != GroupKind::Rollback && !g.status.is_final())
        .map(|(n, g)| format!("{n} ({})", g.operator_state()))
        .collect();
    let failed: Vec<String> = groups
        .iter()
        .filter(|(_, g)| matches!(g.status, GroupStatus::Undone | GroupStatus::RollbackFailed))
        .map(|(n, _)| n.to_string())
        .collect();
    report.fact(
        "operations",
        "running",
        running.len().to_string(),
        running.join(", "),
    );
    report.fact(
        "operations",
        "failed",
        failed.len().to_string(),
        failed.join(", "),
    );
    for name in &failed {
        report.alert(
            "warning",
            format!("operation {name} failed"),
            "see last_error in SHOW REBALANCE STATUS",
        );
    }
    Ok(())
}

/// The `cleanup` facts (orphans found now, objects the cleanup removed
/// within the retention period) and one alert per orphan. Orphans are only
/// looked for at rest: while an operation runs, what it is making is not
/// placed yet.
async fn report_orphans(
    report: &mut Report,
    ctx: &Context,
    store: &dyn MetaStore,
    me: &NodeId,
    live: &BTreeSet<NodeId>,
) -> Result<(), OpError> {
    let groups = store.groups().await?;
    let removed: usize = groups
        .values()
        .filter(|g| g.kind == GroupKind::Cleanup && g.status == GroupStatus::Done)
        .map(|g| g.removes.len())
        .sum();
    let every = match ctx.config.cleanup_interval {
        Some(d) => format!("the cleanup runs every {} ms", d.as_millis()),
        None => "the cleanup is off (SHARDBUDDY_CLEANUP_MS=0)".into(),
    };
    report.fact("cleanup", "removed", removed.to_string(), every);
    let open = groups.values().any(|g| !g.status.is_final())
        || store
            .tables()
            .await?
            .values()
            .any(|t| matches!(t.status, TableStatus::Requested | TableStatus::Processing));
    if open {
        report.fact(
            "cleanup",
            "orphans",
            "-",
            "not looked for while an operation runs",
        );
        return Ok(());
    }
    let api = ctx.node.api();
    let mut held = BTreeMap::new();
    for node in live {
        let remote = (node != me).then(|| api.for_node(node));
        let on = remote.as_deref().unwrap_or(&**api);
        if let Ok(h) = holdings::read(on, node).await {
            held.insert(node.clone(), h);
        }
    }
    let placed = holdings::placed(&store.placement_rows(None).await?);
    let orphans = holdings::orphans(&placed, &held, store.scope().cluster());
    report.fact(
        "cleanup",
        "orphans",
        orphans.len().to_string(),
        format!("on the {} live node(s) read", held.len()),
    );
    for orphan in orphans {
        let action = orphan.remedy();
        report.alert("warning", orphan.to_string(), action);
    }
    Ok(())
}

/// Writes the overall status row, then the facts, then the alerts.
fn render(out: &mut ResultSet, report: Report, any_drained: bool) {
    let overall = if report.alerts.iter().any(|a| a.0 == "critical") {
        "critical"
    } else if !report.alerts.is_empty() || any_drained {
        "warning"
    } else {
        "healthy"
    };
    out.push_row(vec![
        json!("status"),
        json!("overall"),
        json!(overall),
        json!(format!("{} alert(s)", report.alerts.len())),
    ]);
    for [section, item, value, detail] in report.rows {
        out.push_row(vec![
            json!(section),
            json!(item),
            json!(value),
            json!(detail),
        ]);
    }
    for (severity, what, action) in report.alerts {
        out.push_row(vec![
            json!("alert"),
            json!(severity),
            json!(what),
            json!(action),
        ]);
    }
}
