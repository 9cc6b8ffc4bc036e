//! How many replicas each node should hold: capacity-weighted quotas.
//!
//! A table needs `total` replicas on its eligible nodes. Node `i` of weight
//! `w_i` is entitled to `q_i = min(cap, λ·w_i)`, with `λ` chosen so that the
//! quotas add up to `total` ("water filling"): a node can hold at most one
//! replica of each shard, so `cap` is the number of shards, and what a capped
//! node cannot take is shared by the others in proportion to their weight.
//! A balanced placement gives every node `floor(q_i)` or `ceil(q_i)`
//! replicas; with equal weights that is exactly "max − min ≤ 1". Integer
//! arithmetic only, so the result never depends on float rounding.

/// One node's entitlement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Quota {
    /// `floor(q_i)`.
    pub floor: u64,
    /// The numerator of `q_i - floor(q_i)` over a denominator shared by all
    /// nodes; zero when the quota is a whole number. Nodes with a larger
    /// remainder are closer to their ceiling.
    pub remainder: u128,
}

impl Quota {
    pub fn ceil(self) -> u64 {
        self.floor + u64::from(self.remainder > 0)
    }
}

/// Quotas for `total` replicas over nodes of the given weights, at most
/// `cap` per node. Needs `total <= cap * weights.len()` and positive weights.
pub(super) fn quotas(total: u64, weights: &[u64], cap: u64) -> Vec<Quota> {
    let mut capped = vec![false; weights.len()];
    loop {
        let capped_count = capped.iter().filter(|c| **c).count() as u128;
        let rest_total = u128::from(total).saturating_sub(u128::from(cap) * capped_count);
        let rest_weight: u128 = weights
            .iter()
            .zip(&capped)
            .filter(|(_, c)| !**c)
            .map(|(w, _)| u128::from(*w))
            .sum();
        let mut changed = false;
        for (i, w) in weights.iter().enumerate() {
            if !capped[i] && rest_total * u128::from(*w) > u128::from(cap) * rest_weight {
                capped[i] = true;
                changed = true;
            }
        }
        if changed {
            continue;
        }
        return weights
            .iter()
            .zip(&capped)
            .map(|(w, is_capped)| {
                if *is_capped || rest_weight == 0 {
                    return Quota {
                        floor: if *is_capped { cap } else { 0 },
                        remainder: 0,
                    };
                }
                let share = rest_total * u128::from(*w);
                Quota {
                    // share / rest_weight <= cap, which fits in u64.
                    floor: (share / rest_weight) as u64,
                    remainder: share % rest_weight,
                }
            })
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn floors_and_ceils(total: u64, weights: &[u64], cap: u64) -> Vec<(u64, u64)> {
        quotas(total, weights, cap)
            .into_iter()
            .map(|q| (q.floor, q.ceil()))
            .collect()
    }

    #[test]
    fn quota_table() {
        // (total, weights, cap, expected (floor, ceil) per node)
        type Case = (u64, Vec<u64>, u64, Vec<(u64, u64)>);
        let cases: Vec<Case> = vec![
            (6, vec![1, 1, 1], 3, vec![(2, 2); 3]),
            (7, vec![1, 1, 1], 4, vec![(2, 3); 3]),
            (9, vec![1, 2], 10, vec![(3, 3), (6, 6)]),
            (10, vec![1, 2], 10, vec![(3, 4), (6, 7)]),
            // The heavy node is capped at one replica per shard; the rest is
            // spread over the light ones.
            (20, vec![100, 1, 1], 10, vec![(10, 10), (5, 5), (5, 5)]),
            (0, vec![1, 1], 5, vec![(0, 0), (0, 0)]),
            (12, vec![3, 3, 3, 3], 3, vec![(3, 3); 4]),
        ];
        for (total, weights, cap, expected) in cases {
            assert_eq!(
                floors_and_ceils(total, &weights, cap),
                expected,
                "total={total} weights={weights:?} cap={cap}"
            );
        }
    }

    #[test]
    fn quotas_always_cover_the_total() {
        for n in 1..6u64 {
            for cap in 1..8u64 {
                for total in 0..=n * cap {
                    let weights: Vec<u64> = (1..=n).collect();
                    let q = quotas(total, &weights, cap);
                    let floor: u64 = q.iter().map(|x| x.floor).sum();
                    let ceil: u64 = q.iter().map(|x| x.ceil()).sum();
                    assert!(floor <= total && total <= ceil);
                    assert!(q.iter().all(|x| x.ceil() <= cap));
                }
            }
        }
    }
}
