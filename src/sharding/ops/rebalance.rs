//! The operator's rebalancing statements: `SHOW REBALANCE STATUS`, `EXPLAIN
//! REBALANCE`, `REBALANCE TABLE`, `PAUSE` / `RESUME` / `STOP REBALANCE`.
//!
//! Reads are answered here from the metadata; `EXPLAIN` plans with the very
//! function the master's engine uses (`master::rebalance::consider`) on a
//! snapshot loaded the way the master loads its own, and changes nothing.
//! Changes are requests (`rebalance:<t>`) that the master carries out and
//! answers; this node waits for the answer (see `records::control`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::{json, Value};

use crate::ids::TableName;
use crate::protocol::{Column, ColumnType, ResultSet};
use crate::sharding::clock::now_ms;
use crate::sharding::master::driver;
use crate::sharding::master::engine::wrong_cluster;
use crate::sharding::master::rebalance::{self, Planned, Verdict};
use crate::sharding::master::snapshot::Snapshot;
use crate::sharding::ops::common::{self, user, OpError};
use crate::sharding::ops::show::visible_tables;
use crate::sharding::ops::Context;
use crate::sharding::records::{
    ControlAction, ControlRequest, ControlStatus, GroupKind, GroupName, GroupRecord, GroupStatus,
    OpKind, TableStatus,
};
use crate::sharding::store::MetaStore;
use crate::sql::QualifiedName;

/// Checks that `target` names a sharded table where it lives; returns the
/// store. Unknown table, plain table, wrong cluster: clear errors.
pub(super) async fn sharded_table(
    ctx: &Context,
    target: &QualifiedName,
) -> Result<std::sync::Arc<dyn MetaStore>, OpError> {
    let t = &target.table;
    let not_sharded = || {
        user(format!(
            "table '{t}' is not a sharded table: only sharded tables are rebalanced"
        ))
    };
    // The metadata first: the node's own wrapper may be missing for an
    // instant while a rebalance replaces it.
    let store = ctx.metadata.store().await?;
    let state = match &store {
        Some(store) => store.table(t).await?,
        None => None,
    };
    let sharded = state
        .as_ref()
        .is_some_and(|s| s.kind == OpKind::Create && s.status == TableStatus::Done);
    let (Some(store), true) = (store, sharded) else {
        return Err(match common::show_create(ctx, t).await? {
            None => user(format!("table '{t}' does not exist")),
            Some(ddl) if ddl.contains("type='shard'") => user(format!(
                "table '{t}' is not a sharded table (or its CREATE has not finished): only \
                 sharded tables are rebalanced"
            )),
            Some(_) => not_sharded(),
        });
    };
    if target.cluster.as_ref() != store.scope().cluster() {
        return Err(user(wrong_cluster(t, store.scope())));
    }
    Ok(store)
}

/// The tables of `wanted` the user can see.
pub(super) async fn visible_of(
    ctx: &Context,
    user_name: &str,
    wanted: &std::collections::BTreeSet<TableName>,
) -> Result<std::collections::BTreeSet<TableName>, OpError> {
    let visible = visible_tables(ctx, user_name).await?;
    Ok(wanted
        .iter()
        .filter(|t| visible.contains_key(t.as_str()))
        .cloned()
        .collect())
}

/// `REBALANCE TABLE`, `PAUSE`, `RESUME`, `STOP`: a request the master
/// carries out; answers what the master answered.
pub async fn request(
    ctx: &Context,
    user_name: &str,
    target: &QualifiedName,
    action: ControlAction,
) -> Result<Vec<ResultSet>, OpError> {
    let t = &target.table;
    common::check_schema_permission(ctx, user_name, t).await?;
    let store = sharded_table(ctx, target).await?;
    // Clear answers for what can be seen here already; the master checks
    // again from its own snapshot.
    let groups = store.groups().await?;
    let open = groups
        .iter()
        .find(|(_, g)| g.table == *t && g.kind == GroupKind::Rebalance && !g.status.is_final());
    match (action, open) {
        (ControlAction::Pause | ControlAction::Resume | ControlAction::Stop(_), None) => {
            return Err(user(format!("no rebalance of table '{t}' is running")))
        }
        (ControlAction::Pause, Some((_, g))) if g.is_paused() => {
            return Err(user(format!(
                "the rebalance of table '{t}' is already paused"
            )))
        }
        (ControlAction::Resume, Some((_, g))) if !g.is_paused() => {
            return Err(user(format!(
                "the rebalance of table '{t}' is not paused (it is {})",
                g.operator_state()
            )))
        }
        _ => {}
    }
    if let Some(pending) = store.control(t).await? {
        if pending.status == ControlStatus::Requested {
            return Err(user(format!(
                "another rebalance statement for table '{t}' is being carried out; retry when \
                 it has been answered"
            )));
        }
    }
    let me = ctx.node.id().await?;
    let id = common::request_id(me.as_str());
    let request =
        ControlRequest::requested(id.clone(), me, action, store.scope().clone(), now_ms());
    store.put_control(t, &request).await?;
    ctx.signals.master.notify_one();
    let deadline = Instant::now() + ctx.config.default_timeout;
    loop {
        let notified = ctx.signals.table_changed.notified();
        match store.control(t).await? {
            Some(r) if r.id == id && r.status != ControlStatus::Requested => {
                store.delete_control(t).await?;
                return match r.status {
                    ControlStatus::Failed => Err(user(r.error.unwrap_or_else(|| "refused".into()))),
                    _ => Ok(common::result_sets(r.result.as_ref())),
                };
            }
            Some(r) if r.id == id => {}
            _ => {
                return Err(user(format!(
                    "table '{t}': the request was replaced by another one; see SHOW REBALANCE \
                     STATUS"
                )))
            }
        }
        if Instant::now() >= deadline {
            return Err(user(format!(
                "Waiting timeout exceeded: the master has not answered yet; the request for \
                 table '{t}' stays queued, see SHOW REBALANCE STATUS"
            )));
        }
        tokio::select! {
            _ = tokio::time::sleep(ctx.config.wait_poll) => {}
            _ = notified => {}
        }
    }
}

fn explain_columns() -> Vec<Column> {
    [
        ("table", ColumnType::String),
        ("shard", ColumnType::LongLong),
        ("from", ColumnType::String),
        ("to", ColumnType::String),
        ("reason", ColumnType::String),
        ("copies", ColumnType::LongLong),
        ("lower_bound", ColumnType::LongLong),
        ("note", ColumnType::String),
    ]
    .into_iter()
    .map(|(n, t)| Column::new(n, t))
    .collect()
}

/// `EXPLAIN REBALANCE [TABLE [c:]t]`: what `REBALANCE TABLE` would do now,
/// one row per move; changes nothing.
pub async fn explain(
    ctx: &Context,
    user_name: &str,
    target: Option<&QualifiedName>,
) -> Result<Vec<ResultSet>, OpError> {
    let mut out = ResultSet::with_columns(explain_columns());
    let store = match target {
        Some(q) => sharded_table(ctx, q).await?,
        None => match ctx.metadata.store().await? {
            Some(store) => store,
            None => return Ok(vec![out]),
        },
    };
    let me = ctx.node.id().await?;
    let snap = driver::load(&*store, &**ctx.node.api(), &me, &ctx.config.retry, false).await?;
    let Some(members) = snap.members.clone() else {
        return Err(user(
            "the cluster's membership cannot be read on this node; retry".to_string(),
        ));
    };
    let clusters = snap.cluster_map();
    let tables = explained_tables(&snap, target);
    let visible = visible_of(ctx, user_name, &tables.iter().cloned().collect()).await?;
    for table in tables.iter().filter(|t| visible.contains(*t)) {
        let Some(state) = snap.tables.get(table) else {
            continue;
        };
        let mut note = |text: String| {
            out.push_row(vec![
                json!(table.as_str()),
                Value::Null,
                json!(""),
                json!(""),
                json!(""),
                json!(0),
                json!(0),
                json!(text),
            ]);
        };
        if let Some((name, g)) = snap.open_groups_of(table).next() {
            note(format!(
                "an operation is under way (group {name}, {}); see SHOW REBALANCE STATUS",
                g.operator_state()
            ));
            continue;
        }
        if snap.scope.cluster().is_none() {
            note("sharded on this node alone: nothing to move".into());
            continue;
        }
        let group = GroupName::new(GroupKind::Rebalance, table, 0);
        let rows = snap.placement_of(table);
        match rebalance::consider(
            table,
            state,
            &rows,
            rebalance::Cluster {
                members: &members,
                registered: &snap.registered,
                drained: &snap.drained,
                clusters: &clusters,
            },
            &group,
        ) {
            Verdict::Balanced => note("balanced: nothing to move".into()),
            Verdict::Skip(why) => note(why),
            Verdict::Rebalance(planned) => push_moves(&mut out, table, &planned),
        }
    }
    Ok(vec![out])
}

/// The tables `EXPLAIN REBALANCE` looks at: the one named, or every table
/// with a placement, sorted.
fn explained_tables(snap: &Snapshot, target: Option<&QualifiedName>) -> Vec<TableName> {
    match target {
        Some(q) => vec![q.table.clone()],
        None => {
            let mut names: Vec<TableName> =
                snap.placement.iter().map(|r| r.table.clone()).collect();
            names.dedup();
            names.sort();
            names.dedup();
            names
        }
    }
}

/// One `EXPLAIN REBALANCE` row per move of a planned rebalance.
fn push_moves(out: &mut ResultSet, table: &TableName, planned: &Planned) {
    for m in &planned.moves {
        out.push_row(vec![
            json!(table.as_str()),
            json!(m.shard),
            json!(m.from.as_ref().map_or("", |n| n.as_str())),
            json!(m.to.as_ref().map_or("", |n| n.as_str())),
            json!(m.reason),
            json!(planned.copies),
            json!(planned.lower_bound),
            json!(""),
        ]);
    }
}

fn status_columns() -> Vec<Column> {
    [
        ("table", ColumnType::String),
        ("group", ColumnType::String),
        ("state", ColumnType::String),
        ("phase", ColumnType::String),
        ("reason", ColumnType::String),
        ("moves_done", ColumnType::LongLong),
        ("moves_total", ColumnType::LongLong),
        ("steps_done", ColumnType::LongLong),
        ("steps_total", ColumnType::LongLong),
        ("progress_pct", ColumnType::Double),
        ("copies_total", ColumnType::LongLong),
        ("rows_copied", ColumnType::LongLong),
        ("started_at", ColumnType::String),
        ("elapsed_s", ColumnType::Double),
        ("eta_s", ColumnType::Double),
        ("last_error", ColumnType::String),
    ]
    .into_iter()
    .map(|(n, t)| Column::new(n, t))
    .collect()
}

/// `SHOW REBALANCE STATUS [[c:]t]`: the latest rebalance of each table
/// (running, paused, stopping, stopped, completed, failed), as its master
/// recorded it.
pub async fn status(
    ctx: &Context,
    user_name: &str,
    target: Option<&QualifiedName>,
) -> Result<Vec<ResultSet>, OpError> {
    let mut out = ResultSet::with_columns(status_columns());
    let store = match target {
        Some(q) => sharded_table(ctx, q).await?,
        None => match ctx.metadata.store().await? {
            Some(store) => store,
            None => return Ok(vec![out]),
        },
    };
    let groups = store.groups().await?;
    let wanted = groups
        .values()
        .filter(|g| g.kind == GroupKind::Rebalance)
        .map(|g| g.table.clone())
        .collect();
    let visible = visible_of(ctx, user_name, &wanted).await?;
    for (table, (name, g)) in latest_rebalances(groups, &visible, target) {
        if let Some(row) = status_row(&table, &name, &g) {
            out.push_row(row);
        }
    }
    Ok(vec![out])
}

/// The latest rebalance group of each visible table (of the target's, if
/// one is named).
fn latest_rebalances(
    groups: BTreeMap<GroupName, GroupRecord>,
    visible: &BTreeSet<TableName>,
    target: Option<&QualifiedName>,
) -> BTreeMap<TableName, (GroupName, GroupRecord)> {
    let mut latest: BTreeMap<TableName, (GroupName, GroupRecord)> = BTreeMap::new();
    for (name, g) in groups {
        if g.kind != GroupKind::Rebalance
            || !visible.contains(&g.table)
            || target.is_some_and(|q| q.table != g.table)
        {
            continue;
        }
        let newer = latest
            .get(&g.table)
            .is_none_or(|(n, old)| (g.started_at_ms, &name) > (old.started_at_ms, n));
        if newer {
            latest.insert(g.table.clone(), (name, g));
        }
    }
    latest
}

/// The `SHOW REBALANCE STATUS` row of one group; `None` without a plan.
fn status_row(table: &TableName, name: &GroupName, g: &GroupRecord) -> Option<Vec<Value>> {
    let plan = g.rebalance.as_ref()?;
    let p = &plan.progress;
    let state = operator_state(g);
    let completed = g.status == GroupStatus::Done;
    let steps_done = if completed {
        plan.steps_total
    } else {
        p.steps_done
    };
    let moves_done = if completed {
        plan.moves.len() as u64
    } else {
        p.moves_done
    };
    let work_done = if completed {
        plan.work_total
    } else {
        p.work_done
    };
    let pct = if plan.work_total == 0 {
        if completed {
            100.0
        } else {
            0.0
        }
    } else {
        (work_done as f64 * 1000.0 / plan.work_total as f64).floor() / 10.0
    };
    let phase = match g.status {
        GroupStatus::Aborting | GroupStatus::RollingBack => "rolling back",
        GroupStatus::Committed if plan.settled => "clean-up on returned nodes",
        GroupStatus::Committed => p.phase.as_str(),
        _ => "",
    };
    let eta = match g.status {
        GroupStatus::Committed if !g.is_paused() => {
            p.eta_ms.map_or(Value::Null, |ms| json!(ms as f64 / 1000.0))
        }
        _ if completed => json!(0.0),
        _ => Value::Null,
    };
    Some(vec![
        json!(table.as_str()),
        json!(name.as_str()),
        json!(state),
        json!(phase),
        json!(plan.reason),
        json!(moves_done),
        json!(plan.moves.len()),
        json!(steps_done),
        json!(plan.steps_total),
        json!(pct),
        json!(plan.copies),
        Value::Null,
        json!(utc(g.started_at_ms)),
        json!(p.elapsed_ms as f64 / 1000.0),
        eta,
        json!(g.error.clone().unwrap_or_default()),
    ])
}

/// The six states operators see.
fn operator_state(g: &GroupRecord) -> &'static str {
    match g.status {
        GroupStatus::Done => "completed",
        GroupStatus::Undone | GroupStatus::RollbackFailed | GroupStatus::Stale => "failed",
        GroupStatus::Stopped => "stopped",
        GroupStatus::Aborting | GroupStatus::RollingBack if g.stop_requested().is_none() => {
            "failed"
        }
        _ => match g.operator_state() {
            "paused" => "paused",
            "stopping" => "stopping",
            _ => "running",
        },
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of a wall-clock time in ms.
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `ALTER CLUSTER c DRAIN NODE '<id>'` / `UNDRAIN`: records (or removes)
/// the drain; the master moves the node's copies off (automatically, or at
/// the next `REBALANCE TABLE` when automatic rebalancing is off) and places
/// no new ones there.
pub async fn drain(
    ctx: &Context,
    cluster: &crate::ids::ClusterName,
    node: &str,
    drain: bool,
) -> Result<Vec<ResultSet>, OpError> {
    let Some(store) = ctx.metadata.store().await? else {
        return Err(user(format!(
            "cluster '{cluster}' has no sharded tables on this node: there is nothing to drain"
        )));
    };
    match store.scope().cluster() {
        Some(c) if c == cluster => {}
        Some(c) => {
            return Err(user(format!(
                "sharded tables of these nodes live in cluster '{c}', not '{cluster}': use ALTER \
                 CLUSTER {c}"
            )))
        }
        None => {
            return Err(user(format!(
                "sharded tables of this node are local, not in cluster '{cluster}': there is \
                 nothing to drain"
            )))
        }
    }
    let me = ctx.node.id().await?;
    let members = crate::sharding::daemon::membership(&**ctx.node.api(), store.scope(), &me)
        .await
        .ok_or_else(|| user("the cluster's membership cannot be read on this node; retry"))?;
    let id = crate::ids::NodeId::new(node);
    if !members.all.contains(&id) && !members.active.contains(&id) {
        return Err(user(format!(
            "node '{node}' is not a member of cluster '{cluster}'; SHOW STATUS LIKE \
             'cluster_{cluster}_nodes_set' lists them"
        )));
    }
    let drained = store.drained().await?;
    match (drain, drained.contains_key(&id)) {
        (true, true) => return Err(user(format!("node '{node}' is already drained"))),
        (false, false) => return Err(user(format!("node '{node}' is not drained"))),
        (true, false) => {
            let record = crate::sharding::records::DrainRecord {
                by: me,
                at_ms: now_ms(),
            };
            store.put_drain(&id, &record).await?;
        }
        (false, true) => store.delete_drain(&id).await?,
    }
    ctx.signals.master.notify_one();
    let copies: usize = store
        .placement_rows(None)
        .await?
        .iter()
        .filter(|r| r.node == id)
        .map(|r| r.shards.len())
        .sum();
    let mut set = ResultSet::with_columns(vec![
        Column::new("node", ColumnType::String),
        Column::new("state", ColumnType::String),
        Column::new("copies", ColumnType::LongLong),
    ]);
    set.push_row(vec![
        json!(node),
        json!(if drain { "draining" } else { "active" }),
        json!(copies),
    ]);
    Ok(vec![set])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formats_wall_clock_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(1_764_892_800_000), "2025-12-05 00:00:00");
        assert_eq!(utc(951_782_400_000 + 3_723_000), "2000-02-29 01:02:03");
    }

    use std::time::Duration;

    use crate::ids::{ClusterName, NodeId};
    use crate::sharding::records::{OpRequest, Scope, TableState};
    use crate::sharding::testing::{
        context, kv_node, lost, no_such_table, ok, put_key, table, FakeNode, Keys,
    };

    fn c() -> ClusterName {
        ClusterName::parse("c").unwrap()
    }

    fn target() -> QualifiedName {
        QualifiedName {
            cluster: Some(c()),
            table: TableName::parse("t").unwrap(),
        }
    }

    /// Metadata in cluster `c` with table `t` created and done.
    fn sharded_t() -> Keys {
        let keys = Keys::default();
        put_key(&keys, "cluster", &"c");
        let request = OpRequest {
            id: "r".into(),
            by: NodeId::new("127.0.0.1:9312"),
            at_ms: 0,
            timeout_ms: 30_000,
            scope: Scope::Cluster(c()),
            shards: 1,
            rf: 1,
            instance: None,
        };
        let mut state =
            TableState::requested(OpKind::Create, request, "id bigint".into(), String::new());
        state
            .start(GroupName::from("shard_create_t_1"), vec![], vec![])
            .unwrap();
        state.succeed(json!([])).unwrap();
        put_key(&keys, "table:t", &state);
        keys
    }

    /// Another node's request for `t`, not answered yet.
    fn theirs() -> ControlRequest {
        ControlRequest::requested(
            "theirs".into(),
            NodeId::new("127.0.0.1:9412"),
            ControlAction::Rebalance,
            Scope::Cluster(c()),
            0,
        )
    }

    /// The permission probe passes.
    fn allowed(sql: &str, _: &Keys) -> Option<Result<Vec<ResultSet>, crate::client::ClientError>> {
        (sql == "ALTER TABLE t").then(ok)
    }

    #[tokio::test]
    async fn a_second_rebalance_statement_waits_for_the_first_to_be_answered() {
        let keys = sharded_t();
        put_key(&keys, "rebalance:t", &theirs());
        let ctx = context(&kv_node(keys, allowed));
        let err = request(&ctx, "u", &target(), ControlAction::Rebalance)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "another rebalance statement for table 't' is being carried out; retry when it has \
             been answered"
        );
    }

    #[tokio::test]
    async fn a_request_overwritten_by_another_nodes_is_not_waited_for() {
        let node = kv_node(sharded_t(), |sql, keys| {
            if sql.starts_with("REPLACE") && sql.contains("'rebalance:t'") {
                // Another node's request lands on the same key.
                put_key(keys, "rebalance:t", &theirs());
                return Some(ok());
            }
            allowed(sql, keys)
        });
        let ctx = context(&node);
        let err = request(&ctx, "u", &target(), ControlAction::Rebalance)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "table 't': the request was replaced by another one; see SHOW REBALANCE STATUS"
        );
    }

    #[tokio::test]
    async fn a_request_the_master_does_not_answer_in_time_stays_queued() {
        let keys = sharded_t();
        let mut ctx = context(&kv_node(keys.clone(), allowed));
        ctx.config.default_timeout = Duration::from_millis(100);
        let err = request(&ctx, "u", &target(), ControlAction::Rebalance)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "Waiting timeout exceeded: the master has not answered yet; the request for table \
             't' stays queued, see SHOW REBALANCE STATUS"
        );
        assert!(
            keys.lock().unwrap().contains_key("rebalance:t"),
            "still queued"
        );
    }

    #[tokio::test]
    async fn a_sharded_table_whose_create_has_not_finished_is_not_rebalanced() {
        // No metadata here yet, but the wrapper is.
        let node = FakeNode::new(|sql, _| {
            if sql.starts_with("DESC") {
                no_such_table()
            } else if sql == "SHOW CREATE TABLE t OPTION force=1" {
                table(
                    &["Table", "Create Table"],
                    &[&[
                        "t",
                        "CREATE TABLE t (id bigint) type='shard' local='system.t_s0'",
                    ]],
                )
            } else {
                panic!("unexpected statement: {sql}")
            }
        });
        let err = sharded_table(&context(&node), &target())
            .await
            .err()
            .unwrap();
        assert_eq!(
            err.to_string(),
            "table 't' is not a sharded table (or its CREATE has not finished): only sharded \
             tables are rebalanced"
        );
    }

    #[tokio::test]
    async fn a_drain_where_there_is_nothing_to_drain_says_why() {
        // No sharding metadata on this node.
        let none = FakeNode::new(|sql, _| {
            assert!(sql.starts_with("DESC"), "{sql}");
            no_such_table()
        });
        let err = drain(&context(&none), &c(), "127.0.0.1:9412", true)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "cluster 'c' has no sharded tables on this node: there is nothing to drain"
        );
        // Local sharded tables only.
        let keys = Keys::default();
        put_key(&keys, "cluster", &"");
        let local = kv_node(keys, |_, _| None);
        let err = drain(&context(&local), &c(), "127.0.0.1:9412", true)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sharded tables of this node are local, not in cluster 'c': there is nothing to drain"
        );
    }

    #[tokio::test]
    async fn a_drain_without_the_clusters_membership_asks_for_a_retry() {
        let node = kv_node(sharded_t(), |sql, _| {
            (sql == "SHOW STATUS LIKE 'cluster_c_%'").then(lost)
        });
        let err = drain(&context(&node), &c(), "127.0.0.1:9412", true)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "the cluster's membership cannot be read on this node; retry"
        );
    }
}
