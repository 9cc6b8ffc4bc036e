//! The `table:<t>` state value: a sharded table's create/drop lifecycle
//! (spec §10.3), with PHP Buddy's keys, plus the request that started it.
//!
//! A node that receives CREATE/DROP writes the request here (`requested`); the
//! master picks it up, enqueues the work (`processing`) and records the
//! outcome (`done` / `failed`), which the requesting node is waiting for.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::NodeId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    Requested,
    Processing,
    Done,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Create,
    Drop,
}

/// What was asked for, and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRequest {
    /// Unique per statement: the requester recognises its own outcome by it.
    pub id: String,
    pub by: NodeId,
    /// Requester's wall clock when the statement arrived (ms).
    pub at_ms: i64,
    /// The statement's timeout (ms): the work must be done by `at_ms + timeout_ms`.
    pub timeout_ms: i64,
    /// The user cluster (`""` for local sharding).
    pub cluster: String,
    #[serde(default)]
    pub shards: u32,
    #[serde(default)]
    pub rf: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableState {
    pub status: TableStatus,
    #[serde(rename = "type")]
    pub kind: OpKind,
    /// The statement's result set(s) once done (PHP: `[{"total":0,…}]`).
    #[serde(default)]
    pub result: Option<Value>,
    /// Column definitions, verbatim.
    #[serde(default)]
    pub structure: String,
    /// Other table options, verbatim.
    #[serde(default)]
    pub extra: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_group: Option<String>,
    #[serde(default)]
    pub nodes: Vec<NodeId>,
    #[serde(default)]
    pub queue_ids: Vec<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_executed: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_success: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<OpRequest>,
}

impl TableState {
    pub fn requested(kind: OpKind, request: OpRequest, structure: String, extra: String) -> Self {
        Self {
            status: TableStatus::Requested,
            kind,
            result: None,
            structure,
            extra,
            operation_group: None,
            nodes: Vec::new(),
            queue_ids: Vec::new(),
            error: None,
            rollback_executed: None,
            rollback_success: None,
            request: Some(request),
        }
    }

    /// Whether a CREATE or DROP of this table is under way.
    pub fn in_flight(&self) -> bool {
        matches!(
            self.status,
            TableStatus::Requested | TableStatus::Processing
        )
    }

    pub fn request_id(&self) -> Option<&str> {
        self.request.as_ref().map(|r| r.id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_with_buddy_keys() {
        let mut s = TableState::requested(
            OpKind::Create,
            OpRequest {
                id: "r1".into(),
                by: NodeId::new("a:1"),
                at_ms: 5,
                timeout_ms: 30_000,
                cluster: "c".into(),
                shards: 4,
                rf: 2,
            },
            "id bigint".into(),
            String::new(),
        );
        s.status = TableStatus::Done;
        s.result = Some(serde_json::json!([{"total": 0, "error": "", "warning": ""}]));
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["status"], "done");
        assert_eq!(v["type"], "create");
        assert_eq!(v["structure"], "id bigint");
        assert!(v.get("error").is_none());
        assert_eq!(serde_json::from_value::<TableState>(v).unwrap(), s);
        // A PHP Buddy value (no request) still reads.
        let php: TableState = serde_json::from_value(serde_json::json!({
            "status": "done", "type": "drop", "result": null, "structure": "", "extra": "",
            "nodes": ["a:1"], "queue_ids": [1, 2]
        }))
        .unwrap();
        assert_eq!(php.request, None);
        assert!(!php.in_flight());
    }
}
