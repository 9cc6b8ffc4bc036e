//! Placement and rebalance planning: pure functions, no I/O, no clock.
//! (Interface placeholder; the planner lands separately.)

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{ClusterName, NodeId, TableName};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    shards: BTreeMap<u32, Vec<NodeId>>,
}

impl Placement {
    pub fn from_replicas(shards: BTreeMap<u32, Vec<NodeId>>) -> Self {
        Self { shards }
    }
    pub fn shards(&self) -> impl Iterator<Item = (u32, &[NodeId])> {
        self.shards.iter().map(|(s, n)| (*s, n.as_slice()))
    }
    pub fn replicas(&self, shard: u32) -> &[NodeId] {
        self.shards.get(&shard).map(Vec::as_slice).unwrap_or(&[])
    }
    pub fn shards_on(&self, node: &NodeId) -> Vec<u32> {
        self.shards
            .iter()
            .filter(|(_, n)| n.contains(node))
            .map(|(s, _)| *s)
            .collect()
    }
    pub fn nodes(&self) -> BTreeSet<NodeId> {
        self.shards.values().flatten().cloned().collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlacementError(pub String);

pub fn initial_placement(
    _nodes: &[NodeId],
    _shards: u32,
    _rf: u32,
) -> Result<Placement, PlacementError> {
    unimplemented!("planner")
}

pub fn internal_cluster_name(_nodes: &[NodeId]) -> ClusterName {
    unimplemented!("planner")
}

pub struct TableDdl {
    pub table: TableName,
    pub columns: Option<String>,
    pub extra: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Sql(String),
    VerifyRowCount { table: String, source: NodeId },
    Noop,
}

impl Action {
    pub fn to_query_text(&self) -> String {
        unimplemented!("planner")
    }
    pub fn from_query_text(_s: &str) -> Option<Action> {
        unimplemented!("planner")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub node: NodeId,
    pub action: Action,
    pub rollback: Option<Action>,
    pub wait_for: Vec<usize>,
}

pub fn create_steps(
    _ddl: &TableDdl,
    _placement: &Placement,
    _wrapper_nodes: &[NodeId],
) -> Vec<Step> {
    unimplemented!("planner")
}

pub fn drop_steps(
    _table: &TableName,
    _placement: &Placement,
    _wrapper_nodes: &[NodeId],
    _clusters_in_use_elsewhere: &BTreeSet<ClusterName>,
) -> Vec<Step> {
    unimplemented!("planner")
}
