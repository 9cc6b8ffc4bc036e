//! Which replication cluster holds which table, node by node.
//!
//! CREATE puts the shards of a replica set into the cluster named after the
//! set ([`internal_cluster_name`]), but a rebalance moves shards into clusters
//! of its own (`names::fresh_cluster_name`), so the cluster of a shard is not
//! a function of its placement: plans read it from what the nodes report
//! (`SHOW STATUS LIKE 'cluster_%'`). [`ClusterMap::derived`] gives what a
//! placement made by CREATE alone would show, for offline planning.

use std::collections::{BTreeMap, BTreeSet};

use super::{internal_cluster_name, Placement, ShardTable};
use crate::ids::{ClusterName, NodeId, TableName};

/// For each node that reported: its clusters and the tables each holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMap {
    nodes: BTreeMap<NodeId, BTreeMap<ClusterName, BTreeSet<String>>>,
}

impl ClusterMap {
    /// Records that `node` runs `cluster` holding `tables` (a node that runs
    /// no cluster is recorded with [`ClusterMap::reported`]).
    pub fn insert(
        &mut self,
        node: &NodeId,
        cluster: ClusterName,
        tables: impl IntoIterator<Item = String>,
    ) {
        self.nodes
            .entry(node.clone())
            .or_default()
            .entry(cluster)
            .or_default()
            .extend(tables);
    }

    /// Records that `node` reported, clusters or not.
    pub fn reported(&mut self, node: &NodeId) {
        self.nodes.entry(node.clone()).or_default();
    }

    /// What nodes holding these placements would report if every replicated
    /// shard were in the cluster CREATE puts it in.
    pub fn derived<'a>(tables: impl IntoIterator<Item = (&'a TableName, &'a Placement)>) -> Self {
        let mut map = Self::default();
        for (table, placement) in tables {
            for node in placement.nodes() {
                map.reported(&node);
            }
            for (shard, replicas) in placement.shards() {
                if replicas.len() < 2 {
                    continue;
                }
                let cluster = internal_cluster_name(replicas);
                let name = ShardTable::new(table, shard).to_string();
                for node in replicas {
                    map.insert(node, cluster.clone(), [name.clone()]);
                }
            }
        }
        map
    }

    /// This map, with what CREATE would have made of `table` on the holders
    /// that did not report.
    pub fn or_derived(&self, table: &TableName, placement: &Placement) -> Self {
        let mut map = self.clone();
        let derived = Self::derived([(table, placement)]);
        for (node, clusters) in derived.nodes {
            map.nodes.entry(node).or_insert(clusters);
        }
        map
    }

    /// Whether `node` reported its clusters.
    pub fn knows(&self, node: &NodeId) -> bool {
        self.nodes.contains_key(node)
    }

    /// The cluster that holds `table` on `node`, if any.
    pub fn cluster_of(&self, node: &NodeId, table: &ShardTable) -> Option<&ClusterName> {
        let name = table.to_string();
        self.nodes
            .get(node)?
            .iter()
            .find(|(_, tables)| tables.contains(&name))
            .map(|(cluster, _)| cluster)
    }

    /// The tables `cluster` holds as `node` reports it (empty when unknown).
    pub fn tables_in(&self, node: &NodeId, cluster: &ClusterName) -> BTreeSet<String> {
        self.nodes
            .get(node)
            .and_then(|clusters| clusters.get(cluster))
            .cloned()
            .unwrap_or_default()
    }

    /// Every cluster some node runs.
    pub fn names(&self) -> BTreeSet<ClusterName> {
        self.nodes
            .values()
            .flat_map(|clusters| clusters.keys().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> NodeId {
        NodeId::new(s)
    }

    #[test]
    fn derived_maps_replicated_shards_to_their_set_clusters() {
        let table = TableName::parse("t").unwrap();
        let placement = Placement::new(BTreeMap::from([
            (0, vec![id("a:1"), id("b:1")]),
            (1, vec![id("c:1")]),
        ]))
        .unwrap();
        let map = ClusterMap::derived([(&table, &placement)]);
        let set = internal_cluster_name(&[id("a:1"), id("b:1")]);
        let s0 = ShardTable::new(&table, 0);
        assert_eq!(map.cluster_of(&id("a:1"), &s0), Some(&set));
        assert_eq!(map.cluster_of(&id("b:1"), &s0), Some(&set));
        assert_eq!(
            map.cluster_of(&id("c:1"), &ShardTable::new(&table, 1)),
            None
        );
        assert!(map.knows(&id("c:1")) && !map.knows(&id("d:1")));
        assert_eq!(
            map.tables_in(&id("a:1"), &set),
            BTreeSet::from(["system.t_s0".to_string()])
        );
        assert_eq!(map.names(), BTreeSet::from([set]));
    }
}
