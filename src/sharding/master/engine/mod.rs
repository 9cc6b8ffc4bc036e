//! The master's decisions, sans I/O: [`MasterEngine::step`] takes a
//! [`Snapshot`] and returns the [`Command`]s that move every request and
//! every operation group one step further. The engine remembers only what
//! belongs to its term of office: the epoch, the next queue id, and when (on
//! this master's monotonic clock) it first saw each request and group.
//!
//! A step:
//! 1. acts only while the lease is this office's;
//! 2. on the first step of a term, adopts the groups of earlier masters and
//!    stops there, so every later step sees them re-stamped;
//! 3. discards rows whose group was never committed (a master that stopped
//!    between writing rows and committing, or a write of its own that
//!    failed half-way);
//! 4. with the membership known: plans every waiting request whose
//!    requester is alive (see `liveness`; one whose plan would work on an
//!    internal cluster another table's operation holds waits, see
//!    `in_flight`), supervises every group it owns,
//!    discards groups of stale masters, and purges finished groups after the
//!    retention period.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::{Action, ClusterMap, Ddl, Step};
use crate::protocol::ResultSet;
use crate::sharding::config::RetryPolicy;
use crate::sharding::holdings::Orphan;
use crate::sharding::master::command::{Command, Event};
use crate::sharding::master::encode::encode_steps;
use crate::sharding::master::plan::{self, Planned};
use crate::sharding::master::progress::{self, Progress};
use crate::sharding::master::rebalance::Neighbours;
use crate::sharding::master::snapshot::{needs_planning, Snapshot};
use crate::sharding::records::placement::clusters_in_use;
use crate::sharding::records::table::RollbackOutcome;
use crate::sharding::records::{
    epoch_of, queue_id, seq_of, GroupKind, GroupName, GroupRecord, GroupStatus, OpKind, OpRequest,
    QueueRow, Scope, TableState, TableStatus,
};
use crate::sharding::wording;

mod cleanup;
mod in_flight;
mod liveness;
mod operator;
mod rebalancing;
mod watchdog;

pub use operator::{step_cost, summary_columns, wrong_cluster};

use in_flight::InFlight;
use liveness::{Liveness, Requester};
use watchdog::Watchdog;

/// What the engine's decisions depend on besides the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineConfig {
    pub retry: RetryPolicy,
    /// Finished groups are purged this long after this master saw them
    /// finished.
    pub retention: Duration,
    pub rebalance: RebalanceConfig,
    /// A shardbuddy process whose registration has not changed for this
    /// long is gone (the lease timeout).
    pub liveness: Duration,
}

/// When rebalances start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebalanceConfig {
    /// How long a lost node must stay lost before its tables are rebalanced
    /// (Elasticsearch's `delayed_timeout`); zero reacts at once.
    pub delay: Duration,
    /// Tables rebalanced at the same time.
    pub parallel: usize,
    /// How long after a failed rebalance of a table the next one may start.
    pub retry_after: Duration,
    /// Whether membership changes start rebalances by themselves (else only
    /// `REBALANCE TABLE` does).
    pub automatic: bool,
    /// Failed rebalances of a table in a row after which it is not tried
    /// again by itself.
    pub attempts: u32,
    /// How long a rebalance may make no progress, with nothing of it running,
    /// before it is undone as stalled.
    pub stall_after: Duration,
}

/// One term of office of the master.
#[derive(Debug)]
pub struct MasterEngine {
    epoch: u64,
    me: NodeId,
    next_seq: u64,
    adopted: bool,
    /// When this office first saw each request (by request id).
    requests_seen: BTreeMap<String, Instant>,
    /// When this office started, adopted or first saw each group.
    groups_seen: BTreeMap<GroupName, Instant>,
    /// When this office first saw each group finished.
    finished_seen: BTreeMap<GroupName, Instant>,
    /// The last skip reason logged per table (logged again only when it
    /// changes).
    skips: BTreeMap<TableName, String>,
    /// Failed and stalled rebalances (see `watchdog`).
    watchdog: Watchdog,
    /// Per table, the inactive holders last seen and since when.
    losses: BTreeMap<TableName, (Vec<NodeId>, Instant)>,
    /// When each internal cluster was last promoted.
    promoted: BTreeMap<ClusterName, Instant>,
    /// The internal clusters held by operations under way, this step.
    in_flight: InFlight,
    /// Requests whose wait for another table's operation was logged.
    waits_logged: BTreeSet<String>,
    /// Which shardbuddy processes are alive.
    liveness: Liveness,
    /// When this office first saw every row of each CREATE done.
    done_seen: BTreeMap<GroupName, Instant>,
    /// Each running rebalance's clock (elapsed, running) on this office.
    clocks: BTreeMap<GroupName, operator::GroupClock>,
    /// Tables whose rebalance an operator started in this step.
    started_now: BTreeSet<TableName>,
    /// Orphans the last sweep found (removed if the next finds them too).
    suspects: BTreeSet<Orphan>,
}

impl MasterEngine {
    /// A new term at `epoch`; ids continue after `max_queue_id`, the largest
    /// id in the queue.
    pub fn new(epoch: u64, me: NodeId, max_queue_id: u64) -> Self {
        let next_seq = if epoch_of(max_queue_id) == epoch {
            seq_of(max_queue_id) + 1
        } else {
            1
        };
        Self {
            epoch,
            me,
            next_seq,
            adopted: false,
            requests_seen: BTreeMap::new(),
            groups_seen: BTreeMap::new(),
            finished_seen: BTreeMap::new(),
            skips: BTreeMap::new(),
            watchdog: Watchdog::default(),
            losses: BTreeMap::new(),
            promoted: BTreeMap::new(),
            in_flight: InFlight::default(),
            waits_logged: BTreeSet::new(),
            liveness: Liveness::default(),
            done_seen: BTreeMap::new(),
            clocks: BTreeMap::new(),
            started_now: BTreeSet::new(),
            suspects: BTreeSet::new(),
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The id [`MasterEngine::next_id`] hands out next.
    fn peek_id(&self) -> u64 {
        queue_id(self.epoch, self.next_seq)
    }

    fn next_id(&mut self) -> u64 {
        let id = queue_id(self.epoch, self.next_seq);
        self.next_seq += 1;
        id
    }

    /// The commands that move everything one step further.
    pub fn step(&mut self, snap: &Snapshot, config: &EngineConfig) -> Vec<Command> {
        let ours = snap
            .lease
            .as_ref()
            .is_some_and(|l| l.epoch == self.epoch && l.node == self.me);
        // A group of a newer epoch means a newer master exists.
        if !ours || snap.groups.values().any(|g| g.epoch > self.epoch) {
            return Vec::new();
        }
        self.liveness.observe(&snap.registrations, snap.now);
        let mut out = Vec::new();
        let uncommitted = self.discard_uncommitted(snap, &mut out);
        if !self.adopted {
            self.adopt(snap, uncommitted, &mut out);
            return out;
        }
        if snap.members.is_none() {
            return out;
        }
        self.in_flight = InFlight::of(snap);
        for (table, state) in &snap.tables {
            if needs_planning(state, &snap.groups) {
                self.start(snap, config, table, state, &mut out);
            }
        }
        self.started_now.clear();
        let mut changed = self.controls(snap, config, &mut out);
        for (name, rec) in &snap.groups {
            if rec.kind == GroupKind::Rollback || rec.status.is_final() {
                continue;
            }
            if rec.owned_by(self.epoch, &self.me) {
                let (mut rec, mut dirty) = match changed.remove(name) {
                    Some(rec) => (rec, true),
                    None => (rec.clone(), false),
                };
                if rec.kind == GroupKind::Rebalance && rec.status == GroupStatus::Committed {
                    dirty |= self.measure(snap, name, &mut rec);
                }
                let before = out.len();
                self.supervise(snap, config, name, &rec, &mut out);
                let written = out[before..].iter().any(
                    |c| matches!(c, Command::PutGroup(n, _) | Command::PurgeGroup(n) if n == name),
                );
                if dirty && !written {
                    out.push(Command::PutGroup(name.clone(), rec));
                }
            } else {
                // Written by a master that lost the lease after this term
                // began: its rows never ran (executors hold them); re-plan.
                discard_stale(snap, name, rec, &mut out);
            }
        }
        self.promote(snap, &mut out);
        self.rebalance(snap, config, &mut out);
        self.purge(snap, config, &mut out);
        self.sweep(snap, &mut out);
        out
    }

    /// Rows whose group has no commit record never run: purge them.
    fn discard_uncommitted(&self, snap: &Snapshot, out: &mut Vec<Command>) -> usize {
        let mut count = 0;
        for group in snap.groups_with_rows() {
            if !snap.groups.contains_key(group) {
                out.push(Command::PurgeGroup(group.clone()));
                out.push(Command::Log(Event::DiscardedUncommitted {
                    group: group.clone(),
                }));
                count += 1;
            }
        }
        count
    }

    /// Takes over the committed groups of earlier masters, so their rows keep
    /// running under the new lease; their deadlines start now.
    fn adopt(&mut self, snap: &Snapshot, discarded: usize, out: &mut Vec<Command>) {
        let mut adopted = 0;
        for (name, rec) in &snap.groups {
            if rec.status.is_final() || rec.owned_by(self.epoch, &self.me) {
                continue;
            }
            let mut rec = rec.clone();
            if rec.adopt(self.epoch, &self.me).is_ok() {
                self.groups_seen.insert(name.clone(), snap.now);
                out.push(Command::PutGroup(name.clone(), rec));
                adopted += 1;
            }
        }
        self.adopted = true;
        out.push(Command::Log(Event::TookOffice {
            epoch: self.epoch,
            adopted,
            discarded,
        }));
        out.push(Command::StepAgain);
    }

    // ---- starting requested operations ------------------------------------------

    fn start(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        table: &TableName,
        state: &TableState,
        out: &mut Vec<Command>,
    ) {
        // A request waits while another operation on its table (a
        // rebalance, or the steps it left for a node that was down) runs.
        if snap.open_groups_of(table).next().is_some() {
            return;
        }
        let mut state = state.clone();
        if state.status == TableStatus::Processing {
            // Its master stopped between the table state and the commit (its
            // rows are discarded as uncommitted).
            if state.request_again().is_err() {
                return;
            }
            // That master also wrote the placement of the CREATE it planned
            // (a CREATE is only requested for a table that is not placed):
            // it goes, and is written again if the request is planned again
            // (found by the fault suite's storm: a discarded request left a
            // placement no node held).
            if state.kind == OpKind::Create {
                out.push(Command::DeletePlacement(table.clone()));
            }
        }
        let Some(request) = state.request.clone() else {
            let msg =
                format!("table '{table}': its request carries no details; run the statement again");
            return refuse(table, state, msg, out);
        };
        let seen = *self
            .requests_seen
            .entry(request.id.clone())
            .or_insert(snap.now);
        if snap.now.duration_since(seen) >= Duration::from_millis(request.timeout_ms) {
            return refuse(table, state, "Waiting timeout exceeded.".into(), out);
        }
        match self
            .liveness
            .requester(&request, seen, None, snap.now, config.liveness)
        {
            Requester::Alive => {}
            Requester::Unknown => return,
            Requester::Gone => return discard(table, state, &request, out),
        }
        if request.scope != snap.scope {
            let msg = wrong_scope(state.kind, table, &snap.scope);
            return refuse(table, state, msg, out);
        }
        let live = snap.live();
        // Plans need every live node's clusters; a node that did not report
        // is asked again at the next step.
        if live.iter().any(|n| !snap.clusters.contains_key(n)) {
            return;
        }
        let planned = match plan_request(snap, &live, table, &state, &request) {
            Ok(planned) => planned,
            Err(msg) => return refuse(table, state, msg, out),
        };
        // A cluster the plan needs is still being deleted by an earlier DROP:
        // planned again once it is gone (made anew then).
        if needs_a_cluster_being_deleted(snap, &planned.steps) {
            return;
        }
        let clusters = match &planned.placement {
            Some(rows) => clusters_in_use(rows),
            None => in_flight::clusters_of(&snap.cluster_map(), table, &snap.placement_of(table)),
        };
        if self.waits_for_another(table, &request, &clusters, out) {
            return;
        }
        self.in_flight.hold(table, clusters);
        self.enqueue(snap, table, state, planned, out);
    }

    /// Whether the operation of another table holds one of `clusters`, so
    /// that `request` waits (logged once per request).
    fn waits_for_another(
        &mut self,
        table: &TableName,
        request: &OpRequest,
        clusters: &BTreeSet<ClusterName>,
        out: &mut Vec<Command>,
    ) -> bool {
        let Some((other, cluster)) = self.in_flight.holder_of(table, clusters) else {
            self.waits_logged.remove(&request.id);
            return false;
        };
        if self.waits_logged.insert(request.id.clone()) {
            out.push(Command::Log(Event::Waiting {
                table: table.clone(),
                other,
                cluster,
            }));
        }
        true
    }

    /// Whether an operation of another table holds an internal cluster the
    /// shards of `table` are in.
    fn shares_a_cluster_in_flight(&self, snap: &Snapshot, table: &TableName) -> bool {
        let clusters =
            in_flight::clusters_of(&snap.cluster_map(), table, &snap.placement_of(table));
        self.in_flight.holder_of(table, &clusters).is_some()
    }

    /// Records that an operation of `table` starts on the clusters its
    /// shards are in.
    fn hold_clusters_of(&mut self, snap: &Snapshot, table: &TableName) {
        let clusters =
            in_flight::clusters_of(&snap.cluster_map(), table, &snap.placement_of(table));
        self.in_flight.hold(table, clusters);
    }

    /// Rows, table state, placement, and the commit record last: until it is
    /// written nothing runs, and a table left `processing` without it is
    /// planned again.
    fn enqueue(
        &mut self,
        snap: &Snapshot,
        table: &TableName,
        mut state: TableState,
        planned: Planned,
        out: &mut Vec<Command>,
    ) {
        let kind = match state.kind {
            OpKind::Create => GroupKind::Create,
            OpKind::Drop => GroupKind::Drop,
        };
        let first = self.next_id();
        let group = GroupName::new(kind, table, first);
        let rows = enqueue_group(self, &group, first, &planned.steps, snap.now_ms);
        let mut record = GroupRecord::committed(kind, table, self.epoch, &self.me, snap.now_ms);
        if kind == GroupKind::Create {
            record.timeout_ms = state.request.as_ref().map(|r| r.timeout_ms);
        }
        // PHP Buddy's `queue_ids`: the wrapper creations of a CREATE, every
        // row of a DROP.
        let queue_ids = rows
            .iter()
            .filter(|r| {
                kind == GroupKind::Drop
                    || matches!(r.action, Action::Ddl(Ddl::CreateWrapper { .. }))
            })
            .map(|r| r.id)
            .collect();
        if state
            .start(group.clone(), planned.nodes, queue_ids)
            .is_err()
        {
            return;
        }
        let count = rows.len();
        out.push(Command::Enqueue(rows));
        // The state before the placement: a master that stops after writing
        // the placement leaves the request `processing`, and the next one
        // removes that placement before planning or dropping the request
        // (a CREATE is only requested for a table that is not placed).
        out.push(Command::PutTable(table.clone(), state));
        if let Some(placement) = planned.placement {
            out.push(Command::ReplacePlacement(table.clone(), placement));
        }
        out.push(Command::PutGroup(group.clone(), record));
        out.push(Command::WakeExecutors);
        out.push(Command::TableChanged);
        out.push(Command::Log(Event::Enqueued {
            table: table.clone(),
            group: group.clone(),
            rows: count,
        }));
        self.groups_seen.insert(group, snap.now);
    }

    // ---- supervising groups ----------------------------------------------------------

    fn supervise(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        name: &GroupName,
        rec: &GroupRecord,
        out: &mut Vec<Command>,
    ) {
        match rec.status {
            GroupStatus::Committed if rec.kind == GroupKind::Rebalance => {
                self.rebalance_progress(snap, config, name, rec, out)
            }
            GroupStatus::Committed if rec.kind == GroupKind::Cleanup => {
                self.cleanup_progress(snap, config, name, rec, out)
            }
            GroupStatus::Committed => self.progress(snap, config, name, rec, out),
            GroupStatus::Aborting => self.plan_rollback(snap, name, rec, out),
            GroupStatus::RollingBack => rollback_progress(snap, config, name, rec, out),
            _ => {}
        }
    }

    fn progress(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        name: &GroupName,
        rec: &GroupRecord,
        out: &mut Vec<Command>,
    ) {
        let started = *self.groups_seen.entry(name.clone()).or_insert(snap.now);
        if rec.kind == GroupKind::Drop && only_cluster_deletions_left(snap.unfinished(name)) {
            // The table is gone from every node: its requester is answered
            // now, the clusters it leaves empty are deleted meanwhile (about
            // 5 s each on real searchd). A deletion that fails for good is
            // reported, not undone.
            answer_drop(snap, name, rec, out);
            return finish_cluster_deletions(snap, config, name, rec, out);
        }
        // DROP only moves forward: it is never timed out, only a final
        // failure stops it.
        let deadline_passed = rec.kind == GroupKind::Create
            && rec
                .timeout_ms
                .is_some_and(|t| snap.now.duration_since(started) >= Duration::from_millis(t));
        let assessed = progress::assess(snap.unfinished(name), &config.retry, deadline_passed);
        // A CREATE is done only once its requester was seen alive after all
        // its rows were, and undone when its requester is gone.
        let requester = match (rec.kind, &assessed) {
            (GroupKind::Create, Progress::Done) => {
                let done = *self.done_seen.entry(name.clone()).or_insert(snap.now);
                self.requester_of(snap, config, name, rec, started, Some(done))
            }
            (GroupKind::Create, _) => self.requester_of(snap, config, name, rec, started, None),
            _ => None,
        };
        if let Some((request, Requester::Gone)) = &requester {
            let error = wording::requester_gone(OpKind::Create, &rec.table, &request.by);
            self.done_seen.remove(name);
            return abort(name, rec, error, out);
        }
        match assessed {
            Progress::Running => {}
            Progress::Done if matches!(requester, Some((_, Requester::Unknown))) => {}
            Progress::Done => {
                self.done_seen.remove(name);
                complete(snap, name, rec, out)
            }
            Progress::TimedOut => abort(name, rec, "Waiting timeout exceeded.".into(), out),
            Progress::Failed { row, node } => {
                let error = snap.failures.get(&row).map_or_else(
                    || "a step failed without a recorded reason; see that node's searchd log for [BUDDY] lines".into(),
                    |f| wording::daemon_error(&f.error),
                );
                let verb = statement(rec.kind);
                let table = &rec.table;
                abort(
                    name,
                    rec,
                    format!("table '{table}': {verb} failed on node {node}: {error}"),
                    out,
                );
            }
        }
    }

    /// The request `name` carries out, and whether its requester is alive
    /// (after `after`, when given); `None` when the table's state is not
    /// this group's (an operation whose requester stopped waiting).
    fn requester_of(
        &self,
        snap: &Snapshot,
        config: &EngineConfig,
        name: &GroupName,
        rec: &GroupRecord,
        started: Instant,
        after: Option<Instant>,
    ) -> Option<(OpRequest, Requester)> {
        let request = snap
            .tables
            .get(&rec.table)
            .filter(|s| s.is_run_by(name))?
            .request
            .clone()?;
        let asked = self
            .requests_seen
            .get(&request.id)
            .copied()
            .unwrap_or(started);
        let status = self
            .liveness
            .requester(&request, asked, after, snap.now, config.liveness);
        Some((request, status))
    }

    /// Once no live node is still running a row of the aborted group, undo
    /// what took effect (or report at once when nothing did).
    fn plan_rollback(
        &mut self,
        snap: &Snapshot,
        name: &GroupName,
        rec: &GroupRecord,
        out: &mut Vec<Command>,
    ) {
        let live = snap.live();
        if !progress::settled(snap.unfinished(name), &live) {
            return;
        }
        let all_rows = snap.aborting.get(name).map_or(&[][..], Vec::as_slice);
        let undo = progress::to_undo(all_rows, &live);
        if undo.is_empty() {
            if rec.kind == GroupKind::Rebalance {
                return end_undone_rebalance(snap, name, rec, out);
            }
            // Nothing took effect: leave no trace, then report.
            out.push(Command::PurgeGroup(name.clone()));
            out.push(Command::PurgeGroup(name.rollback()));
            report_rollback(snap, name, rec, undone(false, true), out);
            return;
        }
        let rb_name = name.rollback();
        let rb_rows =
            progress::rollback_rows(&undo, &live, || self.next_id(), &rb_name, snap.now_ms);
        let mut rb = GroupRecord::committed(
            GroupKind::Rollback,
            &rec.table,
            self.epoch,
            &self.me,
            snap.now_ms,
        );
        rb.undoes = Some(name.clone());
        let mut rec = rec.clone();
        if rec.roll_back().is_err() {
            return;
        }
        let steps = rb_rows.len();
        out.push(Command::Enqueue(rb_rows));
        out.push(Command::PutGroup(rb_name, rb));
        out.push(Command::PutGroup(name.clone(), rec));
        out.push(Command::WakeExecutors);
        out.push(Command::Log(Event::RollingBack {
            group: name.clone(),
            steps,
        }));
    }

    // ---- retention -------------------------------------------------------------------

    /// Removes finished groups (rows, commit records, failure records) once
    /// this master has seen them finished for the retention period, with the
    /// leftover table state of a finished DROP or failed CREATE (normally its
    /// requester removes it).
    fn purge(&mut self, snap: &Snapshot, config: &EngineConfig, out: &mut Vec<Command>) {
        for (name, rec) in &snap.groups {
            if rec.status.is_final() {
                self.clocks.remove(name);
                self.watchdog.rest(name);
            }
            // A rebalance an operator stopped holds its table until the
            // next REBALANCE TABLE (or DROP) removes it.
            if rec.kind == GroupKind::Rollback
                || !rec.status.is_final()
                || rec.status == GroupStatus::Stopped
            {
                continue;
            }
            let seen = *self.finished_seen.entry(name.clone()).or_insert(snap.now);
            if snap.now.duration_since(seen) < config.retention {
                continue;
            }
            if let Some(state) = snap.tables.get(&rec.table) {
                let gone = (state.kind == OpKind::Drop && state.status == TableStatus::Done)
                    || (state.kind == OpKind::Create && state.status == TableStatus::Failed);
                if gone && state.operation_group.as_ref() == Some(name) {
                    out.push(Command::DeleteTable(rec.table.clone()));
                }
            }
            out.push(Command::PurgeGroup(name.clone()));
            out.push(Command::PurgeGroup(name.rollback()));
            self.finished_seen.remove(name);
        }
    }
}

/// The statement a group carries out, as users typed it.
fn statement(kind: GroupKind) -> &'static str {
    match kind {
        GroupKind::Create => "CREATE TABLE",
        GroupKind::Drop => "DROP TABLE",
        GroupKind::Rebalance => "the rebalance",
        GroupKind::Rollback => "the rollback",
        GroupKind::Cleanup => "the cleanup",
    }
}

/// Why a request names another place than where sharded tables live here.
fn wrong_scope(kind: OpKind, table: &TableName, bound: &Scope) -> String {
    let verb = match kind {
        OpKind::Create => "CREATE TABLE",
        OpKind::Drop => "DROP TABLE",
    };
    match bound {
        Scope::Cluster(c) => {
            format!("sharded tables of these nodes live in cluster '{c}': use {verb} {c}:{table}")
        }
        Scope::Local => {
            format!("sharded tables of this node are local, not in a cluster: use {verb} {table}")
        }
    }
}

/// A DROP whose requester was answered completes once its cluster
/// deletions are done, or failed for good (reported for an operator, not
/// undone).
fn finish_cluster_deletions(
    snap: &Snapshot,
    config: &EngineConfig,
    name: &GroupName,
    rec: &GroupRecord,
    out: &mut Vec<Command>,
) {
    let unfinished = snap.unfinished(name);
    if !unfinished.iter().all(|r| config.retry.is_final(r)) {
        return;
    }
    for row in unfinished {
        let error = snap
            .failures
            .get(&row.id)
            .map_or_else(|| "no reason recorded".to_string(), |f| f.error.clone());
        out.push(Command::Log(Event::CleanupFailed {
            table: rec.table.clone(),
            error: format!(
                "{} on node {} failed: {error}; run it there by hand",
                row.action.to_query_text(),
                row.node
            ),
        }));
    }
    complete(snap, name, rec, out);
}

/// The plan of a CREATE or DROP request on the `live` nodes, or why it is
/// refused.
fn plan_request(
    snap: &Snapshot,
    live: &BTreeSet<NodeId>,
    table: &TableName,
    state: &TableState,
    request: &OpRequest,
) -> Result<Planned, String> {
    let observed = snap.cluster_map();
    let neighbours = neighbours(snap, table, &observed);
    match state.kind {
        OpKind::Create => {
            let existing = neighbours
                .existing
                .intersection(&observed.names())
                .cloned()
                .collect();
            plan::create(live, &snap.drained, table, state, request, &existing)
        }
        OpKind::Drop => plan::drop(
            live,
            &snap.forgotten(),
            table,
            &snap.placement_of(table),
            &observed,
            &neighbours.in_use,
        ),
    }
}

/// The internal clusters that tables other than `table` use and keep using:
/// where the nodes report their placed shards, and the clusters running
/// rebalances still put shards into. A table whose DROP is requested still
/// counts: an operation that shares a cluster with it is planned either
/// before its DROP (which then keeps the cluster) or after the DROP has
/// finished (see `in_flight`).
fn neighbours(snap: &Snapshot, table: &TableName, observed: &ClusterMap) -> Neighbours {
    Neighbours::of(
        table,
        &snap.placement,
        observed,
        rebalancing::running_clusters(snap),
    )
}

/// The rows of `steps` for `group`, the first with the id `first` (already
/// taken, as the group's name carries it).
fn enqueue_group(
    engine: &mut MasterEngine,
    group: &GroupName,
    first: u64,
    steps: &[Step],
    now_ms: i64,
) -> Vec<QueueRow> {
    let mut first_id = Some(first);
    encode_steps(
        steps,
        group,
        || first_id.take().unwrap_or_else(|| engine.next_id()),
        now_ms,
    )
}

fn undone(executed: bool, success: bool) -> RollbackOutcome {
    RollbackOutcome { executed, success }
}

/// The requester of a request that was not planned yet is gone, and its
/// client has had searchd's own error: the request is dropped. A CREATE
/// leaves no trace; a DROP leaves the table as it was, its state failed
/// with the reason (as a DROP that failed does), for the next DROP.
fn discard(table: &TableName, state: TableState, request: &OpRequest, out: &mut Vec<Command>) {
    let error = wording::requester_gone(state.kind, table, &request.by);
    match state.kind {
        OpKind::Create => {
            out.push(Command::DeleteTable(table.clone()));
            out.push(Command::TableChanged);
            out.push(Command::Log(Event::Refused {
                table: table.clone(),
                error,
            }));
        }
        OpKind::Drop => refuse(table, state, error, out),
    }
}

/// The request cannot be carried out: its requester gets `error`.
fn refuse(table: &TableName, mut state: TableState, error: String, out: &mut Vec<Command>) {
    if state.fail(error.clone(), None).is_err() {
        return;
    }
    out.push(Command::PutTable(table.clone(), state));
    out.push(Command::TableChanged);
    out.push(Command::Log(Event::Refused {
        table: table.clone(),
        error,
    }));
}

/// Whether `steps` use a cluster that an unfinished row of some group
/// deletes.
fn needs_a_cluster_being_deleted(snap: &Snapshot, steps: &[Step]) -> bool {
    let deleting: BTreeSet<&ClusterName> = snap
        .unfinished
        .values()
        .flatten()
        .filter_map(|r| match &r.action {
            Action::Ddl(Ddl::DeleteCluster { cluster }) => Some(cluster),
            _ => None,
        })
        .collect();
    !deleting.is_empty()
        && steps.iter().any(|s| match &s.action {
            Action::Ddl(
                Ddl::CreateCluster { cluster, .. }
                | Ddl::JoinCluster { cluster, .. }
                | Ddl::AlterClusterAdd { cluster, .. },
            ) => deleting.contains(cluster),
            _ => false,
        })
}

/// Whether what is left of a group is deleting replication clusters.
fn only_cluster_deletions_left(unfinished: &[QueueRow]) -> bool {
    !unfinished.is_empty()
        && unfinished
            .iter()
            .all(|r| matches!(r.action, Action::Ddl(Ddl::DeleteCluster { .. })))
}

/// Answers the requester of a DROP whose table is gone everywhere (once).
fn answer_drop(snap: &Snapshot, name: &GroupName, rec: &GroupRecord, out: &mut Vec<Command>) {
    let Some(state) = snap
        .tables
        .get(&rec.table)
        .filter(|s| s.is_run_by(name) && s.status != TableStatus::Done)
    else {
        return;
    };
    let mut state = state.clone();
    let ok = serde_json::to_value(vec![ResultSet::ok()]).unwrap_or_default();
    if state.succeed(ok).is_ok() {
        out.push(Command::DeletePlacement(rec.table.clone()));
        out.push(Command::PutTable(rec.table.clone(), state));
        out.push(Command::TableChanged);
    }
}

fn complete(snap: &Snapshot, name: &GroupName, rec: &GroupRecord, out: &mut Vec<Command>) {
    let mut done = rec.clone();
    if done.complete(snap.now_ms).is_err() {
        return;
    }
    if rec.kind == GroupKind::Drop {
        // A dropped table leaves nothing behind: its placement, and the
        // finished operations that made and removed it (this one included).
        out.push(Command::DeletePlacement(rec.table.clone()));
        let finished = snap.groups.iter().filter(|(g, r)| {
            *g != name
                && r.table == rec.table
                && r.kind != GroupKind::Rollback
                && r.status.is_final()
        });
        for g in finished.map(|(g, _)| g).chain([name]) {
            out.push(Command::PurgeGroup(g.clone()));
            out.push(Command::PurgeGroup(g.rollback()));
        }
    }
    // The statement's outcome is written before the group's final record:
    // a master that stops between the two leaves a committed group, which
    // the next one completes again. The other way round, a final group
    // would leave the request `processing` for good (found by the fault
    // suite's storm).
    if let Some(state) = snap.tables.get(&rec.table).filter(|s| s.is_run_by(name)) {
        let mut state = state.clone();
        let ok = serde_json::to_value(vec![ResultSet::ok()]).unwrap_or_default();
        if state.succeed(ok).is_ok() {
            out.push(Command::PutTable(rec.table.clone(), state));
            out.push(Command::TableChanged);
        }
    }
    if rec.kind != GroupKind::Drop {
        out.push(Command::PutGroup(name.clone(), done));
    }
    out.push(Command::Log(Event::Done {
        table: rec.table.clone(),
        group: name.clone(),
    }));
}

fn abort(name: &GroupName, rec: &GroupRecord, error: String, out: &mut Vec<Command>) {
    let mut rec = rec.clone();
    if rec.abort(error.clone()).is_err() {
        return;
    }
    let table = rec.table.clone();
    out.push(Command::PutGroup(name.clone(), rec));
    out.push(Command::StepAgain);
    out.push(Command::Log(Event::Aborted {
        table,
        group: name.clone(),
        error,
    }));
}

/// Watches the rollback group of `name`. The statement gets its answer once
/// the live nodes are clean; rollbacks on dead nodes run when they return.
fn rollback_progress(
    snap: &Snapshot,
    config: &EngineConfig,
    name: &GroupName,
    rec: &GroupRecord,
    out: &mut Vec<Command>,
) {
    let rb_name = name.rollback();
    let rb_rows = snap.unfinished(&rb_name);
    let live = snap.live();
    let failed = rb_rows.iter().any(|r| config.retry.is_final(r));
    let live_done = !rb_rows.iter().any(|r| live.contains(&r.node));
    let all_done = rb_rows.is_empty();
    if !(failed || all_done || live_done) {
        return;
    }
    if all_done && rec.kind == GroupKind::Rebalance {
        return end_undone_rebalance(snap, name, rec, out);
    }
    if all_done {
        // Undone everywhere: a failed CREATE leaves no trace.
        out.push(Command::PurgeGroup(name.clone()));
        out.push(Command::PurgeGroup(rb_name.clone()));
    }
    report_rollback(snap, name, rec, undone(true, !failed), out);
    if all_done || !failed {
        return;
    }
    out.push(Command::Log(Event::RollbackFailed {
        group: name.clone(),
    }));
    for (g, r) in [(name, Some(rec)), (&rb_name, snap.groups.get(&rb_name))] {
        if let Some(mut r) = r.cloned() {
            if r.rollback_failed(snap.now_ms).is_ok() {
                out.push(Command::PutGroup(g.clone(), r));
            }
        }
    }
}

/// Reports the outcome of the aborted group `name` to its table's state
/// (once: only while the state still waits for this group).
fn report_rollback(
    snap: &Snapshot,
    name: &GroupName,
    rec: &GroupRecord,
    outcome: RollbackOutcome,
    out: &mut Vec<Command>,
) {
    let Some(state) = snap.tables.get(&rec.table).filter(|s| s.is_run_by(name)) else {
        return;
    };
    let mut state = state.clone();
    if state.kind == OpKind::Create {
        out.push(Command::DeletePlacement(rec.table.clone()));
    }
    let error = rec
        .error
        .clone()
        .unwrap_or_else(|| "operation failed".into());
    if state.fail(error, Some(outcome)).is_ok() {
        out.push(Command::PutTable(rec.table.clone(), state));
        out.push(Command::TableChanged);
    }
}

/// A rebalance undone everywhere ends `stopped` (an operator stopped it) or
/// `undone` (a step failed): its rows and its rollback's go, its record
/// stays for `SHOW REBALANCE STATUS` (and, stopped, holds the table).
fn end_undone_rebalance(
    snap: &Snapshot,
    name: &GroupName,
    rec: &GroupRecord,
    out: &mut Vec<Command>,
) {
    let mut ended = rec.clone();
    let ok = if ended.stop_requested().is_some() {
        ended.stopped(snap.now_ms)
    } else {
        ended.undone(snap.now_ms)
    };
    if ok.is_err() {
        return;
    }
    out.push(Command::PurgeGroup(name.clone()));
    out.push(Command::PurgeGroup(name.rollback()));
    out.push(Command::PutGroup(name.clone(), ended));
    out.push(Command::Log(Event::Operator {
        table: rec.table.clone(),
        what: format!("rebalance {name} undone, the placement is as before it"),
    }));
}

fn discard_stale(snap: &Snapshot, name: &GroupName, rec: &GroupRecord, out: &mut Vec<Command>) {
    let mut stale = rec.clone();
    if stale.stale(snap.now_ms).is_err() {
        return;
    }
    out.push(Command::PutGroup(name.clone(), stale));
    out.push(Command::Log(Event::DiscardedStale {
        group: name.clone(),
        epoch: rec.epoch,
    }));
    if let Some(state) = snap.tables.get(&rec.table).filter(|s| s.is_run_by(name)) {
        let mut again = state.clone();
        if again.request_again().is_ok() {
            out.push(Command::PutTable(rec.table.clone(), again));
            out.push(Command::StepAgain);
        }
    }
}
