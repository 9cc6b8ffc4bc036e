//! Operators' rebalance statements, carried out by the master: `REBALANCE
//! TABLE` (plan and start now), `PAUSE`, `RESUME` and `STOP`. The node that
//! received the statement wrote a `rebalance:<t>` request; the master, the
//! only writer of group records, changes the group through its transition
//! functions and answers the request. Also measures each running
//! rebalance's progress on the master's monotonic clock.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::MasterEngine;
use crate::ids::{NodeId, TableName};
use crate::placement::{Action, Ddl, ShardTable};
use crate::protocol::{Column, ColumnType, ResultSet};
use crate::sharding::master::command::{Command, Event};
use crate::sharding::master::engine::EngineConfig;
use crate::sharding::master::rebalance::Verdict;
use crate::sharding::master::snapshot::Snapshot;
use crate::sharding::records::{
    ControlAction, ControlRequest, ControlStatus, GroupKind, GroupName, GroupRecord, GroupStatus,
    QueueRow, RebalanceProgress, Scope, StopKind, TableStatus,
};

/// Progress is written at least this often while it changes only in time.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// A running rebalance's clock on this master.
#[derive(Debug, Clone)]
pub(super) struct GroupClock {
    at: Instant,
    elapsed_ms: u64,
    running_ms: u64,
    written: Instant,
    /// When this office first saw each of its rows running.
    running_since: BTreeMap<u64, Instant>,
}

/// What the statement answers, or why it is refused; `None` = not yet.
type Outcome = Option<Result<ResultSet, String>>;

impl MasterEngine {
    /// Carries out every operator request not answered yet. Returns the
    /// group records it changed, which the rest of the step works on (and
    /// writes).
    pub(super) fn controls(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        out: &mut Vec<Command>,
    ) -> BTreeMap<GroupName, GroupRecord> {
        let mut changed = BTreeMap::new();
        for (table, request) in &snap.controls {
            if request.status != ControlStatus::Requested {
                continue;
            }
            let Some(outcome) = self.control(snap, config, table, request, &mut changed, out)
            else {
                continue;
            };
            let mut answered = request.clone();
            let (ok, what) = match outcome {
                Ok(set) => {
                    let value = serde_json::to_value(vec![set]).unwrap_or(Value::Null);
                    (answered.answer(value).is_ok(), statement(request.action))
                }
                Err(error) => {
                    let what = format!("{} refused: {error}", statement(request.action));
                    (answered.refuse(error).is_ok(), what)
                }
            };
            if ok {
                out.push(Command::PutControl(table.clone(), answered));
                out.push(Command::TableChanged);
                out.push(Command::Log(Event::Operator {
                    table: table.clone(),
                    what,
                }));
            }
        }
        changed
    }

    fn control(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        table: &TableName,
        request: &ControlRequest,
        changed: &mut BTreeMap<GroupName, GroupRecord>,
        out: &mut Vec<Command>,
    ) -> Outcome {
        if request.scope != snap.scope {
            return Some(Err(wrong_cluster(table, &snap.scope)));
        }
        let sharded = snap
            .tables
            .get(table)
            .is_some_and(|s| s.status == TableStatus::Done)
            && snap.placement.iter().any(|r| r.table == *table);
        if !sharded {
            return Some(Err(format!("table '{table}' is not a sharded table")));
        }
        let open = snap
            .groups
            .iter()
            .find(|(_, g)| g.table == *table && !g.status.is_final())
            .map(|(n, g)| (n.clone(), changed.get(n).unwrap_or(g).clone()));
        match request.action {
            ControlAction::Rebalance => self.rebalance_now(snap, config, table, open, out),
            ControlAction::Pause | ControlAction::Resume | ControlAction::Stop(_) => {
                let Some((name, mut rec)) = open.filter(|(_, g)| g.kind == GroupKind::Rebalance)
                else {
                    return Some(Err(format!("no rebalance of table '{table}' is running")));
                };
                let state = rec.operator_state();
                let result = match request.action {
                    ControlAction::Pause if rec.is_paused() => Err(format!(
                        "the rebalance of table '{table}' is already paused"
                    )),
                    ControlAction::Pause if rec.is_settled() => Err(format!(
                        "the rebalance of table '{table}' has committed its placement; only \
                         clean-up on nodes that were down is left, and it cannot be paused"
                    )),
                    ControlAction::Pause => rec.pause().map_err(|_| cannot(table, state, "paused")),
                    ControlAction::Resume if !rec.is_paused() => Err(format!(
                        "the rebalance of table '{table}' is not paused (it is {state})"
                    )),
                    ControlAction::Resume => {
                        rec.resume().map_err(|_| cannot(table, state, "resumed"))
                    }
                    ControlAction::Stop(_) if rec.stop_requested().is_some() => Err(format!(
                        "the rebalance of table '{table}' is already stopping"
                    )),
                    ControlAction::Stop(kind) => rec
                        .request_stop(kind)
                        .map_err(|_| cannot(table, state, "stopped")),
                    ControlAction::Rebalance => unreachable!("handled above"),
                };
                if let Err(e) = result {
                    return Some(Err(e));
                }
                out.push(Command::WakeExecutors);
                out.push(Command::StepAgain);
                let answer = control_answer(table, &name, &rec);
                changed.insert(name, rec);
                Some(Ok(answer))
            }
        }
    }

    /// `REBALANCE TABLE`: plans with the same function the automatic
    /// rebalancing uses and starts the group at once (no loss delay, no
    /// retry pause, and a table an operator stopped is released).
    fn rebalance_now(
        &mut self,
        snap: &Snapshot,
        _config: &EngineConfig,
        table: &TableName,
        open: Option<(GroupName, GroupRecord)>,
        out: &mut Vec<Command>,
    ) -> Outcome {
        if let Some((name, rec)) = open {
            return Some(Err(match rec.kind {
                GroupKind::Rebalance => format!(
                    "a rebalance of table '{table}' is already {} (group {name}); see SHOW \
                     REBALANCE STATUS",
                    rec.operator_state()
                ),
                _ => format!(
                    "table '{table}' has an operation under way (group {name}); try again when \
                     it is done"
                ),
            }));
        }
        let members = snap.members.as_ref()?;
        if !members.primary {
            return Some(Err(
                "the cluster has no primary component on this side: nothing can be moved".into(),
            ));
        }
        if snap.scope.cluster().is_none() {
            return Some(Err(format!(
                "table '{table}' is sharded on this node alone (not in a cluster): there is \
                 nowhere to move its shards"
            )));
        }
        let live = snap.live();
        if live.iter().any(|n| !snap.clusters.contains_key(n)) {
            return None;
        }
        if self.shares_a_cluster_in_flight(snap, table) {
            return None;
        }
        let rows = snap.placement_of(table);
        let state = snap.tables.get(table)?;
        let (group, verdict) =
            self.consider(snap, table, state, &rows, members, &snap.cluster_map());
        let rf = crate::sharding::records::placement::placement_of(&rows)
            .map_or(0, |p| p.max_replicas());
        let checks = format!(
            "table is sharded: ok; no operation of it under way: ok; primary component: ok; \
             live nodes: {} for RF={rf}: ok; every live node reported its clusters: ok",
            live.len()
        );
        match verdict {
            Verdict::Skip(why) => Some(Err(refusal(table, &why, &rows, members))),
            Verdict::Balanced => Some(Ok(Summary::default().answer(table, "balanced", &checks))),
            Verdict::Rebalance(planned) => {
                // A stop an operator made earlier no longer holds the table.
                for (name, g) in &snap.groups {
                    if g.table == *table && g.status == GroupStatus::Stopped {
                        out.push(Command::PurgeGroup(name.clone()));
                    }
                }
                let (reason, moves, copies, bound) = (
                    planned.reason,
                    planned.moves.len(),
                    planned.copies,
                    planned.lower_bound,
                );
                self.skips.remove(table);
                self.watchdog.cleared(table);
                self.started_now.insert(table.clone());
                let steps = self.start_rebalance(snap, table, &rows, group.clone(), *planned, out);
                let answer = Summary {
                    group: Some(&group),
                    moves,
                    copies,
                    lower_bound: bound,
                    steps,
                }
                .answer(table, reason, &checks);
                Some(Ok(answer))
            }
        }
    }

    /// Measures a committed rebalance: steps and moves done (never less
    /// than recorded), its phase, time elapsed and running, and the ETA
    /// from the throughput observed so far. Returns whether the record
    /// should be written now.
    pub(super) fn measure(
        &mut self,
        snap: &Snapshot,
        name: &GroupName,
        rec: &mut GroupRecord,
    ) -> bool {
        let paused = rec.is_paused();
        let Some(plan) = rec.rebalance.as_mut() else {
            return false;
        };
        let unfinished = snap.unfinished(name);
        // From when this office started or adopted the group.
        let since = self.groups_seen.get(name).copied().unwrap_or(snap.now);
        let clock = self
            .clocks
            .entry(name.clone())
            .or_insert_with(|| GroupClock {
                at: since,
                elapsed_ms: plan.progress.elapsed_ms,
                running_ms: plan.progress.running_ms,
                written: snap.now,
                running_since: BTreeMap::new(),
            });
        let dt = millis(snap.now.saturating_duration_since(clock.at));
        clock.at = snap.now;
        clock.elapsed_ms += dt;
        if !paused {
            clock.running_ms += dt;
        }
        let before = plan.progress.clone();
        let p = &mut plan.progress;
        let left = u64::try_from(unfinished.len()).unwrap_or(u64::MAX);
        p.steps_done = p.steps_done.max(plan.steps_total.saturating_sub(left));
        let moves_done = plan
            .moves
            .iter()
            .filter(|m| {
                move_done(
                    &rec.table,
                    m.shard,
                    m.to.as_ref(),
                    m.from.as_ref(),
                    unfinished,
                )
            })
            .count() as u64;
        p.moves_done = p.moves_done.max(moves_done);
        p.phase = phase(unfinished).to_string();
        p.elapsed_ms = clock.elapsed_ms;
        p.running_ms = clock.running_ms;
        // A step that is running has done part of its work: the time it has
        // run, counted at its nominal cost, up to 95 % of that cost (the
        // full cost once it is processed). Not every row is claimed before
        // it runs, so a row counts as running from when it became its node's
        // next row with nothing left to wait for.
        let credit = running_credit(clock, unfinished, paused, snap.now);
        let work_left: u64 = unfinished.iter().map(|r| step_cost(&r.action)).sum();
        let done = plan.work_total.saturating_sub(work_left) + credit;
        p.work_done = p.work_done.max(done.min(plan.work_total));
        // The weights are durations measured on real searchd; what a step
        // costs beyond its weight here (polling, hand-over between nodes, a
        // slower host) is observed: the running time not explained by the
        // work done, per step done. The ETA is the work left plus that
        // overhead for each step left.
        p.eta_ms = eta_ms(p, plan.steps_total, plan.work_total);
        let moved = p.steps_done != before.steps_done
            || p.moves_done != before.moves_done
            || p.phase != before.phase;
        let due = snap.now.saturating_duration_since(clock.written) >= PROGRESS_EVERY;
        if moved || due {
            clock.written = snap.now;
            true
        } else {
            false
        }
    }
}

/// The relative cost of a step, in ms of real searchd 29.2.2 with Galera
/// (`golden/facts.md` §7, §8; the simulator's `realistic` profile charges
/// the same): only the proportions matter, the rate is observed.
pub fn step_cost(action: &Action) -> u64 {
    match action {
        Action::Ddl(Ddl::JoinCluster { .. } | Ddl::JoinTempCluster { .. }) => 1_050,
        Action::Ddl(Ddl::DeleteCluster { .. }) => 5_300,
        Action::Ddl(Ddl::CreateCluster { .. }) => 55,
        Action::Ddl(Ddl::AlterClusterAdd { .. }) => 15,
        Action::Ddl(Ddl::AlterClusterDrop { .. } | Ddl::Bootstrap { .. }) => 10,
        // Counts rows and checksums ids on two nodes.
        Action::VerifyCopy { .. } => 20,
        Action::Noop => 1,
        _ => 2,
    }
}

/// The credit for the work of the rows running now: the time each has run
/// (as seen by this office), up to 95 % of its nominal cost. Forgets rows
/// that stopped running.
fn running_credit(
    clock: &mut GroupClock,
    unfinished: &[QueueRow],
    paused: bool,
    now: Instant,
) -> u64 {
    let waiting: BTreeSet<u64> = unfinished.iter().map(|r| r.id).collect();
    let mut next: BTreeMap<&NodeId, &QueueRow> = BTreeMap::new();
    for row in unfinished {
        let first = next.entry(&row.node).or_insert(row);
        if row.id < first.id {
            *first = row;
        }
    }
    let running: BTreeMap<u64, u64> = next
        .values()
        .filter(|r| !paused && !waiting.contains(&r.wait_for_id))
        .map(|r| (r.id, step_cost(&r.action)))
        .collect();
    clock.running_since.retain(|id, _| running.contains_key(id));
    let mut credit = 0u64;
    for (id, cost) in running {
        let since = *clock.running_since.entry(id).or_insert(now);
        let ran = millis(now.saturating_duration_since(since));
        credit += ran.min(cost * 95 / 100);
    }
    credit
}

/// The ETA: the work left plus the observed per-step overhead for each step
/// left; none before anything is done.
fn eta_ms(p: &RebalanceProgress, steps_total: u64, work_total: u64) -> Option<u64> {
    (p.steps_done > 0 || p.work_done > 0).then(|| {
        let steps = p.steps_done.max(1);
        let overhead = p.running_ms.saturating_sub(p.work_done) / steps;
        let steps_left = steps_total.saturating_sub(p.steps_done);
        work_total
            .saturating_sub(p.work_done)
            .saturating_add(steps_left.saturating_mul(overhead))
    })
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A move is done once its copy is verified on the new holder (a move that
/// only retires a replica: once that replica is dropped).
fn move_done(
    table: &TableName,
    shard: u32,
    to: Option<&crate::ids::NodeId>,
    from: Option<&crate::ids::NodeId>,
    unfinished: &[QueueRow],
) -> bool {
    let name = ShardTable::new(table, shard);
    let text = name.to_string();
    match (to, from) {
        (Some(to), _) => !unfinished.iter().any(|r| {
            r.node == *to && matches!(&r.action, Action::VerifyCopy { table, .. } if *table == text)
        }),
        (None, Some(from)) => !unfinished.iter().any(|r| {
            r.node == *from
                && matches!(&r.action, Action::Ddl(Ddl::DropShard { shard }) if *shard == name)
        }),
        (None, None) => true,
    }
}

/// What the first step not done yet does.
fn phase(unfinished: &[QueueRow]) -> &'static str {
    let Some(next) = unfinished.iter().min_by_key(|r| r.id) else {
        return "done";
    };
    match &next.action {
        Action::Ddl(Ddl::SwapWrapper { .. } | Ddl::CreateWrapper { .. }) => "routing",
        Action::Ddl(Ddl::AlterClusterDrop { .. } | Ddl::Bootstrap { .. }) => "detaching",
        Action::Ddl(
            Ddl::DropShard { .. } | Ddl::DeleteCluster { .. } | Ddl::DropWrapper { .. },
        ) => "retiring",
        Action::VerifyCopy { .. } => "verifying",
        _ => "copying",
    }
}

fn statement(action: ControlAction) -> String {
    match action {
        ControlAction::Rebalance => "REBALANCE TABLE".into(),
        ControlAction::Pause => "PAUSE REBALANCE".into(),
        ControlAction::Resume => "RESUME REBALANCE".into(),
        ControlAction::Stop(kind) => format!("STOP REBALANCE {}", kind.keyword()),
    }
}

fn cannot(table: &TableName, state: &str, to: &str) -> String {
    format!("the rebalance of table '{table}' is {state}: it cannot be {to}")
}

/// Why a request names another place than where sharded tables live here.
pub fn wrong_cluster(table: &TableName, bound: &Scope) -> String {
    match bound {
        Scope::Cluster(c) => format!(
            "table '{table}' is not sharded in that cluster: sharded tables of these nodes live \
             in cluster '{c}' (use {c}:{table})"
        ),
        Scope::Local => format!(
            "table '{table}' is not in a cluster: sharded tables of this node are local (use \
             {table})"
        ),
    }
}

/// A skip verdict as an answer to `REBALANCE TABLE`, saying what is
/// missing when live nodes are too few to keep RF.
fn refusal(
    table: &TableName,
    why: &str,
    rows: &[crate::sharding::records::PlacementRow],
    members: &crate::sharding::topology::Membership,
) -> String {
    let rf = crate::sharding::records::placement::placement_of(rows)
        .map(|p| p.max_replicas())
        .unwrap_or(0);
    let down: Vec<&str> = rows
        .iter()
        .map(|r| &r.node)
        .filter(|n| !members.active.contains(*n))
        .map(|n| n.as_str())
        .collect();
    if why.contains("RF=1 and nodes are inactive") {
        return format!(
            "cannot rebalance table '{table}': it has RF=1 and its shards on {} are not \
             reachable; bring that node back (nothing can be copied from it)",
            down.join(", ")
        );
    }
    if why.contains("active nodes") {
        let live = members.active.len();
        return format!(
            "cannot rebalance table '{table}': keeping RF={rf} needs {rf} live nodes, {live} \
             are live (down: {}); add or bring back {} node(s)",
            down.join(", "),
            rf.saturating_sub(live)
        );
    }
    let skipping = format!("Skipping rebalance for table {table}: ");
    format!(
        "cannot rebalance table '{table}': {}",
        why.strip_prefix(skipping.as_str()).unwrap_or(why)
    )
}

pub fn summary_columns() -> Vec<Column> {
    [
        ("table", ColumnType::String),
        ("group", ColumnType::String),
        ("reason", ColumnType::String),
        ("moves", ColumnType::LongLong),
        ("copies", ColumnType::LongLong),
        ("lower_bound", ColumnType::LongLong),
        ("steps", ColumnType::LongLong),
        ("checks", ColumnType::String),
    ]
    .into_iter()
    .map(|(n, t)| Column::new(n, t))
    .collect()
}

/// What a `REBALANCE TABLE` started (all zero when nothing moves).
#[derive(Default)]
struct Summary<'a> {
    group: Option<&'a GroupName>,
    moves: usize,
    copies: u64,
    lower_bound: u64,
    steps: usize,
}

impl Summary<'_> {
    /// The answer to `REBALANCE TABLE`: the plan's summary and the
    /// pre-flight checks it passed (a failed check refuses the statement
    /// with its reason).
    fn answer(&self, table: &TableName, reason: &str, checks: &str) -> ResultSet {
        let mut set = ResultSet::with_columns(summary_columns());
        set.push_row(vec![
            json!(table.as_str()),
            json!(self.group.map(GroupName::as_str).unwrap_or("")),
            json!(reason),
            json!(self.moves),
            json!(self.copies),
            json!(self.lower_bound),
            json!(self.steps),
            json!(checks),
        ]);
        set
    }
}

/// PAUSE / RESUME / STOP answer the group and the state it is in now.
fn control_answer(table: &TableName, name: &GroupName, rec: &GroupRecord) -> ResultSet {
    let mut set = ResultSet::with_columns(vec![
        Column::new("table", ColumnType::String),
        Column::new("group", ColumnType::String),
        Column::new("state", ColumnType::String),
    ]);
    let state = match rec.stop_requested() {
        Some(StopKind::Immediate) => "stopping (rolling back)",
        Some(StopKind::Graceful) => "stopping (finishing the group in flight)",
        None => rec.operator_state(),
    };
    set.push_row(vec![
        json!(table.as_str()),
        json!(name.as_str()),
        json!(state),
    ]);
    set
}
