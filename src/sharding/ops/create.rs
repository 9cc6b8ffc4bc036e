//! `CREATE TABLE [IF NOT EXISTS] [c:]t (…) shards='N' rf='M' [timeout='S']`.
//!
//! The statement is synchronous: it returns once every node has its shards
//! and its wrapper, or with `Waiting timeout exceeded.` after the timeout,
//! with everything that was made undone.

use std::time::Duration;

use crate::ids::{ClusterName, TableName};
use crate::protocol::ResultSet;
use crate::sharding::clock::now_ms;
use crate::sharding::daemon;
use crate::sharding::ops::common::{self, user, OpError, Outcome};
use crate::sharding::ops::Context;
use crate::sharding::records::{OpKind, OpRequest, Scope, TableState};
use crate::sql::CreateSharded;

pub async fn run(
    ctx: &Context,
    user_name: &str,
    stmt: &CreateSharded,
) -> Result<Vec<ResultSet>, OpError> {
    let t = &stmt.table;
    check_table_type(stmt)?;
    common::check_schema_permission(ctx, user_name, t).await?;
    if common::show_create(ctx, t).await?.is_some() {
        // The table may be one a CREATE is still making, or undoing.
        if let Some(store) = ctx.metadata.store().await? {
            if common::busy(&*store, t).await? {
                return Err(common::in_progress(t));
            }
        }
        return exists(stmt);
    }
    match &stmt.cluster {
        None => refuse_local_on_cluster(ctx, t).await?,
        Some(c) => check_cluster(ctx, c, stmt.rf).await?,
    }
    let store = ctx
        .metadata
        .ensure(&ctx.node, stmt.cluster.as_ref())
        .await?;
    // Metadata made just now has no master yet: elect one at once.
    ctx.signals.heartbeat.notify_one();
    if store.scope().cluster() != stmt.cluster.as_ref() {
        return Err(binding_mismatch(store.scope().cluster(), t));
    }
    if common::busy(&*store, t).await? {
        return Err(common::in_progress(t));
    }
    let me = ctx.node.id().await?;
    let timeout = stmt
        .timeout
        .map(|s| Duration::from_secs(u64::from(s)))
        .unwrap_or(ctx.config.default_timeout);
    let request = OpRequest {
        id: common::request_id(me.as_str()),
        by: me,
        at_ms: now_ms(),
        timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
        scope: Scope::from(stmt.cluster.clone()),
        shards: stmt.shards,
        rf: stmt.rf,
        instance: Some(ctx.pulse.instance().to_string()),
    };
    let id = request.id.clone();
    let state = TableState::requested(
        OpKind::Create,
        request,
        stmt.columns.clone().unwrap_or_default(),
        stmt.extra(),
    );
    store.put_table(t, &state).await?;
    ctx.signals.master.notify_one();
    let patience = timeout + ctx.config.rollback_grace;
    common::await_outcome(ctx, &*store, t, &id, patience, |o| {
        matches!(o, Outcome::Failed(_))
    })
    .await
}

fn exists(stmt: &CreateSharded) -> Result<Vec<ResultSet>, OpError> {
    if stmt.if_not_exists {
        Ok(vec![ResultSet::ok()])
    } else {
        let t = &stmt.table;
        Err(user(format!(
            "table '{t}': CREATE TABLE failed: table '{t}' already exists"
        )))
    }
}

/// The shards of a sharded table are real-time tables and its wrapper is a
/// `type='shard'` table, so any other `type` is refused before anything is
/// made (it would otherwise fail only when a node creates its first shard).
fn check_table_type(stmt: &CreateSharded) -> Result<(), OpError> {
    let t = &stmt.table;
    match stmt.options.iter().find(|o| o.name == "type") {
        Some(o) if !o.value.eq_ignore_ascii_case("rt") => Err(user(format!(
            "table '{t}': a sharded table is made of real-time shards and cannot have type='{}'; remove the \
             type option and run the CREATE again",
            o.value
        ))),
        _ => Ok(()),
    }
}

/// A node whose metadata lives in a replication cluster cannot also hold
/// local sharded tables (spec §1.6, §2 item 1).
async fn refuse_local_on_cluster(ctx: &Context, t: &TableName) -> Result<(), OpError> {
    let counters = daemon::status(&**ctx.node.api(), "cluster_%_indexes").await?;
    for (counter, value) in counters {
        if value.contains("system.sharding_table") {
            let name = counter
                .strip_prefix("cluster_")
                .and_then(|c| c.strip_suffix("_indexes"))
                .unwrap_or(&counter);
            return Err(user(format!(
                "Local sharded tables cannot be created on a node that is part of a replication cluster \
                 ('{name}'). Use CREATE TABLE {name}:{t} instead."
            )));
        }
    }
    Ok(())
}

async fn check_cluster(ctx: &Context, c: &ClusterName, rf: u32) -> Result<(), OpError> {
    let Some(health) = daemon::cluster_health(&**ctx.node.api(), c).await? else {
        return Err(user(format!("Cluster '{c}' does not exist")));
    };
    let count = health.view_count;
    if count < 2 {
        return Err(user(format!(
            "The node count for cluster {c} is too low: {count}. You can create local sharded table."
        )));
    }
    if count < rf as usize {
        return Err(user(format!(
            "The node count ({count}) is lower than replication factor ({rf})"
        )));
    }
    if !health.membership.primary {
        return Err(user(format!(
            "cluster '{c}' is not in primary view (status='{}'): refusing to CREATE — retry when the cluster \
             is fully synced",
            health.status
        )));
    }
    Ok(())
}

fn binding_mismatch(bound: Option<&ClusterName>, t: &TableName) -> OpError {
    match bound {
        Some(c) => user(format!(
            "sharded tables on this node belong to cluster '{c}': use CREATE TABLE {c}:{t}"
        )),
        None => user(format!(
            "this node already holds local sharded tables, which cannot be mixed with clustered ones: \
             use CREATE TABLE {t} without a cluster, or another node"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::TableOption;

    #[test]
    fn only_real_time_tables_can_be_sharded() {
        let create = |options: &[(&str, &str)]| CreateSharded {
            if_not_exists: false,
            cluster: None,
            table: TableName::parse("t").unwrap(),
            columns: None,
            options: options
                .iter()
                .map(|(name, value)| TableOption {
                    name: name.to_string(),
                    value: value.to_string(),
                })
                .collect(),
            shards: 2,
            rf: 1,
            timeout: None,
        };
        let refused = |ty: &str| {
            format!(
                "table 't': a sharded table is made of real-time shards and cannot have type='{ty}'; remove the \
                 type option and run the CREATE again"
            )
        };
        type Options<'a> = &'a [(&'a str, &'a str)];
        let cases: [(Options, Option<String>); 6] = [
            (&[], None),
            (&[("type", "rt")], None),
            (&[("type", "RT"), ("min_infix_len", "2")], None),
            (&[("type", "distributed")], Some(refused("distributed"))),
            (
                &[("min_infix_len", "2"), ("type", "shard")],
                Some(refused("shard")),
            ),
            (&[("type", "pq")], Some(refused("pq"))),
        ];
        for (options, want) in cases {
            let got = check_table_type(&create(options))
                .err()
                .map(|e| e.to_string());
            assert_eq!(got, want, "{options:?}");
        }
    }

    #[test]
    fn a_create_in_the_other_place_than_the_nodes_sharded_tables_says_where_they_are() {
        let t = TableName::parse("t").unwrap();
        let c = ClusterName::parse("c").unwrap();
        assert_eq!(
            binding_mismatch(Some(&c), &t).to_string(),
            "sharded tables on this node belong to cluster 'c': use CREATE TABLE c:t"
        );
        assert_eq!(
            binding_mismatch(None, &t).to_string(),
            "this node already holds local sharded tables, which cannot be mixed with clustered \
             ones: use CREATE TABLE t without a cluster, or another node"
        );
    }

    #[tokio::test]
    async fn a_create_in_a_cluster_without_quorum_is_refused_with_its_status() {
        let node = crate::sharding::testing::FakeNode::new(|sql, _| {
            assert_eq!(sql, "SHOW STATUS LIKE 'cluster_c_%'");
            crate::sharding::testing::counters(&[
                ("cluster_c_status", "non-primary"),
                (
                    "cluster_c_nodes_view",
                    "a:1,a:2:replication,b:1,b:2:replication",
                ),
            ])
        });
        let ctx = crate::sharding::testing::context(&node);
        let c = ClusterName::parse("c").unwrap();
        assert_eq!(
            check_cluster(&ctx, &c, 2).await.unwrap_err().to_string(),
            "cluster 'c' is not in primary view (status='non-primary'): refusing to CREATE — \
             retry when the cluster is fully synced"
        );
    }
}
