//! Every value shardbuddy persists in `system.sharding_{state,table,queue}`,
//! typed, with its codec and, for values with a status, the transitions
//! between statuses (an illegal transition is an error, never an
//! assignment). The store reads and writes these types only.
//!
//! | record | where | module |
//! |---|---|---|
//! | a table's create/drop lifecycle and request | state `table:<t>` | [`table`] |
//! | an operation group's commit record | state `group:<g>` | [`group`] |
//! | an operator's rebalance statement for a table | state `rebalance:<t>` | [`control`] |
//! | a node an operator drained | state `drain:<node>` | [`drain`] |
//! | the master lease; Buddy's `master`, `cluster`, `cluster_hash` keys | state | [`lease`] |
//! | a node's registration | state `node:<id>` | [`lease`] |
//! | why a queue row's last attempt failed | state `row_error:<id>` | [`failure`] |
//! | committed placement | `system.sharding_table` | [`placement`] |
//! | queue rows and their ids | `system.sharding_queue` | [`queue`] |
//!
//! `system.sharding_state` values are stored as PHP Buddy stores them: a
//! one-element JSON array `[<json>]` (spec §6.3, §10.2), in the row whose
//! document id is derived from the key, so a write is one atomic REPLACE.

use md5::{Digest, Md5};
use serde_json::Value;

use crate::ids::{NodeId, TableName};

pub mod control;
pub mod drain;
pub mod failure;
pub mod group;
pub mod lease;
pub mod placement;
pub mod queue;
pub mod table;

pub use control::{ControlAction, ControlRequest, ControlStatus};
pub use drain::DrainRecord;
pub use failure::RowFailure;
pub use group::{
    GroupKind, GroupName, GroupRecord, GroupStatus, MoveRecord, RebalanceProgress, RebalanceRecord,
    StopKind,
};
pub use lease::{Lease, Registration};
pub use placement::{merge_rows, PlacementRow};
pub use queue::{epoch_of, queue_id, seq_of, QueueRow, QueueStatus, SEQ_BITS};
pub use table::{OpKind, OpRequest, Scope, TableState, TableStatus};

/// A status change the lifecycle does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{record}: cannot go from '{from}' to '{to}'")]
pub struct TransitionError {
    pub record: &'static str,
    pub from: String,
    pub to: &'static str,
}

/// The keys of `system.sharding_state` shardbuddy reads and writes. PHP
/// Buddy's keys keep their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateKey {
    /// The user cluster the sharding metadata lives in (`""` = local).
    Cluster,
    /// `md5(join('|', sorted active nodes))`, PHP's topology fingerprint.
    ClusterHash,
    /// The master's node id (kept for PHP tools; the lease is authoritative).
    Master,
    /// The master lease with its epoch (fencing token).
    MasterLease,
    /// A node's registration.
    Node(NodeId),
    /// A sharded table's create/drop lifecycle.
    Table(TableName),
    /// An operation group's commit record.
    Group(GroupName),
    /// Why a queue row's last attempt failed.
    RowError(u64),
    /// An operator's rebalance statement for a table, until answered.
    Control(TableName),
    /// A node an operator drained.
    Drain(NodeId),
}

impl StateKey {
    pub const TABLE_PREFIX: &'static str = "table:";
    pub const GROUP_PREFIX: &'static str = "group:";
    pub const NODE_PREFIX: &'static str = "node:";
    pub const CONTROL_PREFIX: &'static str = "rebalance:";
    pub const DRAIN_PREFIX: &'static str = "drain:";

    pub fn render(&self) -> String {
        match self {
            StateKey::Cluster => "cluster".into(),
            StateKey::ClusterHash => "cluster_hash".into(),
            StateKey::Master => "master".into(),
            StateKey::MasterLease => "master_lease".into(),
            StateKey::Node(id) => format!("{}{id}", Self::NODE_PREFIX),
            StateKey::Table(t) => format!("{}{t}", Self::TABLE_PREFIX),
            StateKey::Group(g) => format!("{}{g}", Self::GROUP_PREFIX),
            StateKey::RowError(id) => format!("row_error:{id}"),
            StateKey::Control(t) => format!("{}{t}", Self::CONTROL_PREFIX),
            StateKey::Drain(n) => format!("{}{n}", Self::DRAIN_PREFIX),
        }
    }
}

/// The text stored in the `value` column for `value`.
pub fn encode_value(value: &Value) -> String {
    Value::Array(vec![value.clone()]).to_string()
}

/// Decodes the `value` column text; `None` when it is not a one-element array
/// (a row written by something else; callers treat it as absent).
///
/// Values are read back from the whole `value` column (the array text)
/// rather than from `value[0]`, which the daemon flattens (`true` comes back
/// as `1`, `"42"` and `42` look the same).
pub fn decode_value(text: &str) -> Option<Value> {
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Array(mut items) if items.len() == 1 => items.pop(),
        _ => None,
    }
}

/// The document id a key's row always has, so a write is a single atomic
/// `REPLACE` instead of PHP's read-then-write. Positive and never 0.
pub fn doc_id(key: &str) -> u64 {
    let digest = Md5::digest(key.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    let id = u64::from_be_bytes(bytes) & 0x7fff_ffff_ffff_ffff;
    id.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_render_like_buddy() {
        assert_eq!(StateKey::Cluster.render(), "cluster");
        assert_eq!(
            StateKey::Node(NodeId::new("127.0.0.1:1312")).render(),
            "node:127.0.0.1:1312"
        );
        assert_eq!(
            StateKey::Table(TableName::parse("T").unwrap()).render(),
            "table:t"
        );
        assert_eq!(
            StateKey::Group(GroupName::from("shard_create_t_1")).render(),
            "group:shard_create_t_1"
        );
    }

    #[test]
    fn values_round_trip_through_the_array_wrapping() {
        for v in [
            json!(""),
            json!("c"),
            json!(42),
            json!(true),
            json!({"status": "done", "q": [1, 2]}),
        ] {
            let text = encode_value(&v);
            assert!(text.starts_with('[') && text.ends_with(']'));
            assert_eq!(decode_value(&text), Some(v));
        }
        assert_eq!(decode_value("[1,2]"), None);
        assert_eq!(decode_value("{}"), None);
        assert_eq!(decode_value("not json"), None);
    }

    #[test]
    fn doc_ids_are_stable_and_positive() {
        assert_eq!(doc_id("master"), doc_id("master"));
        assert_ne!(doc_id("master"), doc_id("cluster"));
        for k in ["", "a", "node:1.2.3.4:9312"] {
            let id = doc_id(k);
            assert!(id > 0 && id <= i64::MAX as u64);
        }
    }
}
