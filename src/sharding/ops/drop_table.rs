//! `DROP TABLE [IF EXISTS] [c:]t` of a sharded table (spec §5.6): refused
//! unless the cluster is fully healthy, then synchronous.

use crate::ids::{ClusterName, NodeId, TableName};
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
        Some(ddl) if !ddl.contains("type='shard'") => {
            let holder = match &stmt.cluster {
                Some(_) => cluster_holding(ctx, t).await?,
                None => None,
            };
            return Err(not_sharded(stmt, holder.as_ref()));
        }
        Some(_) => {}
        // A DROP that failed half-way may have removed the wrapper already;
        // running it again finishes the cleanup.
        None if state
            .as_ref()
            .is_some_and(|s| s.kind == OpKind::Drop && s.status == TableStatus::Failed) => {}
        // Not here yet (or any more) while a CREATE or DROP of it is
        // under way: whether it will exist is not known yet.
        None if stmt.if_exists => {
            if let Some(store) = &store {
                if common::busy(&**store, t).await? {
                    return Err(common::in_progress(t));
                }
            }
            return Ok(vec![ResultSet::ok()]);
        }
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
    check_cluster(t, cluster.as_ref(), stmt.cluster.as_ref())?;
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
    let request = drop_request(ctx, me, timeout, cluster);
    let id = request.id.clone();
    let next = TableState::requested(OpKind::Drop, request, state.structure, state.extra);
    store.put_table(t, &next).await?;
    ctx.signals.master.notify_one();
    common::await_outcome(ctx, &*store, t, &id, timeout, |o| {
        matches!(o, Outcome::Done(_))
    })
    .await
}

/// Refuses a DROP whose cluster prefix does not match the table's cluster.
fn check_cluster(
    t: &TableName,
    cluster: Option<&ClusterName>,
    typed: Option<&ClusterName>,
) -> Result<(), OpError> {
    match (cluster, typed) {
        (Some(c), typed) if typed != Some(c) => Err(user(format!(
            "table '{t}' belongs to cluster '{c}': use DROP TABLE {c}:{t}"
        ))),
        (None, Some(typed)) => Err(user(format!(
            "table '{t}' is not in cluster '{typed}': it is a local sharded table, use DROP TABLE {t}"
        ))),
        _ => Ok(()),
    }
}

/// The request this node writes to have the master drop the table.
fn drop_request(
    ctx: &Context,
    me: NodeId,
    timeout: std::time::Duration,
    cluster: Option<ClusterName>,
) -> OpRequest {
    OpRequest {
        id: common::request_id(me.as_str()),
        by: me,
        at_ms: now_ms(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        scope: Scope::from(cluster),
        shards: 0,
        rf: 0,
        instance: Some(ctx.pulse.instance().to_string()),
    }
}

/// The refusal of a DROP of a table that is not sharded: what the table is,
/// and how to drop it. `holder` is the replication cluster this node reports
/// the table in, if any.
fn not_sharded(stmt: &DropSharded, holder: Option<&ClusterName>) -> OpError {
    let t = &stmt.table;
    match (&stmt.cluster, holder) {
        (Some(c), Some(h)) if c == h => user(format!(
            "table '{t}' is a regular table in cluster '{c}': use ALTER CLUSTER {c} DROP {t} to remove it from \
             the cluster, then DROP TABLE {t}"
        )),
        (Some(c), Some(h)) => user(format!(
            "table '{t}' is not in cluster '{c}': it is a regular table in cluster '{h}', use ALTER CLUSTER {h} \
             DROP {t} to remove it from that cluster, then DROP TABLE {t}"
        )),
        (Some(c), None) => user(format!(
            "table '{t}' is not in cluster '{c}': it is a plain table of this node, use DROP TABLE {t}"
        )),
        (None, _) => user(format!(
            "table '{t}' is not sharded: DROP SHARDED TABLE failed: table '{t}' must be sharded"
        )),
    }
}

/// The replication cluster this node reports `t` in.
async fn cluster_holding(ctx: &Context, t: &TableName) -> Result<Option<ClusterName>, OpError> {
    let reports = daemon::cluster_reports(&**ctx.node.api()).await?;
    Ok(reports
        .into_iter()
        .find(|r| r.tables.iter().any(|held| held == t.as_str()))
        .map(|r| r.name))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_that_is_not_sharded_is_described_as_it_is() {
        let c = ClusterName::parse("c").unwrap();
        let d = ClusterName::parse("d").unwrap();
        let drop = |cluster: Option<&ClusterName>| DropSharded {
            if_exists: false,
            cluster: cluster.cloned(),
            table: TableName::parse("y").unwrap(),
        };
        let cases = [
            (
                Some(&c),
                Some(&c),
                "table 'y' is a regular table in cluster 'c': use ALTER CLUSTER c DROP y to remove it from the \
                 cluster, then DROP TABLE y",
            ),
            (
                Some(&c),
                Some(&d),
                "table 'y' is not in cluster 'c': it is a regular table in cluster 'd', use ALTER CLUSTER d DROP y \
                 to remove it from that cluster, then DROP TABLE y",
            ),
            (
                Some(&c),
                None,
                "table 'y' is not in cluster 'c': it is a plain table of this node, use DROP TABLE y",
            ),
            (
                None,
                Some(&d),
                "table 'y' is not sharded: DROP SHARDED TABLE failed: table 'y' must be sharded",
            ),
        ];
        for (typed, holder, want) in cases {
            assert_eq!(
                not_sharded(&drop(typed), holder).to_string(),
                want,
                "{typed:?} {holder:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_drop_on_a_node_that_is_not_synced_is_refused() {
        let node = crate::sharding::testing::FakeNode::new(|sql, _| {
            assert_eq!(sql, "SHOW STATUS LIKE 'cluster_c_%'");
            crate::sharding::testing::counters(&[
                ("cluster_c_status", "primary"),
                ("cluster_c_node_state", "joining"),
                ("cluster_c_nodes_view", "a:1,a:2:replication"),
            ])
        });
        let ctx = crate::sharding::testing::context(&node);
        let c = ClusterName::parse("c").unwrap();
        assert_eq!(
            check_health(&ctx, &c).await.unwrap_err().to_string(),
            "cluster 'c' local node is not synced (node_state='joining'): refusing to DROP — \
             retry when the cluster is fully synced"
        );
    }

    #[tokio::test]
    async fn a_wrapper_without_sharding_metadata_is_not_dropped_as_sharded() {
        use crate::sharding::testing::{no_such_table, ok, table, FakeNode};
        // A `type='shard'` table, but no sharding metadata on this node.
        let node = FakeNode::new(|sql, _| {
            if sql == "ALTER TABLE t" {
                ok()
            } else if sql.starts_with("DESC") {
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
        let stmt = DropSharded {
            if_exists: false,
            cluster: None,
            table: TableName::parse("t").unwrap(),
        };
        let err = run(&crate::sharding::testing::context(&node), "u", &stmt)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "table 't' is not sharded: DROP SHARDED TABLE failed: table 't' must have been \
             created with sharding enabled"
        );
    }

    #[test]
    fn a_clustered_drop_of_a_local_sharded_table_says_to_drop_it_without_the_cluster() {
        let t = TableName::parse("s").unwrap();
        let c = ClusterName::parse("c").unwrap();
        assert_eq!(
            check_cluster(&t, None, Some(&c)).unwrap_err().to_string(),
            "table 's' is not in cluster 'c': it is a local sharded table, use DROP TABLE s"
        );
    }
}
