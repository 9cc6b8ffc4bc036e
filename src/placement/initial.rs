//! The placement of a new table, byte-compatible with PHP Buddy's
//! `Util::createShardingSchema` (spec §8.2).

use std::collections::BTreeMap;

use super::{Placement, PlacementError};
use crate::ids::NodeId;

/// Places `shards` shards with `rf` replicas each on `nodes`.
///
/// Nodes are sorted by id. For shard `i` and replica `j`, the candidates are
/// the nodes with the lowest load that do not hold shard `i` yet, in id
/// order; the pick is `candidates[(i + j) mod len]`.
///
/// Every pick takes a least-loaded node, so loads never differ by more than
/// one. A candidate therefore always exists while `rf <= nodes`: the nodes
/// already used for shard `i` are the only ones that can sit at the minimum
/// without being candidates, and there are fewer than `rf` of them.
pub fn initial_placement(
    nodes: &[NodeId],
    shards: u32,
    rf: u32,
) -> Result<Placement, PlacementError> {
    if shards == 0 || rf == 0 {
        return Err(PlacementError::InvalidShape);
    }
    let mut sorted: Vec<&NodeId> = nodes.iter().collect();
    sorted.sort();
    sorted.dedup();
    let rf_len = rf as usize;
    if rf_len > sorted.len() {
        return Err(PlacementError::NotEnoughNodes {
            nodes: sorted.len(),
            rf,
        });
    }

    // Indexes of the nodes at the current minimum load, ascending. When it
    // empties, every node sits one level higher and all of them come back.
    let mut at_min: Vec<usize> = (0..sorted.len()).collect();
    let mut placement = BTreeMap::new();
    for shard in 0..shards {
        let mut used: Vec<usize> = Vec::with_capacity(rf_len);
        for replica in 0..rf {
            let skipped = used_positions(&at_min, &used);
            let count = at_min.len() - skipped.len();
            if count == 0 {
                // Unreachable while rf <= nodes (see above); an error keeps
                // the function total instead of dividing by zero.
                return Err(PlacementError::NotEnoughNodes {
                    nodes: sorted.len(),
                    rf,
                });
            }
            let position =
                nth_unused_position(&skipped, (shard as usize + replica as usize) % count);
            let pick = at_min.remove(position);
            if at_min.is_empty() {
                at_min = (0..sorted.len()).collect();
            }
            used.push(pick);
        }
        used.sort_unstable();
        placement.insert(shard, used.into_iter().map(|i| sorted[i].clone()).collect());
    }
    Ok(Placement::from_canonical(placement))
}

/// Positions in `at_min` of the nodes already used for this shard, ascending.
fn used_positions(at_min: &[usize], used: &[usize]) -> Vec<usize> {
    let mut positions: Vec<usize> = used
        .iter()
        .filter_map(|u| at_min.binary_search(u).ok())
        .collect();
    positions.sort_unstable();
    positions
}

/// The position in `at_min` of its `n`-th entry that is not skipped.
fn nth_unused_position(skipped: &[usize], n: usize) -> usize {
    skipped.iter().fold(n, |position, s| {
        if *s <= position {
            position + 1
        } else {
            position
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_impossible_requests() {
        let nodes = [NodeId::new("a:1"), NodeId::new("b:1")];
        assert_eq!(
            initial_placement(&nodes, 0, 1),
            Err(PlacementError::InvalidShape)
        );
        assert_eq!(
            initial_placement(&nodes, 1, 0),
            Err(PlacementError::InvalidShape)
        );
        assert_eq!(
            initial_placement(&nodes, 4, 3),
            Err(PlacementError::NotEnoughNodes { nodes: 2, rf: 3 })
        );
        assert_eq!(
            initial_placement(&[], 4, 1),
            Err(PlacementError::NotEnoughNodes { nodes: 0, rf: 1 })
        );
    }

    /// The straightforward O(shards × rf × nodes) reading of the algorithm,
    /// to check the incremental bookkeeping against.
    fn reference(n: usize, shards: u32, rf: u32) -> Vec<Vec<usize>> {
        let mut load = vec![0u32; n];
        let mut out = Vec::new();
        for i in 0..shards as usize {
            let mut used = Vec::new();
            for j in 0..rf as usize {
                let m = *load.iter().min().unwrap();
                let cands: Vec<usize> = (0..n)
                    .filter(|k| load[*k] == m && !used.contains(k))
                    .collect();
                let pick = cands[(i + j) % cands.len()];
                load[pick] += 1;
                used.push(pick);
            }
            used.sort_unstable();
            out.push(used);
        }
        out
    }

    #[test]
    fn matches_the_plain_algorithm_on_small_inputs() {
        for n in 1..=9usize {
            let nodes: Vec<NodeId> = (0..n).map(|i| NodeId::new(format!("n{i}:1"))).collect();
            for rf in 1..=n as u32 {
                for shards in 1..40 {
                    let got = initial_placement(&nodes, shards, rf).unwrap();
                    let want = reference(n, shards, rf);
                    for (shard, replicas) in got.shards() {
                        let idx: Vec<usize> = replicas
                            .iter()
                            .map(|r| nodes.iter().position(|x| x == r).unwrap())
                            .collect();
                        assert_eq!(idx, want[shard as usize], "n={n} rf={rf} shards={shards}");
                    }
                }
            }
        }
    }
}
