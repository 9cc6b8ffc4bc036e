//! Operation groups: every multi-step change (a CREATE, a DROP, a rollback)
//! is a group of queue rows plus one commit record in `system.sharding_state`
//! (`group:<name>`). Executors run a group's rows only while its record says
//! `committed` and carries the current master's epoch, so rows written by a
//! master that crashed before committing, or by a master that lost its lease,
//! never run.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

/// Lifecycle of a group, written only by the master:
///
/// ```text
/// committed ──all rows processed──▶ done
///     │
///     └─row failed / deadline──▶ aborting ──in-flight rows settled──▶ rolling_back
///                                                  │                      │
///                                                  │ (nothing to undo)    ├─▶ rolled_back
///                                                  ▼                      └─▶ rollback_failed
///                                             rolled_back
/// ```
/// `stale` marks a group written by a master whose lease had already passed
/// to another node; its rows never run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupStatus {
    Committed,
    Aborting,
    RollingBack,
    Done,
    RolledBack,
    RollbackFailed,
    Stale,
}

impl GroupStatus {
    /// Whether the group can still change state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            GroupStatus::Done
                | GroupStatus::RolledBack
                | GroupStatus::RollbackFailed
                | GroupStatus::Stale
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    Create,
    Drop,
    /// Undoes the processed steps of another group, in reverse order.
    Rollback,
}

/// The `group:<name>` state value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub status: GroupStatus,
    pub kind: GroupKind,
    pub table: String,
    /// Master epoch and node that own the group; executors compare them with
    /// the current lease.
    pub epoch: u64,
    pub master: NodeId,
    pub started_at_ms: i64,
    /// The group is aborted when it is not done by then (CREATE's `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<i64>,
    /// For a rollback group: the group it undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<String>,
    /// Why the group was aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
}

/// The name of the rollback group of `group`.
pub fn rollback_group_name(group: &str) -> String {
    format!("{group}_rollback")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_with_snake_case_statuses() {
        let rec = GroupRecord {
            status: GroupStatus::RollingBack,
            kind: GroupKind::Create,
            table: "t".into(),
            epoch: 3,
            master: NodeId::new("127.0.0.1:1312"),
            started_at_ms: 10,
            deadline_ms: Some(30_010),
            undoes: None,
            error: Some("boom".into()),
            finished_at_ms: None,
        };
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["status"], "rolling_back");
        assert_eq!(json["kind"], "create");
        assert!(json.get("undoes").is_none());
        assert_eq!(serde_json::from_value::<GroupRecord>(json).unwrap(), rec);
    }

    #[test]
    fn final_statuses() {
        assert!(GroupStatus::Done.is_final());
        assert!(!GroupStatus::Committed.is_final());
        assert!(!GroupStatus::Aborting.is_final());
    }
}
