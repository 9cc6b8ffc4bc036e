//! What the planner plans from: nodes with their states and capacities,
//! tables with their shape and current placement.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use super::{ModelError, Placement, PlacementError};
use crate::ids::{NodeId, TableName};

/// A node's state as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Up and a member in good standing: holds and receives shards.
    Active,
    /// Down. Its replicas are not live: they are not copied from, they do
    /// not count towards RF, and nothing is placed on it.
    Inactive,
    /// Up and freshly joined; like `Active`, but moves onto it are reported
    /// as `balance_new_node`.
    New,
    /// Up but leaving: it serves and donates its replicas until copies exist
    /// elsewhere, and receives nothing.
    Draining,
}

impl NodeState {
    /// Up: its replicas are live and can be copied from.
    pub fn is_live(self) -> bool {
        !matches!(self, Self::Inactive)
    }

    /// May be given replicas.
    pub fn accepts_shards(self) -> bool {
        matches!(self, Self::Active | Self::New)
    }
}

/// One node of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeSpec {
    pub id: NodeId,
    pub state: NodeState,
    /// Relative capacity; `None` means 1. A node of weight 2 is meant to hold
    /// twice the replicas of a node of weight 1.
    pub weight: Option<u32>,
}

impl NodeSpec {
    pub fn new(id: NodeId, state: NodeState) -> Self {
        Self {
            id,
            state,
            weight: None,
        }
    }

    pub(super) fn effective_weight(&self) -> u64 {
        u64::from(self.weight.unwrap_or(1))
    }
}

/// How big one shard is, when known. Used to prefer cheap moves and to total
/// the data a plan copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardSize {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// One sharded table of the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableModel {
    pub name: TableName,
    pub shards: u32,
    pub rf: u32,
    /// `None` for a table that does not exist yet: it gets the initial
    /// placement over the nodes that accept shards.
    pub placement: Option<Placement>,
    /// Known sizes by shard number; shards without an entry are unknown.
    pub sizes: BTreeMap<u32, ShardSize>,
}

impl TableModel {
    pub fn new(name: TableName, shards: u32, rf: u32, placement: Option<Placement>) -> Self {
        Self {
            name,
            shards,
            rf,
            placement,
            sizes: BTreeMap::new(),
        }
    }
}

/// A consistent snapshot to plan from. Construction checks every
/// cross-reference, so planning itself cannot fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    nodes: BTreeMap<NodeId, NodeSpec>,
    tables: Vec<TableModel>,
}

impl Model {
    /// Checks that node ids and table names are unique, weights are at
    /// least 1, placements match their table's shard count and mention only
    /// listed nodes (a node that is gone must still be listed, as
    /// `inactive`), sizes name existing shards, and a table without a
    /// placement can be placed on the nodes that accept shards.
    pub fn new(nodes: Vec<NodeSpec>, tables: Vec<TableModel>) -> Result<Self, ModelError> {
        let mut by_id = BTreeMap::new();
        for node in nodes {
            if node.weight == Some(0) {
                return Err(ModelError::ZeroWeight(node.id));
            }
            if by_id.contains_key(&node.id) {
                return Err(ModelError::DuplicateNode(node.id));
            }
            by_id.insert(node.id.clone(), node);
        }
        let accepting = by_id.values().filter(|n| n.state.accepts_shards()).count();
        let mut names = BTreeSet::new();
        for table in &tables {
            if !names.insert(&table.name) {
                return Err(ModelError::DuplicateTable(table.name.clone()));
            }
            check_table(table, &by_id, accepting)?;
        }
        Ok(Self {
            nodes: by_id,
            tables,
        })
    }

    pub fn nodes(&self) -> impl Iterator<Item = &NodeSpec> {
        self.nodes.values()
    }

    pub fn node(&self, id: &NodeId) -> Option<&NodeSpec> {
        self.nodes.get(id)
    }

    pub fn tables(&self) -> &[TableModel] {
        &self.tables
    }

    /// Every node with its state, for step generation.
    pub fn states(&self) -> BTreeMap<NodeId, NodeState> {
        self.nodes
            .values()
            .map(|n| (n.id.clone(), n.state))
            .collect()
    }
}

fn check_table(
    table: &TableModel,
    nodes: &BTreeMap<NodeId, NodeSpec>,
    accepting: usize,
) -> Result<(), ModelError> {
    let placement_error = |source| ModelError::Placement {
        table: table.name.clone(),
        source,
    };
    if table.shards == 0 || table.rf == 0 {
        return Err(placement_error(PlacementError::InvalidShape));
    }
    match &table.placement {
        None if accepting < table.rf as usize => {
            return Err(placement_error(PlacementError::NotEnoughNodes {
                nodes: accepting,
                rf: table.rf,
            }));
        }
        None => {}
        Some(placement) => {
            if placement.shard_count() != table.shards {
                return Err(ModelError::ShardCountMismatch {
                    table: table.name.clone(),
                    declared: table.shards,
                    placed: placement.shard_count(),
                });
            }
            for (shard, replicas) in placement.shards() {
                if let Some(node) = replicas.iter().find(|r| !nodes.contains_key(*r)) {
                    return Err(ModelError::UnknownNode {
                        table: table.name.clone(),
                        shard,
                        node: node.clone(),
                    });
                }
            }
        }
    }
    if let Some(shard) = table.sizes.keys().find(|s| **s >= table.shards) {
        return Err(ModelError::UnknownShardSize {
            table: table.name.clone(),
            shard: *shard,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, state: NodeState) -> NodeSpec {
        NodeSpec::new(NodeId::new(id), state)
    }

    fn table(placement: Option<Placement>) -> TableModel {
        TableModel::new(TableName::parse("t").unwrap(), 1, 1, placement)
    }

    #[test]
    fn rejects_inconsistent_models() {
        let a = node("a:1", NodeState::Active);
        let on_x = Placement::from_rows([(NodeId::new("x:1"), vec![0])]).unwrap();
        let two_shards = Placement::from_rows([(NodeId::new("a:1"), vec![0, 1])]).unwrap();
        let heavy_zero = NodeSpec {
            weight: Some(0),
            ..a.clone()
        };
        let mut sized = table(None);
        sized.sizes.insert(5, ShardSize::default());
        let cases: Vec<(Vec<NodeSpec>, Vec<TableModel>, &str)> = vec![
            (vec![a.clone(), a.clone()], vec![], "listed twice"),
            (vec![heavy_zero], vec![], "weight 0"),
            (
                vec![a.clone()],
                vec![table(None), table(None)],
                "listed twice",
            ),
            (
                vec![a.clone()],
                vec![table(Some(on_x))],
                "not in the node list",
            ),
            (
                vec![a.clone()],
                vec![table(Some(two_shards))],
                "has 1 shards",
            ),
            (vec![a.clone()], vec![sized], "shard 5"),
            (
                vec![node("a:1", NodeState::Draining)],
                vec![table(None)],
                "lower than replication factor",
            ),
        ];
        for (nodes, tables, message) in cases {
            let err = Model::new(nodes, tables).unwrap_err().to_string();
            assert!(err.contains(message), "{err}");
        }
    }

    #[test]
    fn states_classify_nodes() {
        let table = [
            (NodeState::Active, true, true),
            (NodeState::New, true, true),
            (NodeState::Draining, true, false),
            (NodeState::Inactive, false, false),
        ];
        for (state, live, accepts) in table {
            assert_eq!(state.is_live(), live);
            assert_eq!(state.accepts_shards(), accepts);
        }
    }
}
