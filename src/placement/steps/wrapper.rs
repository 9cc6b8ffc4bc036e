//! The public `type='shard'` table of every node (spec §8.3).

use std::collections::BTreeMap;

use super::ddl::{structure, Ddl};
use super::TableDdl;
use crate::ids::NodeId;
use crate::placement::{shard_table_name, Placement};
use crate::sqltext::quote_literal;

/// The agent options that make the daemon fail over between mirrors within
/// one query.
const MIRROR_OPTIONS: &str = "[retry_count=2,ha_strategy=noerrors]";

/// How one shard is reached while a wrapper version is in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Route {
    /// The nodes queries and writes go to, sorted.
    pub holders: Vec<NodeId>,
    /// The shard is in a replication cluster on its holders. The daemon
    /// only writes to such a table through an agent, so even the node's own
    /// copy is then addressed as an agent, never as `local=`.
    pub clustered: bool,
}

/// Every shard's route plus the layout of the whole wrapper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Routing {
    /// One agent per shard listing every holder with the mirror options
    /// (effective RF ≥ 2); otherwise locals plus single-node agents.
    pub mirrors: bool,
    pub shards: BTreeMap<u32, Route>,
}

impl Routing {
    /// The routing the spec prescribes for a settled placement.
    pub fn of(placement: &Placement) -> Self {
        Self {
            mirrors: placement.max_replicas() >= 2,
            shards: placement
                .shards()
                .map(|(shard, replicas)| {
                    let route = Route {
                        holders: replicas.to_vec(),
                        clustered: replicas.len() >= 2,
                    };
                    (shard, route)
                })
                .collect(),
        }
    }
}

/// The wrapper DDL for `node`: RF 1 gives `local=` for the node's shards and
/// one single-mirror `agent=` for each other shard; RF ≥ 2 gives one agent
/// per shard listing all holders, the node itself included. Clauses are
/// sorted as strings, and the literal newline and three tabs are kept.
pub fn wrapper_ddl(ddl: &TableDdl, placement: &Placement, node: &NodeId) -> Ddl {
    routed_wrapper(ddl, &Routing::of(placement), node)
}

pub(super) fn routed_wrapper(ddl: &TableDdl, routing: &Routing, node: &NodeId) -> Ddl {
    let mut locals = Vec::new();
    let mut agents = Vec::new();
    for (&shard, route) in &routing.shards {
        let table = shard_table_name(&ddl.table, shard);
        if routing.mirrors {
            let mirrors: Vec<String> = route
                .holders
                .iter()
                .map(|h| format!("{h}:{table}"))
                .collect();
            let value = format!("{}{MIRROR_OPTIONS}", mirrors.join("|"));
            agents.push(format!("agent={}", quote_literal(&value)));
        } else if route.holders.len() == 1 && route.holders[0] == *node && !route.clustered {
            locals.push(format!("local={}", quote_literal(&table)));
        } else {
            let own_prefix = format!("{node}:");
            let remotes: Vec<String> = route
                .holders
                .iter()
                .map(|h| format!("{h}:{table}"))
                .filter(|target| route.clustered || !target.starts_with(&own_prefix))
                .collect();
            if !remotes.is_empty() {
                agents.push(format!("agent={}", quote_literal(&remotes.join("|"))));
            }
        }
    }
    locals.sort();
    agents.sort();
    Ddl::CreateWrapper {
        table: ddl.table.clone(),
        definition: format!(
            "{}\n\t\t\ttype='shard' {} {} {}",
            structure(ddl),
            locals.join(" "),
            agents.join(" "),
            ddl.extra
        ),
    }
}
