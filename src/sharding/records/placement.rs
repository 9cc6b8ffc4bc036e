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

/// One row per (scope, node, table), with the union of their shards. A
/// placement is replaced by writing the new rows before deleting the old
/// ones, so a reader in between finds both for a node: it sees every copy
/// of the old placement and of the new one (never a table without holders),
/// and for a moment a copy that is about to be retired.
pub fn merge_rows(rows: Vec<PlacementRow>) -> Vec<PlacementRow> {
    let mut out: Vec<PlacementRow> = Vec::with_capacity(rows.len());
    let mut at: BTreeMap<(Scope, NodeId, TableName), usize> = BTreeMap::new();
    for row in rows {
        let key = (row.scope.clone(), row.node.clone(), row.table.clone());
        match at.get(&key) {
            Some(&i) => {
                let merged = &mut out[i].shards;
                merged.extend(row.shards);
                merged.sort_unstable();
                merged.dedup();
            }
            None => {
                at.insert(key, out.len());
                out.push(row);
            }
        }
    }
    out
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

/// The internal clusters the shards of these rows are in, as their holders
/// report them in `observed`. Only a shard none of whose holders reported
/// counts the cluster CREATE names after its replica set: after a
/// rebalance a replica set's shards may be in a cluster of another name,
/// and the one named after the set may hold nothing of theirs.
pub fn clusters_reported(
    observed: &placement::ClusterMap,
    rows: &[PlacementRow],
) -> BTreeSet<ClusterName> {
    let mut by_table: BTreeMap<&TableName, Vec<PlacementRow>> = BTreeMap::new();
    for r in rows {
        by_table.entry(&r.table).or_default().push(r.clone());
    }
    let mut clusters = BTreeSet::new();
    for (table, rows) in by_table {
        let Ok(p) = placement_of(&rows) else {
            clusters.extend(clusters_in_use(&rows));
            continue;
        };
        for (shard, replicas) in p.shards() {
            if replicas.len() < 2 {
                continue;
            }
            let shard = placement::ShardTable::new(table, shard);
            if replicas.iter().any(|n| observed.knows(n)) {
                clusters.extend(
                    replicas
                        .iter()
                        .filter_map(|n| observed.cluster_of(n, &shard))
                        .cloned(),
                );
            } else {
                clusters.insert(placement::internal_cluster_name(replicas));
            }
        }
    }
    clusters
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(node: &str, table: &str, shards: &[u32]) -> PlacementRow {
        PlacementRow {
            scope: Scope::from(Some(ClusterName::parse("c").unwrap())),
            node: NodeId::new(node),
            table: TableName::parse(table).unwrap(),
            shards: shards.to_vec(),
        }
    }

    fn node(n: &str) -> NodeId {
        NodeId::new(n)
    }

    #[test]
    fn rows_of_one_node_merge_into_the_union_of_their_shards() {
        let merged = merge_rows(vec![
            row("a", "t", &[0, 2]),
            row("b", "t", &[1]),
            row("a", "u", &[0]),
            row("a", "t", &[3, 2]),
        ]);
        assert_eq!(
            merged,
            vec![
                row("a", "t", &[0, 2, 3]),
                row("b", "t", &[1]),
                row("a", "u", &[0])
            ]
        );
    }

    #[test]
    fn reported_clusters_count_where_the_shards_are_and_derived_names_only_where_nobody_reported() {
        // `k` has shard 0 on a+b (moved into `rs_k0` by a rebalance) and
        // shard 1 on b+c; c is down and a, b reported.
        let rows = [
            row("a:1", "k", &[0]),
            row("b:1", "k", &[0, 1]),
            row("c:1", "k", &[1]),
        ];
        let set = |ns: &[&str]| {
            placement::internal_cluster_name(&ns.iter().map(|n| node(n)).collect::<Vec<_>>())
        };
        let moved = ClusterName::parse("rs_k0").unwrap();
        let mut observed = placement::ClusterMap::default();
        for n in ["a:1", "b:1"] {
            observed.insert(&node(n), moved.clone(), ["system.k_s0".to_string()]);
        }
        observed.insert(
            &node("b:1"),
            set(&["b:1", "c:1"]),
            ["system.k_s1".to_string()],
        );
        let found = clusters_reported(&observed, &rows);
        assert_eq!(
            found,
            BTreeSet::from([moved.clone(), set(&["b:1", "c:1"])]),
            "the cluster named after a+b holds nothing of k"
        );
        assert!(clusters_in_use(&rows).contains(&set(&["a:1", "b:1"])));
        // Nobody reported: every replica set's derived name.
        assert_eq!(
            clusters_reported(&placement::ClusterMap::default(), &rows),
            clusters_in_use(&rows)
        );
    }
}
