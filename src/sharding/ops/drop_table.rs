//! `DROP TABLE [IF EXISTS] [c:]t` of a sharded table (spec §5.6): refused
//! unless the cluster is fully healthy, then synchronous.

use crate::ids::{ClusterName, TableName};
use crate::protocol::ResultSet;
use crate::sharding::clock::now_ms;
use crate::sharding::daemon;
use crate::sharding::ops::common::{self, user, OpError, Outcome};
use crate::sharding::ops::Context;
use crate::sharding::records::{OpKind, OpRequest, Scope, TableState, TableStatus};
use crate::sharding::store::MetaStore;
use crate::sql::DropSharded;

pub async fn run(
    ctx: &Context,
    user_name: &str,
    stmt: &DropSharded,
) -> Result<Vec<ResultSet>, OpError> {
    let t = &stmt.table;
    common::check_schema_permission(ctx, user_name, t).await?;
    let store = ctx.metadata.store().await?;
    let state = match &store {
        Some(s) => s.table(t).await?,
        None => None,
    };
    match common::show_create(ctx, t).await? {
        Some(ddl) if !ddl.contains("type='shard'") => return Err(not_sharded(stmt)),
        Some(_) => {}
        // A DROP that failed half-way may have removed the wrapper already;
        // running it again finishes the cleanup.
        None if state
            .as_ref()
            .is_some_and(|s| s.kind == OpKind::Drop && s.status == TableStatus::Failed) => {}
        None if stmt.if_exists => return Ok(vec![ResultSet::ok()]),
        None => {
            return Err(user(format!(
                "table '{t}' is missing: DROP TABLE failed: table '{t}' must exist"
            )))
        }
    }
    let (Some(store), Some(state)) = (store, state) else {
        return Err(user(format!(
            "table '{t}' is not sharded: DROP SHARDED TABLE failed: table '{t}' must have been created with \
             sharding enabled"
        )));
    };
    let cluster = table_cluster(&*store, t, &state).await?;
    match (&cluster, &stmt.cluster) {
        (Some(c), typed) if typed.as_ref() != Some(c) => {
            return Err(user(format!("table '{t}' belongs to cluster '{c}': use DROP TABLE {c}:{t}")))
        }
        (None, Some(typed)) => {
            return Err(user(format!(
                "table '{t}' is not in cluster '{typed}': it is a local sharded table, use DROP TABLE {t}"
            )))
        }
        _ => {}
    }
    if let Some(c) = &cluster {
        check_health(ctx, c).await?;
    }
    if state.in_flight() {
        return Err(user(format!(
            "table '{t}': a CREATE or DROP of this table is in progress; retry when it has finished"
        )));
    }
    let me = ctx.node.id().await?;
    let timeout = ctx.config.default_timeout;
    let request = OpRequest {
        id: common::request_id(me.as_str()),
        by: me,
        at_ms: now_ms(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        scope: Scope::from(cluster.clone()),
        shards: 0,
        rf: 0,
    };
    let id = request.id.clone();
    let next = TableState::requested(OpKind::Drop, request, state.structure, state.extra);
    store.put_table(t, &next).await?;
    ctx.signals.master.notify_one();
    common::await_outcome(ctx, &*store, t, &id, timeout, |o| {
        matches!(o, Outcome::Done(_))
    })
    .await
}

fn not_sharded(stmt: &DropSharded) -> OpError {
    let t = &stmt.table;
    match &stmt.cluster {
        Some(c) => user(format!(
            "table '{t}' is a regular table in cluster '{c}': use ALTER CLUSTER {c} DROP {t} to remove it from \
             the cluster, then DROP TABLE {t}"
        )),
        None => user(format!(
            "table '{t}' is not sharded: DROP SHARDED TABLE failed: table '{t}' must be sharded"
        )),
    }
}

/// The user cluster a sharded table belongs to, from its placement rows (or
/// the request that created it).
async fn table_cluster(
    store: &dyn MetaStore,
    t: &TableName,
    state: &TableState,
) -> Result<Option<ClusterName>, OpError> {
    let rows = store.placement_rows(Some(t)).await?;
    Ok(rows
        .first()
        .map(|r| r.scope.clone())
        .or_else(|| state.request.as_ref().map(|r| r.scope.clone()))
        .and_then(|scope| scope.cluster().cloned()))
}

/// The health gate of spec §5.6 item 6, with its exact messages.
async fn check_health(ctx: &Context, c: &ClusterName) -> Result<(), OpError> {
    let refuse = |what: String| {
        user(format!(
            "{what}: refusing to DROP — retry when the cluster is fully synced"
        ))
    };
    let Some(h) = daemon::cluster_health(&**ctx.node.api(), c).await? else {
        return Err(refuse(format!(
            "cluster '{c}' is not in primary view (status='')"
        )));
    };
    if h.status != "primary" {
        return Err(refuse(format!(
            "cluster '{c}' is not in primary view (status='{}')",
            h.status
        )));
    }
    if h.node_state != "synced" {
        return Err(refuse(format!(
            "cluster '{c}' local node is not synced (node_state='{}')",
            h.node_state
        )));
    }
    let expected = h.membership.all.len();
    if h.size < expected {
        return Err(refuse(format!(
            "cluster '{c}' has unreachable members ({} of {expected} alive)",
            h.size
        )));
    }
    Ok(())
}
