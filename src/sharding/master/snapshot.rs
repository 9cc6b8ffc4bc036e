//! What the master engine decides from: everything it needs, read at one
//! moment, plus the master's own monotonic clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::ids::{NodeId, TableName};
use crate::sharding::records::{
    GroupName, GroupRecord, Lease, PlacementRow, QueueRow, RowFailure, Scope, TableState,
    TableStatus,
};
use crate::sharding::topology::Membership;

#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The master's monotonic clock: deadlines and retention are measured on
    /// it, never against another host's clock.
    pub now: Instant,
    /// The master's wall clock, only written into records for people.
    pub now_ms: i64,
    pub lease: Option<Lease>,
    /// Where the metadata lives.
    pub scope: Scope,
    /// The live membership; `None` when it cannot be read.
    pub members: Option<Membership>,
    pub tables: BTreeMap<TableName, TableState>,
    pub groups: BTreeMap<GroupName, GroupRecord>,
    /// Rows that are not processed yet, by group.
    pub unfinished: BTreeMap<GroupName, Vec<QueueRow>>,
    /// Every row of each group that is being aborted (to plan its undoing).
    pub aborting: BTreeMap<GroupName, Vec<QueueRow>>,
    /// Why rows that failed for good failed.
    pub failures: BTreeMap<u64, RowFailure>,
    /// The committed placement of every table; read only when a request
    /// waits to be planned ([`needs_planning`]).
    pub placement: Vec<PlacementRow>,
}

impl Snapshot {
    pub fn live(&self) -> BTreeSet<NodeId> {
        self.members
            .as_ref()
            .map(|m| m.active.clone())
            .unwrap_or_default()
    }

    /// Unfinished rows of `group` (none when all are processed).
    pub fn unfinished(&self, group: &GroupName) -> &[QueueRow] {
        self.unfinished.get(group).map_or(&[], Vec::as_slice)
    }

    /// Groups of the unfinished rows.
    pub fn groups_with_rows(&self) -> impl Iterator<Item = &GroupName> {
        self.unfinished.keys()
    }
}

/// Whether a table's request waits to be planned: newly requested, or left
/// `processing` by a master that stopped before committing its group.
pub fn needs_planning(state: &TableState, groups: &BTreeMap<GroupName, GroupRecord>) -> bool {
    match state.status {
        TableStatus::Requested => true,
        TableStatus::Processing => state
            .operation_group
            .as_ref()
            .is_some_and(|g| !groups.contains_key(g)),
        _ => false,
    }
}
