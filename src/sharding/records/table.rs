//! The `table:<t>` state value: a sharded table's create/drop lifecycle
//! (spec §10.3), with PHP Buddy's keys, plus the request that started it.
//!
//! A node that receives CREATE/DROP writes the request here (`requested`); the
//! master picks it up, enqueues the work (`processing`) and records the
//! outcome (`done` / `failed`), which the requesting node is waiting for.
//!
//! ```text
//! requested ──master enqueues──▶ processing ──group done──▶ done
//!     │   ▲                          │
//!     │   └──stale master's group────┤
//!     └──cannot be planned──▶ failed ◀──group undone / failed
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{GroupName, TransitionError};
use crate::ids::{ClusterName, IdentError, NodeId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableStatus {
    Requested,
    Processing,
    Done,
    Failed,
}

impl TableStatus {
    fn name(self) -> &'static str {
        match self {
            TableStatus::Requested => "requested",
            TableStatus::Processing => "processing",
            TableStatus::Done => "done",
            TableStatus::Failed => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Create,
    Drop,
}

/// Where a sharded table (and the metadata) lives: on one node, or in a
/// replication cluster. Stored as Buddy stores it: `""` for local, else the
/// cluster's name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    Local,
    Cluster(ClusterName),
}

impl Scope {
    pub fn cluster(&self) -> Option<&ClusterName> {
        match self {
            Scope::Local => None,
            Scope::Cluster(c) => Some(c),
        }
    }
}

impl From<Option<ClusterName>> for Scope {
    fn from(cluster: Option<ClusterName>) -> Self {
        cluster.map_or(Scope::Local, Scope::Cluster)
    }
}

impl TryFrom<String> for Scope {
    type Error = IdentError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        if raw.is_empty() {
            Ok(Scope::Local)
        } else {
            ClusterName::parse(&raw).map(Scope::Cluster)
        }
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> String {
        scope.to_string()
    }
}

impl fmt::Display for Scope {
    /// The stored form: `""` or the cluster name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Local => Ok(()),
            Scope::Cluster(c) => write!(f, "{c}"),
        }
    }
}

/// What was asked for, and by whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpRequest {
    /// Unique per statement: the requester recognises its own outcome by it.
    pub id: String,
    pub by: NodeId,
    /// Requester's wall clock when the statement arrived (ms), for people to
    /// read; no decision compares it with another host's clock.
    pub at_ms: i64,
    /// The statement's timeout (ms). The requester waits this long (plus the
    /// rollback grace) on its own clock; the master aborts the work this long
    /// after it first saw the request, on its own clock.
    pub timeout_ms: u64,
    #[serde(rename = "cluster")]
    pub scope: Scope,
    #[serde(default)]
    pub shards: u32,
    #[serde(default)]
    pub rf: u32,
    /// The requesting shardbuddy process (its registration's `instance`):
    /// a request whose process is gone before the master plans it is
    /// discarded. Absent in requests of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
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
    pub operation_group: Option<GroupName>,
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

    /// Whether `group` is the operation carrying out the current request.
    pub fn is_run_by(&self, group: &GroupName) -> bool {
        self.status == TableStatus::Processing && self.operation_group.as_ref() == Some(group)
    }

    fn go(&mut self, allowed: &[TableStatus], to: TableStatus) -> Result<(), TransitionError> {
        if !allowed.contains(&self.status) {
            return Err(TransitionError {
                record: "table state",
                from: self.status.name().to_string(),
                to: to.name(),
            });
        }
        self.status = to;
        Ok(())
    }

    /// The master enqueued the work as `group`.
    pub fn start(
        &mut self,
        group: GroupName,
        nodes: Vec<NodeId>,
        queue_ids: Vec<u64>,
    ) -> Result<(), TransitionError> {
        self.go(&[TableStatus::Requested], TableStatus::Processing)?;
        self.operation_group = Some(group);
        self.nodes = nodes;
        self.queue_ids = queue_ids;
        Ok(())
    }

    /// The work is done; `result` is what the statement answers.
    pub fn succeed(&mut self, result: Value) -> Result<(), TransitionError> {
        self.go(&[TableStatus::Processing], TableStatus::Done)?;
        self.result = Some(result);
        Ok(())
    }

    /// The request cannot be carried out (`error` is what the statement
    /// answers); for work that ran, `rollback` says whether it was undone.
    pub fn fail(
        &mut self,
        error: String,
        rollback: Option<RollbackOutcome>,
    ) -> Result<(), TransitionError> {
        self.go(
            &[TableStatus::Requested, TableStatus::Processing],
            TableStatus::Failed,
        )?;
        self.error = Some(error);
        if let Some(r) = rollback {
            self.rollback_executed = Some(r.executed);
            self.rollback_success = Some(r.success);
        }
        Ok(())
    }

    /// The group that carried the request was written by a stale master:
    /// the request waits to be planned again.
    pub fn request_again(&mut self) -> Result<(), TransitionError> {
        self.go(&[TableStatus::Processing], TableStatus::Requested)?;
        self.operation_group = None;
        Ok(())
    }
}

/// How the undoing of a failed operation went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RollbackOutcome {
    /// Some step had taken effect and was undone (or its undoing ran).
    pub executed: bool,
    pub success: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(scope: Scope) -> OpRequest {
        OpRequest {
            id: "r1".into(),
            by: NodeId::new("a:1"),
            at_ms: 5,
            timeout_ms: 30_000,
            scope,
            shards: 4,
            rf: 2,
            instance: None,
        }
    }

    #[test]
    fn serialises_with_buddy_keys() {
        let c = ClusterName::parse("c").unwrap();
        let mut s = TableState::requested(
            OpKind::Create,
            request(Scope::Cluster(c)),
            "id bigint".into(),
            String::new(),
        );
        s.start(GroupName::from("g"), vec![], vec![]).unwrap();
        s.succeed(serde_json::json!([{"total": 0, "error": "", "warning": ""}]))
            .unwrap();
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["status"], "done");
        assert_eq!(v["type"], "create");
        assert_eq!(v["structure"], "id bigint");
        assert_eq!(v["request"]["cluster"], "c");
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

    #[test]
    fn local_scope_is_an_empty_name() {
        let local = serde_json::to_value(request(Scope::Local)).unwrap();
        assert_eq!(local["cluster"], "");
        let back: OpRequest = serde_json::from_value(local).unwrap();
        assert_eq!(back.scope, Scope::Local);
        let mut bad = serde_json::to_value(request(Scope::Local)).unwrap();
        bad["cluster"] = "no such;name".into();
        assert!(serde_json::from_value::<OpRequest>(bad).is_err());
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        let mut s = TableState::requested(
            OpKind::Drop,
            request(Scope::Local),
            String::new(),
            String::new(),
        );
        assert!(s.succeed(Value::Null).is_err(), "not started");
        let g = GroupName::from("g");
        s.start(g.clone(), vec![NodeId::new("a:1")], vec![7])
            .unwrap();
        assert!(s.is_run_by(&g));
        s.request_again().unwrap();
        assert_eq!(
            (s.status, s.operation_group.clone()),
            (TableStatus::Requested, None)
        );
        s.start(g, vec![], vec![]).unwrap();
        s.fail(
            "boom".into(),
            Some(RollbackOutcome {
                executed: true,
                success: true,
            }),
        )
        .unwrap();
        assert_eq!(
            (s.status, s.rollback_executed, s.rollback_success),
            (TableStatus::Failed, Some(true), Some(true))
        );
        assert_eq!(
            s.fail("again".into(), None).unwrap_err().to_string(),
            "table state: cannot go from 'failed' to 'failed'"
        );
    }
}
