//! `TRUNCATE TABLE`, `FLUSH RAMCHUNK` and (async) `OPTIMIZE TABLE` on a
//! sharded table: the daemon refuses them on the wrapper, so they are sent to
//! every physical shard (spec §5.7), with two fixes over PHP Buddy: a TRUNCATE
//! of a replicated shard goes through its replication cluster
//! (`TRUNCATE TABLE <cluster>:<shard>`, which the daemon requires, golden
//! `system_tables.144`), and FLUSH/OPTIMIZE reach every copy, not just the
//! first mirror.

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use regex::Regex;
use tokio::task::JoinSet;

use crate::ids::{NodeId, TableName};
use crate::placement::ShardTable;
use crate::protocol::ResultSet;
use crate::sharding::daemon;
use crate::sharding::node::NodeApi;
use crate::sharding::ops::common::{self, user, OpError};
use crate::sharding::ops::Context;
use crate::sharding::wording;

/// Which statement to fan out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanOut {
    Truncate,
    FlushRamchunk,
    /// `OPTION k=v, …` kept as given.
    Optimize(Vec<(String, String)>),
}

impl FanOut {
    /// The statement as users type it.
    fn statement(&self) -> &'static str {
        match self {
            FanOut::Truncate => "TRUNCATE TABLE",
            FanOut::FlushRamchunk => "FLUSH RAMCHUNK",
            FanOut::Optimize(_) => "OPTIMIZE TABLE",
        }
    }
}

/// One physical copy of a shard: on this node (`None`) or on another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Copy {
    node: Option<NodeId>,
    table: String,
}

static TARGET: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(local|agent)\s*=\s*'([^']*)'").expect("regex"));

/// The shards of a wrapper DDL: each entry lists the copies of one shard.
fn shard_copies(ddl: &str) -> Vec<Vec<Copy>> {
    TARGET
        .captures_iter(ddl)
        .map(|c| {
            if &c[1] == "local" {
                return vec![Copy {
                    node: None,
                    table: c[2].to_string(),
                }];
            }
            let spec = c[2].split('[').next().unwrap_or_default();
            spec.split('|')
                .filter_map(|mirror| {
                    let (addr, table) = mirror.rsplit_once(':')?;
                    Some(Copy {
                        node: Some(NodeId::new(addr)),
                        table: table.to_string(),
                    })
                })
                .collect()
        })
        .filter(|copies: &Vec<Copy>| !copies.is_empty())
        .collect()
}

/// `None` when `table` is not a sharded table (the request is then declined).
pub async fn run(
    ctx: &Context,
    table: &TableName,
    what: &FanOut,
) -> Result<Option<Vec<ResultSet>>, OpError> {
    let Some(ddl) = common::show_create(ctx, table).await? else {
        return Ok(None);
    };
    if !ddl.contains("type='shard'") {
        return Ok(None);
    }
    let me = ctx.node.id().await?;
    let mut targets: Vec<Copy> = Vec::new();
    for copies in shard_copies(&ddl) {
        match what {
            // One copy is enough: its replication cluster carries the rest.
            FanOut::Truncate => {
                let local = copies
                    .iter()
                    .find(|c| c.node.is_none() || c.node.as_ref() == Some(&me));
                targets.extend(local.or(copies.first()).cloned());
            }
            _ => targets.extend(copies),
        }
    }
    targets.sort();
    targets.dedup();
    let mut jobs = JoinSet::new();
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    for copy in targets {
        let client: Arc<dyn NodeApi> = match &copy.node {
            Some(n) if *n != me => ctx.node.api().for_node(n),
            _ => ctx.node.api().clone(),
        };
        let what = what.clone();
        let limit = limit.clone();
        jobs.spawn(async move {
            let _permit = limit.acquire_owned().await;
            let result = apply(&*client, &copy.table, &what).await;
            (copy, result)
        });
    }
    while let Some(joined) = jobs.join_next().await {
        let Ok((copy, result)) = joined else {
            return Err(user(format!(
                "{} of table '{table}' stopped before every shard answered; run it again",
                what.statement()
            )));
        };
        if let Err(message) = result {
            let node = copy.node.map_or_else(|| me.to_string(), |n| n.to_string());
            let shard = ShardTable::parse(&copy.table)
                .map_or_else(|| "a shard".to_string(), |s| format!("shard {}", s.shard));
            return Err(user(format!(
                "{} of table '{table}' failed for {shard} on node {node}: {}; \
                 retry once the node and the shard's other copies are back",
                what.statement(),
                wording::daemon_error(&message)
            )));
        }
    }
    Ok(Some(vec![ResultSet::ok()]))
}

async fn apply(client: &dyn NodeApi, table: &str, what: &FanOut) -> Result<(), String> {
    let sql = match what {
        FanOut::Truncate => {
            let target = match cluster_of(client, table).await {
                Some(cluster) => format!("{cluster}:{table}"),
                None => table.to_string(),
            };
            format!("TRUNCATE TABLE {target}")
        }
        FanOut::FlushRamchunk => format!("FLUSH RAMCHUNK {table}"),
        FanOut::Optimize(options) if options.is_empty() => format!("OPTIMIZE TABLE {table}"),
        FanOut::Optimize(options) => {
            let list: Vec<String> = options.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("OPTIMIZE TABLE {table} OPTION {}", list.join(", "))
        }
    };
    client
        .query_one(&sql)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// The replication cluster `table` belongs to on the node `client` talks to.
async fn cluster_of(client: &dyn NodeApi, table: &str) -> Option<String> {
    let counters: BTreeMap<String, String> =
        daemon::status(client, "cluster_%_indexes").await.ok()?;
    counters.into_iter().find_map(|(counter, value)| {
        value
            .split(',')
            .any(|t| t.trim() == table)
            .then(|| {
                counter
                    .strip_prefix("cluster_")?
                    .strip_suffix("_indexes")
                    .map(str::to_string)
            })
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapper_targets_are_read_from_the_ddl() {
        let ddl = "CREATE TABLE t (id bigint) type='shard' local='system.t_s0' \
                   agent='127.0.0.1:2312:system.t_s1' \
                   agent='127.0.0.1:1312:system.t_s2|127.0.0.1:2312:system.t_s2[retry_count=2,ha_strategy=noerrors]'";
        let copies = shard_copies(ddl);
        let local = |t: &str| Copy {
            node: None,
            table: t.into(),
        };
        let remote = |n: &str, t: &str| Copy {
            node: Some(NodeId::new(n)),
            table: t.into(),
        };
        assert_eq!(
            copies,
            vec![
                vec![local("system.t_s0")],
                vec![remote("127.0.0.1:2312", "system.t_s1")],
                vec![
                    remote("127.0.0.1:1312", "system.t_s2"),
                    remote("127.0.0.1:2312", "system.t_s2")
                ],
            ]
        );
    }

    /// A node whose sharded table `t` has one local shard, answering
    /// statements on it with `shard`.
    fn node_with_one_shard(
        shard: impl Fn(&str) -> Result<Vec<ResultSet>, crate::client::ClientError>
            + Send
            + Sync
            + 'static,
    ) -> crate::sharding::testing::FakeNode {
        use crate::sharding::testing::{identity, table, FakeNode};
        FakeNode::new(move |sql, _| {
            if let Some(reply) = identity(sql) {
                return reply;
            }
            if sql.starts_with("SHOW CREATE TABLE t") {
                return table(
                    &["Table", "Create Table"],
                    &[&[
                        "t",
                        "CREATE TABLE t (id bigint) type='shard' local='system.t_s0'",
                    ]],
                );
            }
            shard(sql)
        })
    }

    #[tokio::test]
    async fn a_shard_that_refuses_the_statement_is_named_with_its_node() {
        let node = node_with_one_shard(|sql| {
            assert_eq!(sql, "FLUSH RAMCHUNK system.t_s0");
            Err(crate::client::ClientError::Daemon {
                status: 500,
                message: "disk full".into(),
            })
        });
        let ctx = crate::sharding::testing::context(&node);
        let t = TableName::parse("t").unwrap();
        let err = run(&ctx, &t, &FanOut::FlushRamchunk).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "FLUSH RAMCHUNK of table 't' failed for shard 0 on node 127.0.0.1:9312: disk full; \
             retry once the node and the shard's other copies are back"
        );
    }

    #[tokio::test]
    async fn a_shard_job_that_dies_asks_for_the_statement_again() {
        let node = node_with_one_shard(|sql| panic!("the job for {sql} dies"));
        let ctx = crate::sharding::testing::context(&node);
        let t = TableName::parse("t").unwrap();
        let err = run(&ctx, &t, &FanOut::FlushRamchunk).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "FLUSH RAMCHUNK of table 't' stopped before every shard answered; run it again"
        );
    }
}
