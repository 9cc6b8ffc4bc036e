//! Where a planned change goes: tables of a replication cluster change through the cluster's
//! leader (on every member), other tables through [`Node::write`] alone.

use super::error::{ExecError, ExecResult};
use crate::cluster::messages::Check;
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

/// Plans under the write lock; applies locally, or replicates through the table's cluster.
/// `wrap` turns a cluster's refusal into the statement's error text.
pub async fn commit<R>(
    node: &Node,
    plan: impl FnOnce(&Catalog) -> ExecResult<Planned<R>>,
    wrap: impl Fn(String) -> ExecError,
) -> ExecResult<R> {
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
            crate::cluster::submit(node, &cluster, mutations, checks)
                .await
                .map_err(wrap)?;
        }
    }
    Ok(result)
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
