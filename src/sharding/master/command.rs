//! What the engine asks its driver to do, in order. The driver applies the
//! commands of one step one by one and stops at the first that fails; the
//! next step, from a fresh snapshot, sees what was done and what was not.

use std::fmt;

use crate::ids::{ClusterName, NodeId, TableName};
use crate::sharding::records::{
    ControlRequest, GroupName, GroupRecord, PlacementRow, QueueRow, TableState,
};

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    /// Write new queue rows.
    Enqueue(Vec<QueueRow>),
    /// Replace a table's committed placement.
    ReplacePlacement(TableName, Vec<PlacementRow>),
    DeletePlacement(TableName),
    PutTable(TableName, TableState),
    DeleteTable(TableName),
    PutGroup(GroupName, GroupRecord),
    /// Answer an operator's rebalance statement.
    PutControl(TableName, ControlRequest),
    /// Remove a group's rows, their failure records and its commit record.
    PurgeGroup(GroupName),
    /// New rows are queued: executors should look now.
    WakeExecutors,
    /// A table's state changed: waiting statements should read it now.
    TableChanged,
    /// Something changed that the next step acts on: run it now.
    StepAgain,
    /// Make the surviving members of an internal cluster a primary
    /// component (`SET CLUSTER <c> GLOBAL 'pc.bootstrap' = 1` on `node`),
    /// so writes to its shards work again.
    Bootstrap {
        node: NodeId,
        cluster: ClusterName,
    },
    Log(Event),
}

/// What the master reports in its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    TookOffice {
        epoch: u64,
        adopted: usize,
        discarded: usize,
    },
    Enqueued {
        table: TableName,
        group: GroupName,
        rows: usize,
    },
    Done {
        table: TableName,
        group: GroupName,
    },
    Aborted {
        table: TableName,
        group: GroupName,
        error: String,
    },
    RollingBack {
        group: GroupName,
        steps: usize,
    },
    RollbackFailed {
        group: GroupName,
    },
    DiscardedStale {
        group: GroupName,
        epoch: u64,
    },
    /// Rows whose group was never committed.
    DiscardedUncommitted {
        group: GroupName,
    },
    Refused {
        table: TableName,
        error: String,
    },
    /// A request waits for another table's operation that holds an
    /// internal cluster its plan works on.
    Waiting {
        table: TableName,
        other: TableName,
        cluster: ClusterName,
    },
    /// Manticore's `Rebalancing due to inactive nodes: <ids>`.
    RebalanceDueToInactive(String),
    RebalanceStarted {
        table: TableName,
        group: GroupName,
        reason: &'static str,
        copies: u64,
    },
    /// Manticore's `Rebalancing completed for table <t>`.
    RebalanceCompleted {
        table: TableName,
    },
    /// Manticore's `Skipping rebalance for table <t>: …` and the like.
    RebalanceSkipped(String),
    /// A settled rebalance's steps on a node that came back failed.
    CleanupFailed {
        table: TableName,
        error: String,
    },
    Promoted {
        cluster: ClusterName,
        node: NodeId,
        down: Vec<NodeId>,
        /// Members that are up and no longer run it.
        left: Vec<NodeId>,
    },
    /// Nodes removed from the cluster for good left a table's placement,
    /// and the steps a rebalance kept for them were dropped.
    Forgotten {
        table: TableName,
        nodes: Vec<NodeId>,
    },
    /// The cleanup enqueued the removal of orphans (one line each).
    Orphans {
        group: GroupName,
        removes: Vec<String>,
    },
    /// A cleanup removed everything it was to remove.
    Cleaned {
        group: GroupName,
        removed: usize,
    },
    /// A cleanup step that could not run: the orphan stays until a later
    /// sweep finds it again.
    OrphanLeft {
        group: GroupName,
        node: NodeId,
        statement: String,
        error: String,
    },
    /// An operator's rebalance statement was carried out.
    Operator {
        table: TableName,
        what: String,
    },
}

impl Event {
    /// The table and operation group it is about (log fields).
    pub fn subject(&self) -> (Option<&TableName>, Option<&GroupName>) {
        match self {
            Event::Enqueued { table, group, .. }
            | Event::Done { table, group }
            | Event::Aborted { table, group, .. }
            | Event::RebalanceStarted { table, group, .. } => (Some(table), Some(group)),
            Event::RollingBack { group, .. }
            | Event::RollbackFailed { group }
            | Event::DiscardedStale { group, .. }
            | Event::DiscardedUncommitted { group }
            | Event::Orphans { group, .. }
            | Event::Cleaned { group, .. }
            | Event::OrphanLeft { group, .. } => (None, Some(group)),
            Event::Refused { table, .. }
            | Event::Waiting { table, .. }
            | Event::RebalanceCompleted { table }
            | Event::Operator { table, .. }
            | Event::CleanupFailed { table, .. }
            | Event::Forgotten { table, .. } => (Some(table), None),
            Event::TookOffice { .. }
            | Event::RebalanceDueToInactive(_)
            | Event::RebalanceSkipped(_)
            | Event::Promoted { .. } => (None, None),
        }
    }

    /// Whether operators should see it as a problem.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            Event::Aborted { .. }
                | Event::RollbackFailed { .. }
                | Event::DiscardedStale { .. }
                | Event::CleanupFailed { .. }
                | Event::OrphanLeft { .. }
        )
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::TookOffice {
                epoch,
                adopted,
                discarded,
            } => write!(
                f,
                "took office as sharding master (epoch {epoch}, {adopted} group(s) adopted, \
                 {discarded} uncommitted discarded)"
            ),
            Event::Enqueued { table, group, rows } => {
                write!(
                    f,
                    "operation enqueued: table {table}, group {group}, {rows} row(s)"
                )
            }
            Event::Done { table, group } => {
                write!(f, "operation done: table {table}, group {group}")
            }
            Event::Aborted {
                table,
                group,
                error,
            } => write!(
                f,
                "operation failed, undoing it: table {table}, group {group}: {error}"
            ),
            Event::RollingBack { group, steps } => {
                write!(f, "rolling back group {group}: {steps} step(s)")
            }
            Event::RollbackFailed { group } => write!(
                f,
                "rollback of group {group} failed; leftovers stay until an operator cleans them up"
            ),
            Event::DiscardedStale { group, epoch } => write!(
                f,
                "discarding group {group} of a stale master (epoch {epoch})"
            ),
            Event::DiscardedUncommitted { group } => {
                write!(
                    f,
                    "discarding rows of group {group}, which was never committed"
                )
            }
            Event::Refused { table, error } => {
                write!(f, "request for table {table} refused: {error}")
            }
            Event::Waiting {
                table,
                other,
                cluster,
            } => write!(
                f,
                "request for table {table} waits for the operation on table {other}, which works on \
                 replica set {cluster}"
            ),
            Event::RebalanceDueToInactive(_)
            | Event::RebalanceSkipped(_)
            | Event::RebalanceStarted { .. }
            | Event::CleanupFailed { .. }
            | Event::Operator { .. }
            | Event::RebalanceCompleted { .. }
            | Event::Promoted { .. } => self.fmt_rebalancing(f),
            Event::Orphans { group, removes } => write!(
                f,
                "cleanup {group} removes {} object(s) no metadata accounts for: {}",
                removes.len(),
                removes.join("; ")
            ),
            Event::Forgotten { table, nodes } => {
                let nodes: Vec<&str> = nodes.iter().map(NodeId::as_str).collect();
                write!(
                    f,
                    "table {table}: node(s) {} left the cluster for good; the steps kept for their return are dropped",
                    nodes.join(", ")
                )
            }
            Event::Cleaned { group, removed } => {
                write!(f, "cleanup {group} removed {removed} object(s)")
            }
            Event::OrphanLeft {
                group,
                node,
                statement,
                error,
            } => write!(
                f,
                "cleanup {group}: {statement} on node {node} did not run ({error}); the next sweep tries again"
            ),
        }
    }
}

impl Event {
    /// The Display text of the rebalancing events (rebalances, operator
    /// controls, promotions).
    fn fmt_rebalancing(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::RebalanceDueToInactive(line) | Event::RebalanceSkipped(line) => {
                f.write_str(line)
            }
            Event::RebalanceStarted {
                table,
                group,
                reason,
                copies,
            } => write!(
                f,
                "rebalancing table {table} ({reason}): group {group}, {copies} shard copies to make"
            ),
            Event::CleanupFailed { table, error } => write!(
                f,
                "after the rebalance of table {table}, the clean-up on a returned node failed and \
                 its leftovers stay there: {error}"
            ),
            Event::Operator { table, what } => write!(f, "table {table}: {what}"),
            Event::RebalanceCompleted { table } => {
                write!(f, "Rebalancing completed for table {table}")
            }
            Event::Promoted {
                cluster,
                node,
                down,
                left,
            } => {
                let list = |nodes: &[NodeId]| {
                    nodes
                        .iter()
                        .map(NodeId::as_str)
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut why = Vec::new();
                if !down.is_empty() || left.is_empty() {
                    why.push(format!("down: {}", list(down)));
                }
                if !left.is_empty() {
                    why.push(format!("no longer run by {}", list(left)));
                }
                write!(
                    f,
                    "made the surviving copies of replica set {cluster} writable again on {node} \
                     ({})",
                    why.join("; ")
                )
            }
            // Not reached (Display sends only the events above here); a
            // log line is never worth a panic.
            other => write!(f, "{other:?}"),
        }
    }
}
