//! Shard routing, as searchd's `type='shard'` tables do it: targets ordered by the numeric
//! `_s<N>` suffix of their table name, a document goes to
//! `JumpConsistentHash(CRC32(decimal id), number of targets)`.

/// Lamping & Veach jump consistent hash.
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let buckets = i64::from(buckets.max(1));
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = (((b + 1) as f64) * ((1u64 << 31) as f64 / (((key >> 33) + 1) as f64))) as i64;
    }
    b as u32
}

/// Index (into targets ordered by [`order_targets`]) of the target holding document `id`.
pub fn target_for(id: i64, targets: usize) -> usize {
    let crc = crc32fast::hash((id as u64).to_string().as_bytes());
    jump_consistent_hash(u64::from(crc), targets as u32) as usize
}

/// The `_s<N>` suffix of a table name.
pub fn shard_suffix(table: &str) -> Option<u64> {
    let (_, digits) = table.rsplit_once("_s")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Orders target names by suffix; names without one come after, in their given order.
/// `Err` names the two targets sharing a suffix.
pub fn order_targets(names: &[&str]) -> Result<Vec<usize>, (u64, String, String)> {
    let mut with: Vec<(u64, usize)> = Vec::new();
    let mut without = Vec::new();
    for (i, name) in names.iter().enumerate() {
        match shard_suffix(name) {
            Some(n) => {
                if let Some((_, j)) = with.iter().find(|(m, _)| *m == n) {
                    return Err((n, names[*j].to_string(), name.to_string()));
                }
                with.push((n, i));
            }
            None => without.push(i),
        }
    }
    with.sort();
    Ok(with.into_iter().map(|(_, i)| i).chain(without).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_two_shard_split() {
        let s0 = [1, 2, 6, 9, 11, 14, 15, 17, 18, 20, 22, 23];
        let s1 = [3, 4, 5, 7, 8, 10, 12, 13, 16, 19, 21, 24];
        for id in s0 {
            assert_eq!(target_for(id, 2), 0, "id {id}");
        }
        for id in s1 {
            assert_eq!(target_for(id, 2), 1, "id {id}");
        }
    }

    #[test]
    fn target_order_and_duplicates() {
        assert_eq!(
            order_targets(&["system.t_s10", "system.t_s2", "x", "system.t_s0"]).unwrap(),
            vec![3, 1, 0, 2]
        );
        let dup = order_targets(&["system.s_s0", "system.s_s0"]).unwrap_err();
        assert_eq!(
            dup,
            (0, "system.s_s0".to_string(), "system.s_s0".to_string())
        );
        assert_eq!(shard_suffix("dl"), None);
        assert_eq!(shard_suffix("p_s0"), Some(0));
    }

    proptest! {
        #[test]
        fn hash_stays_in_range_and_one_bucket_takes_all(key in any::<u64>(), n in 1u32..5000) {
            prop_assert!(jump_consistent_hash(key, n) < n);
            prop_assert_eq!(jump_consistent_hash(key, 1), 0);
        }

        #[test]
        fn growing_buckets_moves_keys_only_to_the_new_bucket(key in any::<u64>(), n in 1u32..1000) {
            let before = jump_consistent_hash(key, n);
            let after = jump_consistent_hash(key, n + 1);
            prop_assert!(after == before || after == n);
        }
    }
}
