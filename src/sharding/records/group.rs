//! Operation groups: every multi-step change (a CREATE, a DROP, a rollback)
//! is a group of queue rows plus one commit record in `system.sharding_state`
//! (`group:<name>`). Executors run a group's rows only while its record says
//! `committed` and carries the current master's epoch, so rows written by a
//! master that crashed before committing, or by a master that lost its lease,
//! never run.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::TransitionError;
use crate::ids::{NodeId, TableName};

/// A group's name: `<kind>_<table>_<first row id, hex>`, and
/// `<name>_rollback` for the group that undoes it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GroupName(String);

impl GroupName {
    /// The name of a new group of `kind` for `table` whose first row is
    /// `first_id` (unique: ids are never reused).
    pub fn new(kind: GroupKind, table: &TableName, first_id: u64) -> Self {
        let prefix = match kind {
            GroupKind::Create => "shard_create",
            GroupKind::Drop => "shard_drop",
            GroupKind::Rebalance => "rebalance",
            GroupKind::Rollback => "rollback",
            GroupKind::Cleanup => "cleanup",
        };
        Self(format!("{prefix}_{table}_{first_id:x}"))
    }

    /// The name of the group that undoes this one.
    pub fn rollback(&self) -> Self {
        Self(format!("{}_rollback", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for GroupName {
    fn from(raw: &str) -> Self {
        Self(raw.to_string())
    }
}

impl fmt::Display for GroupName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lifecycle of a group, written only by the master:
///
/// ```text
/// committed ──all rows processed──▶ done
///     │
///     └─row failed / deadline──▶ aborting ──in-flight rows settled──▶ rolling_back
///                                    │                                    │
///                                    │ (nothing to undo: purged)          ├─▶ (undone: purged)
///                                    ▼                                    └─▶ rollback_failed
/// ```
/// A rollback group is `committed` while it runs and `rollback_failed` when
/// a step of it failed for good; undone groups and their rollbacks are
/// purged, except rebalances: an undone rebalance ends `stopped` (an
/// operator stopped it) or `undone` (a step failed), and stays for
/// `SHOW REBALANCE STATUS`. A cleanup is never undone: it ends `done`, or,
/// when a step of it cannot run, is purged (the next sweep finds what is
/// left). A rebalance an operator stopped gracefully ends
/// `stopped` where it would have ended `done`. `stale` marks a group written
/// by a master whose lease had already passed to another node; its rows
/// never run.
///
/// A committed rebalance may also be *paused* (executors start none of its
/// rows) and carry a *stop request*; both are fields beside the status,
/// changed only through [`GroupRecord::pause`], [`GroupRecord::resume`] and
/// [`GroupRecord::request_stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupStatus {
    Committed,
    Aborting,
    RollingBack,
    Done,
    RollbackFailed,
    Stale,
    /// A rebalance an operator stopped: finished (graceful) or undone
    /// (immediate).
    Stopped,
    /// A rebalance whose step failed, undone.
    Undone,
}

impl GroupStatus {
    /// Whether the group can still change state.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            GroupStatus::Done
                | GroupStatus::RollbackFailed
                | GroupStatus::Stale
                | GroupStatus::Stopped
                | GroupStatus::Undone
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            GroupStatus::Committed => "committed",
            GroupStatus::Aborting => "aborting",
            GroupStatus::RollingBack => "rolling_back",
            GroupStatus::Done => "done",
            GroupStatus::RollbackFailed => "rollback_failed",
            GroupStatus::Stale => "stale",
            GroupStatus::Stopped => "stopped",
            GroupStatus::Undone => "undone",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupKind {
    Create,
    Drop,
    /// Moves a table's shard copies to a new placement.
    Rebalance,
    /// Undoes the processed steps of another group, in reverse order.
    Rollback,
    /// Removes objects no metadata accounts for (the master's cleanup).
    Cleanup,
}

/// The `group:<name>` state value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupRecord {
    pub status: GroupStatus,
    pub kind: GroupKind,
    pub table: TableName,
    /// Master epoch and node that own the group; executors compare them with
    /// the current lease.
    pub epoch: u64,
    pub master: NodeId,
    /// Wall clock of the master that started it, for people to read.
    pub started_at_ms: i64,
    /// The group is aborted when it is not done this long after its master
    /// started (or adopted) it, measured on that master's monotonic clock
    /// (CREATE's `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// For a rollback group: the group it undoes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undoes: Option<GroupName>,
    /// Why the group was aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall clock when it reached a final status, for people to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at_ms: Option<i64>,
    /// A rebalance's plan: where it leads and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rebalance: Option<RebalanceRecord>,
    /// A cleanup's objects, one line each, as `SHOW SHARDING HEALTH` and
    /// the log name them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removes: Vec<String>,
}

/// How `STOP REBALANCE` treats the group in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopKind {
    /// Let the group in flight finish, start no further rebalance.
    Graceful,
    /// Undo what the group did.
    Immediate,
}

impl StopKind {
    pub fn keyword(self) -> &'static str {
        match self {
            StopKind::Graceful => "GRACEFUL",
            StopKind::Immediate => "IMMEDIATE",
        }
    }
}

/// One replica change of a rebalance's plan, as the planner gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveRecord {
    pub shard: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<NodeId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<NodeId>,
    /// `node lost`, `node added`, `drain`, `balance`, `retire`.
    pub reason: String,
}

/// How far a rebalance has come, as its master measured it on its own
/// monotonic clock (readers on other hosts never compare clocks: they show
/// what the master wrote).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceProgress {
    /// Forward steps processed (never decreases).
    pub steps_done: u64,
    /// The estimated work of the processed steps (see
    /// [`RebalanceRecord::work_total`]; never decreases).
    #[serde(default)]
    pub work_done: u64,
    /// Moves whose copy is verified (or whose retired replica is dropped).
    #[serde(default)]
    pub moves_done: u64,
    /// What the first step not done yet does: `copying`, `verifying`,
    /// `routing`, `detaching`, `retiring`, `done`.
    #[serde(default)]
    pub phase: String,
    /// Time since the group started, across masters.
    pub elapsed_ms: u64,
    /// Of which not paused: throughput is measured over it.
    pub running_ms: u64,
    /// Remaining steps at the observed throughput; `None` before the first
    /// step is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_ms: Option<u64>,
}

/// What a rebalance group carries beyond its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebalanceRecord {
    /// The placement it leads to: each node with its shards (nodes that keep
    /// only the wrapper have none).
    pub target: Vec<(NodeId, Vec<u32>)>,
    /// Why it runs: `node lost`, `node added`, `nodes returned`, ….
    pub reason: String,
    /// Nodes that were down when it was planned: their steps run when they
    /// return and hold nothing else up.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<NodeId>,
    /// Every step on the other nodes is done and the target placement is
    /// committed; only the deferred nodes' steps may remain.
    #[serde(default)]
    pub settled: bool,
    /// Forward steps the group has.
    #[serde(default)]
    pub steps_total: u64,
    /// The work of all its steps, each weighted by what its kind costs on
    /// real searchd (a state transfer ~1 s, deleting a cluster ~5 s, a
    /// CREATE TABLE ~1 ms): progress and ETA are shares of it.
    #[serde(default)]
    pub work_total: u64,
    /// The planner's moves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<MoveRecord>,
    /// Shard copies the plan makes.
    #[serde(default)]
    pub copies: u64,
    #[serde(default)]
    pub progress: RebalanceProgress,
    /// Executors start none of its rows (rows running go on).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// An operator asked it to stop.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopKind>,
}

impl GroupRecord {
    /// A group that may run from now on.
    pub fn committed(
        kind: GroupKind,
        table: &TableName,
        epoch: u64,
        master: &NodeId,
        now_ms: i64,
    ) -> Self {
        Self {
            status: GroupStatus::Committed,
            kind,
            table: table.clone(),
            epoch,
            master: master.clone(),
            started_at_ms: now_ms,
            timeout_ms: None,
            undoes: None,
            error: None,
            finished_at_ms: None,
            rebalance: None,
            removes: Vec::new(),
        }
    }

    fn go(
        &mut self,
        allowed: &[GroupStatus],
        to: GroupStatus,
    ) -> Result<&mut Self, TransitionError> {
        if !allowed.contains(&self.status) {
            return Err(TransitionError {
                record: "operation group",
                from: self.status.name().to_string(),
                to: to.name(),
            });
        }
        self.status = to;
        Ok(self)
    }

    /// Every row was processed.
    pub fn complete(&mut self, now_ms: i64) -> Result<(), TransitionError> {
        self.go(&[GroupStatus::Committed], GroupStatus::Done)?
            .finished_at_ms = Some(now_ms);
        Ok(())
    }

    /// A row failed for good, or the deadline passed: stop, then undo.
    pub fn abort(&mut self, error: String) -> Result<(), TransitionError> {
        self.go(&[GroupStatus::Committed], GroupStatus::Aborting)?
            .error = Some(error);
        Ok(())
    }

    /// Its rollback group was written.
    pub fn roll_back(&mut self) -> Result<(), TransitionError> {
        self.go(&[GroupStatus::Aborting], GroupStatus::RollingBack)
            .map(drop)
    }

    /// A step of the rollback (of this group, or this rollback group itself)
    /// failed for good: leftovers stay for an operator.
    pub fn rollback_failed(&mut self, now_ms: i64) -> Result<(), TransitionError> {
        self.go(
            &[GroupStatus::RollingBack, GroupStatus::Committed],
            GroupStatus::RollbackFailed,
        )?
        .finished_at_ms = Some(now_ms);
        Ok(())
    }

    /// A committed rebalance whose steps on live nodes are all done: its
    /// placement takes effect; deferred steps may still run.
    pub fn settle(&mut self) -> Result<(), TransitionError> {
        match (&mut self.rebalance, self.status) {
            (Some(r), GroupStatus::Committed) if !r.settled => {
                r.settled = true;
                Ok(())
            }
            _ => Err(TransitionError {
                record: "operation group",
                from: self.status.name().to_string(),
                to: "settled",
            }),
        }
    }

    /// Whether it is a rebalance whose placement has taken effect.
    pub fn is_settled(&self) -> bool {
        self.rebalance.as_ref().is_some_and(|r| r.settled)
    }

    /// Written by a master that had already lost the lease: never runs.
    pub fn stale(&mut self, now_ms: i64) -> Result<(), TransitionError> {
        self.go(
            &[
                GroupStatus::Committed,
                GroupStatus::Aborting,
                GroupStatus::RollingBack,
            ],
            GroupStatus::Stale,
        )?
        .finished_at_ms = Some(now_ms);
        Ok(())
    }

    /// A new master takes the group over (its rows keep running under the
    /// new lease).
    pub fn adopt(&mut self, epoch: u64, master: &NodeId) -> Result<(), TransitionError> {
        if self.status.is_final() {
            return Err(TransitionError {
                record: "operation group",
                from: self.status.name().to_string(),
                to: "adopted",
            });
        }
        self.epoch = epoch;
        self.master = master.clone();
        Ok(())
    }

    /// An operator pauses a committed rebalance.
    pub fn pause(&mut self) -> Result<(), TransitionError> {
        self.operator_change(
            "paused",
            |r| !r.paused && r.stop.is_none(),
            |r| r.paused = true,
        )
    }

    /// An operator resumes a paused rebalance.
    pub fn resume(&mut self) -> Result<(), TransitionError> {
        self.operator_change("resumed", |r| r.paused, |r| r.paused = false)
    }

    /// An operator stops a committed rebalance; a paused one is resumed so
    /// that it can finish (graceful) or be undone (immediate).
    pub fn request_stop(&mut self, kind: StopKind) -> Result<(), TransitionError> {
        self.operator_change(
            "stopping",
            |r| r.stop.is_none(),
            |r| {
                r.paused = false;
                r.stop = Some(kind);
            },
        )
    }

    fn operator_change(
        &mut self,
        to: &'static str,
        allowed: impl Fn(&RebalanceRecord) -> bool,
        change: impl Fn(&mut RebalanceRecord),
    ) -> Result<(), TransitionError> {
        let from = self.operator_state();
        match (&mut self.rebalance, self.status) {
            (Some(r), GroupStatus::Committed) if allowed(r) => {
                change(r);
                Ok(())
            }
            _ => Err(TransitionError {
                record: "operation group",
                from: from.to_string(),
                to,
            }),
        }
    }

    /// The state an operator sees: `running`, `paused`, `stopping`, or the
    /// status's name.
    pub fn operator_state(&self) -> &'static str {
        let r = self.rebalance.as_ref();
        match self.status {
            GroupStatus::Committed | GroupStatus::Aborting | GroupStatus::RollingBack
                if r.is_some_and(|r| r.stop.is_some()) =>
            {
                "stopping"
            }
            GroupStatus::Committed if r.is_some_and(|r| r.paused) => "paused",
            GroupStatus::Committed => "running",
            other => other.name(),
        }
    }

    /// Whether executors may start its rows (not paused).
    pub fn is_paused(&self) -> bool {
        self.rebalance.as_ref().is_some_and(|r| r.paused)
    }

    /// The stop an operator asked for, if any.
    pub fn stop_requested(&self) -> Option<StopKind> {
        self.rebalance.as_ref().and_then(|r| r.stop)
    }

    /// A rebalance an operator stopped has ended: finished (graceful,
    /// from `committed`) or undone (from `rolling_back`, or `aborting` when
    /// nothing took effect).
    pub fn stopped(&mut self, now_ms: i64) -> Result<(), TransitionError> {
        if self.stop_requested().is_none() {
            return Err(TransitionError {
                record: "operation group",
                from: self.status.name().to_string(),
                to: "stopped",
            });
        }
        self.go(
            &[
                GroupStatus::Committed,
                GroupStatus::Aborting,
                GroupStatus::RollingBack,
            ],
            GroupStatus::Stopped,
        )?
        .finished_at_ms = Some(now_ms);
        Ok(())
    }

    /// A failed rebalance is undone (it stays for the status statement).
    pub fn undone(&mut self, now_ms: i64) -> Result<(), TransitionError> {
        self.go(
            &[GroupStatus::Aborting, GroupStatus::RollingBack],
            GroupStatus::Undone,
        )?
        .finished_at_ms = Some(now_ms);
        Ok(())
    }

    /// Whether the master of `epoch` on `node` owns it.
    pub fn owned_by(&self, epoch: u64, node: &NodeId) -> bool {
        self.epoch == epoch && self.master == *node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> GroupRecord {
        GroupRecord::committed(
            GroupKind::Create,
            &TableName::parse("t").unwrap(),
            3,
            &NodeId::new("127.0.0.1:1312"),
            10,
        )
    }

    #[test]
    fn records_round_trip_with_snake_case_statuses() {
        let mut rec = record();
        rec.abort("boom".into()).unwrap();
        rec.roll_back().unwrap();
        let json = serde_json::to_value(&rec).unwrap();
        assert_eq!(json["status"], "rolling_back");
        assert_eq!(json["kind"], "create");
        assert_eq!(json["table"], "t");
        assert!(json.get("undoes").is_none());
        assert_eq!(serde_json::from_value::<GroupRecord>(json).unwrap(), rec);
    }

    #[test]
    fn transitions_follow_the_lifecycle() {
        let mut done = record();
        done.complete(20).unwrap();
        assert_eq!(
            (done.status, done.finished_at_ms),
            (GroupStatus::Done, Some(20))
        );
        assert!(done.status.is_final());
        let err = done.abort("late".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "operation group: cannot go from 'done' to 'aborting'"
        );
        assert!(done.adopt(4, &NodeId::new("x")).is_err());

        let mut failing = record();
        assert!(failing.roll_back().is_err(), "not aborting yet");
        failing.abort("boom".into()).unwrap();
        assert!(failing.complete(1).is_err());
        failing.adopt(4, &NodeId::new("x")).unwrap();
        assert!(failing.owned_by(4, &NodeId::new("x")));
        failing.roll_back().unwrap();
        failing.rollback_failed(30).unwrap();
        assert_eq!(failing.status, GroupStatus::RollbackFailed);
        assert!(failing.stale(31).is_err());
    }

    #[test]
    fn names_are_built_in_one_place() {
        let t = TableName::parse("t").unwrap();
        let g = GroupName::new(GroupKind::Create, &t, 0x10000000001);
        assert_eq!(g.as_str(), "shard_create_t_10000000001");
        assert_eq!(g.rollback().as_str(), "shard_create_t_10000000001_rollback");
        assert_eq!(
            GroupName::new(GroupKind::Drop, &t, 255).as_str(),
            "shard_drop_t_ff"
        );
    }
}
