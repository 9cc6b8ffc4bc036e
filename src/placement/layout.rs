//! Where the shards of one table live.

use std::collections::{BTreeMap, BTreeSet};

use super::{internal_cluster_name, PlacementError};
use crate::ids::{ClusterName, NodeId};

/// Shard number → the nodes holding a replica of it.
///
/// Invariants, checked by every constructor: shard numbers are exactly
/// `0..shard_count()`, every shard has at least one replica, and each replica
/// list is sorted by node id without duplicates. Sorted lists make the value
/// canonical (two equal placements compare and print equal) and give the
/// mirror order the wrappers use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Placement {
    shards: BTreeMap<u32, Vec<NodeId>>,
}

impl Placement {
    /// Validates and normalises a shard → replicas map.
    pub fn new(shards: BTreeMap<u32, Vec<NodeId>>) -> Result<Self, PlacementError> {
        let count = u32::try_from(shards.len()).map_err(|_| PlacementError::InvalidShape)?;
        let mut normalised = BTreeMap::new();
        for (expected, (shard, mut replicas)) in (0..count).zip(shards) {
            if shard != expected {
                return Err(PlacementError::MissingShard {
                    count,
                    missing: expected,
                });
            }
            if replicas.is_empty() {
                return Err(PlacementError::NoReplicas { shard });
            }
            replicas.sort();
            if let Some(pair) = replicas.windows(2).find(|w| w[0] == w[1]) {
                return Err(PlacementError::DuplicateReplica {
                    shard,
                    node: pair[0].clone(),
                });
            }
            normalised.insert(shard, replicas);
        }
        Ok(Self { shards: normalised })
    }

    /// Builds a placement from `system.sharding_table`-style rows: one node
    /// and the shards it holds per row. Rows without shards are allowed.
    pub fn from_rows<I, S>(rows: I) -> Result<Self, PlacementError>
    where
        I: IntoIterator<Item = (NodeId, S)>,
        S: IntoIterator<Item = u32>,
    {
        let mut shards: BTreeMap<u32, Vec<NodeId>> = BTreeMap::new();
        for (node, held) in rows {
            for shard in held {
                shards.entry(shard).or_default().push(node.clone());
            }
        }
        Self::new(shards)
    }

    /// For values the planner built itself and knows to be canonical.
    pub(super) fn from_canonical(shards: BTreeMap<u32, Vec<NodeId>>) -> Self {
        debug_assert_eq!(
            Self::new(shards.clone()).as_ref(),
            Ok(&Self {
                shards: shards.clone()
            })
        );
        Self { shards }
    }

    pub fn shard_count(&self) -> u32 {
        // `new` rejects more than u32::MAX shards.
        self.shards.len() as u32
    }

    /// Every shard with its replicas, in shard order.
    pub fn shards(&self) -> impl Iterator<Item = (u32, &[NodeId])> {
        self.shards.iter().map(|(s, r)| (*s, r.as_slice()))
    }

    /// The replicas of `shard`, sorted by node id; empty for an unknown shard.
    pub fn replicas(&self, shard: u32) -> &[NodeId] {
        self.shards.get(&shard).map_or(&[], Vec::as_slice)
    }

    /// The shards `node` holds, ascending.
    pub fn shards_on(&self, node: &NodeId) -> Vec<u32> {
        self.shards()
            .filter(|(_, replicas)| replicas.contains(node))
            .map(|(shard, _)| shard)
            .collect()
    }

    /// Every node that holds at least one replica.
    pub fn nodes(&self) -> BTreeSet<NodeId> {
        self.shards.values().flatten().cloned().collect()
    }

    /// The effective replication factor: the most replicas any shard has.
    /// This is what decides the wrapper layout (spec §8.3).
    pub fn max_replicas(&self) -> usize {
        self.shards.values().map(Vec::len).max().unwrap_or(0)
    }

    /// The internal replication clusters the placement uses: one per
    /// distinct replica set of two or more nodes.
    pub fn internal_clusters(&self) -> BTreeSet<ClusterName> {
        self.shards
            .values()
            .filter(|replicas| replicas.len() >= 2)
            .map(|replicas| internal_cluster_name(replicas))
            .collect()
    }

    /// Node → its shards, the shape of `system.sharding_table` rows.
    pub fn rows(&self) -> BTreeMap<NodeId, Vec<u32>> {
        let mut rows: BTreeMap<NodeId, Vec<u32>> = BTreeMap::new();
        for (shard, replicas) in self.shards() {
            for node in replicas {
                rows.entry(node.clone()).or_default().push(shard);
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(id: &str) -> NodeId {
        NodeId::new(id)
    }

    #[test]
    fn construction_normalises_and_validates() {
        let ok = Placement::new(BTreeMap::from([
            (0, vec![n("b"), n("a")]),
            (1, vec![n("c")]),
        ]))
        .unwrap();
        assert_eq!(ok.replicas(0), &[n("a"), n("b")]);
        assert_eq!(ok.replicas(7), &[] as &[NodeId]);
        assert_eq!(ok.shards_on(&n("a")), vec![0]);
        assert_eq!(ok.nodes().len(), 3);
        assert_eq!(ok.max_replicas(), 2);
        assert_eq!(ok.rows()[&n("c")], vec![1]);

        let cases: Vec<(BTreeMap<u32, Vec<NodeId>>, PlacementError)> = vec![
            (
                BTreeMap::from([(0, vec![n("a")]), (2, vec![n("a")])]),
                PlacementError::MissingShard {
                    count: 2,
                    missing: 1,
                },
            ),
            (
                BTreeMap::from([(0, vec![])]),
                PlacementError::NoReplicas { shard: 0 },
            ),
            (
                BTreeMap::from([(0, vec![n("a"), n("a")])]),
                PlacementError::DuplicateReplica {
                    shard: 0,
                    node: n("a"),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(Placement::new(input), Err(expected));
        }
    }

    #[test]
    fn rows_round_trip() {
        let p = Placement::from_rows([(n("a"), vec![0, 1]), (n("b"), vec![1]), (n("c"), vec![])])
            .unwrap();
        assert_eq!(p.replicas(1), &[n("a"), n("b")]);
        assert_eq!(Placement::from_rows(p.rows()).unwrap(), p);
    }
}
