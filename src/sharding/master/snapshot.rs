//! What the master engine decides from: everything it needs, read at one
//! moment, plus the master's own monotonic clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use crate::ids::{NodeId, TableName};
use crate::placement::ClusterMap;
use crate::sharding::daemon::ClusterReport;
use crate::sharding::holdings::Holdings;
use crate::sharding::records::{
    ControlRequest, GroupName, GroupRecord, Lease, PlacementRow, QueueRow, Registration,
    RowFailure, Scope, TableState, TableStatus,
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
    /// The committed placement of every table.
    pub placement: Vec<PlacementRow>,
    /// Nodes whose shardbuddy registered (`node:<id>`): only they can run
    /// queue rows.
    pub registered: BTreeSet<NodeId>,
    /// Those registrations: which process each node runs, and its beat.
    pub registrations: BTreeMap<NodeId, Registration>,
    /// The replication clusters each live node runs, as it reports them (a
    /// node that could not be asked is missing).
    pub clusters: BTreeMap<NodeId, Vec<ClusterReport>>,
    /// Operators' rebalance statements (`rebalance:<t>`), answered or not.
    pub controls: BTreeMap<TableName, ControlRequest>,
    /// Nodes an operator drained: they get no new copies and their copies
    /// move off.
    pub drained: BTreeSet<NodeId>,
    /// What the live nodes hold, read before everything else on the rounds
    /// the cleanup sweeps (`None` on the others); a node that could not be
    /// read is missing.
    pub holdings: Option<BTreeMap<NodeId, Holdings>>,
}

impl Snapshot {
    pub fn live(&self) -> BTreeSet<NodeId> {
        self.members
            .as_ref()
            .map(|m| m.active.clone())
            .unwrap_or_default()
    }

    /// Nodes the placement names that the cluster no longer lists at all
    /// (removed with `ALTER CLUSTER c UPDATE nodes` once they were gone for
    /// good): nothing will run on them again. Only a primary view says so.
    pub fn forgotten(&self) -> BTreeSet<NodeId> {
        let Some(m) = self.members.as_ref().filter(|m| m.primary) else {
            return BTreeSet::new();
        };
        self.placement
            .iter()
            .map(|r| &r.node)
            .filter(|n| !m.all.contains(*n) && !m.active.contains(*n))
            .cloned()
            .collect()
    }

    /// Which cluster holds which table on the nodes that reported.
    pub fn cluster_map(&self) -> ClusterMap {
        let mut map = ClusterMap::default();
        for (node, reports) in &self.clusters {
            map.reported(node);
            for r in reports {
                map.insert(node, r.name.clone(), r.tables.iter().cloned());
            }
        }
        map
    }

    /// Unfinished rows of `group` (none when all are processed).
    pub fn unfinished(&self, group: &GroupName) -> &[QueueRow] {
        self.unfinished.get(group).map_or(&[], Vec::as_slice)
    }

    /// Groups of the unfinished rows.
    pub fn groups_with_rows(&self) -> impl Iterator<Item = &GroupName> {
        self.unfinished.keys()
    }

    /// The committed placement rows of `table`.
    pub fn placement_of(&self, table: &TableName) -> Vec<PlacementRow> {
        self.placement
            .iter()
            .filter(|r| r.table == *table)
            .cloned()
            .collect()
    }

    /// Groups of `table` that are not finished.
    pub fn open_groups_of<'a>(
        &'a self,
        table: &'a TableName,
    ) -> impl Iterator<Item = (&'a GroupName, &'a GroupRecord)> {
        self.groups
            .iter()
            .filter(move |(_, g)| g.table == *table && !g.status.is_final())
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
