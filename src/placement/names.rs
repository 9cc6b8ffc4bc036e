//! Names derived from placements: physical shard tables, internal replication
//! clusters (spec §7.5, §8.1) and the temporary clusters of single-copy moves.

use std::fmt;

use md5::{Digest, Md5};

use crate::ids::{ClusterName, NodeId, TableName};

/// The physical table of one shard: `system.<table>_s<N>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardTable {
    pub table: TableName,
    pub shard: u32,
}

impl ShardTable {
    pub fn new(table: &TableName, shard: u32) -> Self {
        Self {
            table: table.clone(),
            shard,
        }
    }

    /// Reads `system.<table>_s<N>` exactly as [`fmt::Display`] writes it.
    pub fn parse(text: &str) -> Option<Self> {
        let (table, shard) = text.strip_prefix("system.")?.rsplit_once("_s")?;
        if shard.is_empty() || !shard.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let table = TableName::parse(table)
            .ok()
            .filter(|t| t.as_str() == table)?;
        Some(Self {
            table,
            shard: shard.parse().ok()?,
        })
    }
}

impl fmt::Display for ShardTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "system.{}_s{}", self.table, self.shard)
    }
}

/// `system.<table>_s<N>`, the physical table of one shard.
pub fn shard_table_name(table: &TableName, shard: u32) -> String {
    ShardTable::new(table, shard).to_string()
}

/// The internal cluster of a replica set: `md5(join(',', sorted nodes))`,
/// with a leading digit `d` replaced by `chr(97 + d % 6)` so the name starts
/// with a letter (PHP Buddy's `getClusterName`).
pub fn internal_cluster_name(nodes: &[NodeId]) -> ClusterName {
    let mut sorted: Vec<&str> = nodes.iter().map(NodeId::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut name = hex_md5(&sorted.join(","));
    if let Some(digit) = name.chars().next().and_then(|c| c.to_digit(10)) {
        let letter = char::from(b'a' + (digit % 6) as u8);
        name.replace_range(0..1, letter.encode_utf8(&mut [0; 4]));
    }
    valid_cluster_name(&name)
}

/// The cluster a rebalance makes for a new replica set, on `owner`: shaped
/// like [`internal_cluster_name`] but unique to the operation (`salt`, its
/// group's name), so that a stale copy of an older cluster, kept by a node
/// that was away, never shares a name with a live one.
pub(crate) fn fresh_cluster_name(salt: &str, nodes: &[NodeId], owner: &NodeId) -> ClusterName {
    let mut sorted: Vec<&str> = nodes.iter().map(NodeId::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let digest = hex_md5(&format!("{salt}|{}|{owner}", sorted.join(",")));
    valid_cluster_name(&format!("rs_{}", &digest[..29]))
}

/// The temporary cluster that carries one shard from `from` to `to` during a
/// move whose donor does not stay a holder (spec §11.5 technique). PHP uses a
/// random `uniqid`; a digest of the operation (`salt`) and of what is moved
/// keeps plans deterministic and the name unique.
pub(crate) fn temp_cluster_name(
    salt: &str,
    table: &TableName,
    shard: u32,
    from: &NodeId,
    to: &NodeId,
) -> ClusterName {
    let digest = hex_md5(&format!("{salt}|{table}|{shard}|{from}|{to}"));
    valid_cluster_name(&format!("temp_move_{shard}_{}", &digest[..12]))
}

/// Whether `name` has the shape of a cluster sharding makes: a replica
/// set's md5 name ([`internal_cluster_name`]), a rebalance's `rs_<hex>`
/// ([`fresh_cluster_name`]) or a move's `temp_move_<shard>_<hex>`
/// ([`temp_cluster_name`]). Only those are ever removed as orphans.
pub fn is_internal_cluster_name(name: &ClusterName) -> bool {
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let name = name.as_str();
    if let Some(rest) = name.strip_prefix("rs_") {
        return hex(rest, 29);
    }
    if let Some((shard, digest)) = name
        .strip_prefix("temp_move_")
        .and_then(|rest| rest.split_once('_'))
    {
        return !shard.is_empty() && shard.bytes().all(|b| b.is_ascii_digit()) && hex(digest, 12);
    }
    hex(name, 32) && name.as_bytes()[0].is_ascii_alphabetic()
}

fn hex_md5(text: &str) -> String {
    Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Both callers build names of letters, digits and `_` that start with a
/// letter and are far shorter than the limit, so validation cannot fail.
fn valid_cluster_name(name: &str) -> ClusterName {
    ClusterName::parse(name).expect("generated cluster names are valid identifiers")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(raw: &[&str]) -> Vec<NodeId> {
        raw.iter().map(|s| NodeId::new(*s)).collect()
    }

    #[test]
    fn internal_names_match_the_spec_examples() {
        let cases = [
            (
                &["10.0.0.3:9312", "10.0.0.1:9312"][..],
                "ab948c47f2712b5f1e9d26a254f22d05",
            ),
            (
                &["10.0.0.1:9312", "10.0.0.2:9312"][..],
                "baf03a60ebc5930db9856aa3c82bb1b5",
            ),
            (
                &["10.0.0.2:9312", "10.0.0.3:9312"][..],
                "cf2306b3d3a42e859dbcd900d51d7258",
            ),
        ];
        for (nodes, expected) in cases {
            assert_eq!(internal_cluster_name(&ids(nodes)).as_str(), expected);
        }
    }

    #[test]
    fn every_leading_digit_maps_to_a_letter() {
        // Search a few node sets until each leading digit has been seen once.
        let mut seen = [false; 10];
        for port in 0..2000 {
            let nodes = ids(&["a:1", &format!("b:{port}")]);
            let raw = hex_md5(&format!("a:1,b:{port}"));
            let first = raw.chars().next().unwrap();
            let name = internal_cluster_name(&nodes);
            if let Some(d) = first.to_digit(10) {
                seen[d as usize] = true;
                let expected = ["a", "b", "c", "d", "e", "f", "a", "b", "c", "d"][d as usize];
                assert_eq!(&name.as_str()[..1], expected);
                assert_eq!(&name.as_str()[1..], &raw[1..]);
            } else {
                assert_eq!(name.as_str(), raw);
            }
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn shard_tables_round_trip_and_odd_texts_are_refused() {
        let t = TableName::parse("a_s1").unwrap();
        let shard = ShardTable::new(&t, 20);
        assert_eq!(shard.to_string(), "system.a_s1_s20");
        assert_eq!(ShardTable::parse("system.a_s1_s20"), Some(shard));
        for bad in [
            "a_s1_s20",
            "system.a_s",
            "system.a_s+1",
            "system.A_s1",
            "system._s1x",
            "system.1a_s1",
            "system.sharding_state",
        ] {
            assert_eq!(ShardTable::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn generated_names_are_internal_and_others_are_not() {
        let t = TableName::parse("t").unwrap();
        let (a, b) = (NodeId::new("a:1"), NodeId::new("b:2"));
        assert!(is_internal_cluster_name(&internal_cluster_name(&[
            a.clone(),
            b.clone()
        ])));
        assert!(is_internal_cluster_name(&fresh_cluster_name(
            "g",
            std::slice::from_ref(&a),
            &b
        )));
        assert!(is_internal_cluster_name(&temp_cluster_name(
            "g", &t, 7, &a, &b
        )));
        for user in [
            "c",
            "mycluster",
            "rs_x",
            "temp_move_1_zz",
            "abcdef0123456789abcdef012345678",
        ] {
            assert!(
                !is_internal_cluster_name(&ClusterName::parse(user).unwrap()),
                "{user}"
            );
        }
    }

    #[test]
    fn temp_names_are_stable_and_distinct() {
        let t = TableName::parse("t").unwrap();
        let (a, b) = (NodeId::new("a:1"), NodeId::new("b:1"));
        let one = temp_cluster_name("g1", &t, 3, &a, &b);
        assert_eq!(one, temp_cluster_name("g1", &t, 3, &a, &b));
        assert!(one.as_str().starts_with("temp_move_3_"));
        assert_ne!(one, temp_cluster_name("g1", &t, 3, &b, &a));
        assert_ne!(one, temp_cluster_name("g1", &t, 4, &a, &b));
        assert_ne!(one, temp_cluster_name("g2", &t, 3, &a, &b));
    }

    #[test]
    fn fresh_names_depend_on_the_operation_the_set_and_the_owner() {
        let (a, b, c) = (NodeId::new("a:1"), NodeId::new("b:1"), NodeId::new("c:1"));
        let one = fresh_cluster_name("g1", &[b.clone(), a.clone()], &a);
        assert_eq!(one, fresh_cluster_name("g1", &[a.clone(), b.clone()], &a));
        assert!(one.as_str().starts_with("rs_") && one.as_str().len() == 32);
        assert_ne!(one, fresh_cluster_name("g2", &[a.clone(), b.clone()], &a));
        assert_ne!(one, fresh_cluster_name("g1", &[a.clone(), b.clone()], &b));
        assert_ne!(one, fresh_cluster_name("g1", &[a.clone(), c], &a));
        assert_ne!(one, internal_cluster_name(&[a, b]));
    }
}
