//! Rows of `system.sharding_table`: the committed placement, one row per
//! (cluster, node, table) with the node's shard numbers.

use std::collections::{BTreeMap, BTreeSet};

use super::Scope;
use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::{self, Placement, PlacementError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementRow {
    pub scope: Scope,
    pub node: NodeId,
    pub table: TableName,
    /// Empty for a node that holds no shard (it still holds the wrapper).
    pub shards: Vec<u32>,
}

/// The committed placement of one table, from its rows.
pub fn placement_of(rows: &[PlacementRow]) -> Result<Placement, PlacementError> {
    Placement::from_rows(rows.iter().map(|r| (r.node.clone(), r.shards.clone())))
}

/// The rows of `placement` for `table`: one per node of `nodes`.
pub fn rows_of(
    scope: &Scope,
    table: &TableName,
    placement: &Placement,
    nodes: &[NodeId],
) -> Vec<PlacementRow> {
    nodes
        .iter()
        .map(|n| PlacementRow {
            scope: scope.clone(),
            node: n.clone(),
            table: table.clone(),
            shards: placement.shards_on(n),
        })
        .collect()
}

/// The internal clusters the replica sets of these rows use. Rows whose
/// placement cannot be read still count every cluster they might use:
/// better a leftover cluster than one deleted under another table.
pub fn clusters_in_use(rows: &[PlacementRow]) -> BTreeSet<ClusterName> {
    let mut by_table: BTreeMap<&TableName, Vec<PlacementRow>> = BTreeMap::new();
    for r in rows {
        by_table.entry(&r.table).or_default().push(r.clone());
    }
    let mut clusters = BTreeSet::new();
    for rows in by_table.values() {
        match placement_of(rows) {
            Ok(p) => clusters.extend(p.internal_clusters()),
            Err(_) => {
                let mut shards: BTreeMap<u32, Vec<NodeId>> = BTreeMap::new();
                for r in rows {
                    for s in &r.shards {
                        shards.entry(*s).or_default().push(r.node.clone());
                    }
                }
                clusters.extend(
                    shards
                        .values()
                        .filter(|n| n.len() > 1)
                        .map(|n| placement::internal_cluster_name(n)),
                );
            }
        }
    }
    clusters
}
