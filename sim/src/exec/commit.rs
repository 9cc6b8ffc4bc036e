//! Where a planned change goes: tables of a replication cluster change through the cluster's
//! leader (on every member), other tables through [`Node::write`] alone.

use super::error::{ExecError, ExecResult};
use crate::cluster::messages::Check;
use crate::cluster::SubmitError;
use crate::node::Node;
use crate::sql::ast::TableRef;
use crate::store::catalog::{Catalog, Table};
use crate::store::mutation::Mutation;

/// A change planned against the catalog.
pub struct Planned<R> {
    pub mutations: Vec<Mutation>,
    /// The cluster the changed table belongs to (`None`: a local table).
    pub cluster: Option<String>,
    /// What the leader must still verify when it sequences the change.
    pub checks: Vec<Check>,
    pub result: R,
}

impl<R> Planned<R> {
    pub fn new(mutations: Vec<Mutation>, cluster: Option<String>, result: R) -> Planned<R> {
        Planned {
            mutations,
            cluster,
            checks: Vec::new(),
            result,
        }
    }
}

/// How often a write whose table left its cluster before the write was sequenced is planned
/// again (each time the table moved once more).
const REPLANS: usize = 3;

/// Plans under the write lock; applies locally, or replicates through the table's cluster.
/// `wrap` turns a cluster's refusal into the statement's error text. A write whose table left
/// the cluster before the leader sequenced it is planned again, so it goes to the table's
/// cluster at the time it commits (or fails as a statement naming that cluster would).
pub async fn commit<R>(
    node: &Node,
    plan: impl Fn(&Catalog) -> ExecResult<Planned<R>>,
    wrap: impl Fn(String) -> ExecError,
) -> ExecResult<R> {
    let mut replans = 0;
    loop {
        let mut replicated = None;
        let result = node.write(|catalog| {
            let p = plan(catalog)?;
            match p.cluster {
                None => Ok((p.mutations, p.result)),
                Some(c) => {
                    replicated = Some((c, p.mutations, p.checks));
                    Ok((Vec::new(), p.result))
                }
            }
        })?;
        if let Some((cluster, mutations, checks)) = replicated {
            if !mutations.is_empty() {
                match crate::cluster::submit(node, &cluster, mutations, checks).await {
                    Ok(_) => {}
                    Err(SubmitError::Moved(_)) if replans < REPLANS => {
                        replans += 1;
                        continue;
                    }
                    Err(e) => return Err(wrap(e.into())),
                }
            }
        }
        return Ok(result);
    }
}

/// The `cluster` of a [`routed_ref`]: whichever cluster the table is in when the write is
/// planned (not a name a statement can spell).
const ROUTED: &str = "*routed*";

/// The cluster-prefix rules for writes (`Err` is searchd's text).
pub fn check_prefix(table: &Table, reference: &TableRef) -> Result<(), String> {
    let name = &table.name;
    if reference.cluster.as_deref() == Some(ROUTED) {
        return Ok(());
    }
    match (&table.cluster, &reference.cluster) {
        (None, None) => Ok(()),
        (Some(c), None) => Err(format!(
            "table '{name}' is a part of cluster '{c}', use '{c}:{name}'"
        )),
        (None, Some(_)) => Err(format!(
            "table '{name}' is not in any cluster, use just '{name}'"
        )),
        (Some(c), Some(p)) if c != p => Err(format!(
            "table '{name}' is a part of cluster '{c}', use '{c}:{name}'"
        )),
        _ => Ok(()),
    }
}

/// The cluster a write to `table` goes through: the prefix rules, then the cluster must be in
/// a primary component here.
pub fn write_cluster(
    node: &Node,
    table: &Table,
    reference: &TableRef,
) -> Result<Option<String>, String> {
    check_prefix(table, reference)?;
    if let Some(c) = &table.cluster {
        crate::cluster::ready(node, c)?;
    }
    Ok(table.cluster.clone())
}

/// How a shard table (or a shard write from another node) names its target: through the
/// cluster the target is in when the write is planned, under the write lock (as searchd's shard
/// routing writes clustered shards). Resolving it earlier would fail a write that meets the
/// table joining or leaving a cluster in between.
pub fn routed_ref(name: &str) -> TableRef {
    TableRef {
        cluster: Some(ROUTED.to_string()),
        name: name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::auth::Perms;
    use crate::config::Config;
    use crate::exec::session::{Protocol, Session};
    use crate::logfile::DaemonLog;
    use crate::store::value::{Row, Value};

    async fn run(node: &Node, statements: &[&str]) {
        let mut session = Session::new("", Perms::ALL, 1, Protocol::Mysql);
        for sql in statements {
            crate::exec::execute(node, &mut session, sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {}", e.message));
        }
    }

    /// A node with table `t` in cluster `a`, and an empty cluster `b`.
    async fn node(dir: &std::path::Path) -> Node {
        let text = format!(
            "searchd {{\nlisten = 127.0.0.1:1312\nlisten = 127.0.0.1:1350-1352:replication\n\
             data_dir = {}\n}}\n",
            dir.display()
        );
        for path in ["a", "b"] {
            std::fs::create_dir(dir.join(path)).expect("cluster directory");
        }
        let config = Config::parse(&dir.join("sim.conf"), &text).expect("config");
        let node = Node::open(config, DaemonLog::open(None).expect("log")).expect("node");
        run(
            &node,
            &[
                "CREATE TABLE t (title text)",
                "CREATE CLUSTER a 'a' as path",
                "CREATE CLUSTER b 'b' as path",
                "ALTER CLUSTER a ADD t",
            ],
        )
        .await;
        node
    }

    fn seq(node: &Node, cluster: &str) -> u64 {
        node.catalog().cluster(cluster).expect("cluster").seq
    }

    /// A write planned while its table was in cluster `a`, sequenced after the table moved to
    /// `b`: not applied through `a` (where `b`'s other members would never see it), but planned
    /// again and replicated through `b`.
    #[tokio::test]
    async fn a_write_whose_table_left_its_cluster_is_planned_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let node = node(dir.path()).await;
        run(&node, &["ALTER CLUSTER a DROP t", "ALTER CLUSTER b ADD t"]).await;
        let (a_before, b_before) = (seq(&node, "a"), seq(&node, "b"));
        let plans = Cell::new(0);
        let plan = |catalog: &Catalog| {
            plans.set(plans.get() + 1);
            let table = catalog.get("t").expect("t");
            // The first plan is the stale one: made before the move.
            let cluster = if plans.get() == 1 {
                Some("a".to_string())
            } else {
                table.cluster.clone()
            };
            let schema = table.def.schema().cloned().unwrap_or_default();
            let row = Row {
                id: 7,
                values: schema
                    .columns
                    .iter()
                    .map(|c| Value::default_for(c.ty))
                    .collect(),
            };
            Ok(Planned::new(
                vec![Mutation::Insert {
                    table: "t".to_string(),
                    rows: vec![row],
                }],
                cluster,
                (),
            ))
        };
        commit(&node, plan, ExecError::new)
            .await
            .unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(plans.get(), 2);
        assert_eq!(seq(&node, "a"), a_before, "nothing sequenced in a");
        assert_eq!(seq(&node, "b"), b_before + 1, "the write went through b");
        assert!(node.catalog().get("t").expect("t").data.contains(7));
    }
}
