//! The master engine in virtual time: every path the end-to-end tests take
//! (create, drop, timeout, failed step → rollback, stale epoch, takeover,
//! purge), each asserting the exact commands. A small in-memory world applies
//! the commands and plays the executors, so scenarios run step by step.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::command::{Command, Event};
use super::engine::{EngineConfig, MasterEngine};
use super::snapshot::Snapshot;
use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::Action;
use crate::protocol::ResultSet;
use crate::sharding::config::RetryPolicy;
use crate::sharding::daemon::ClusterReport;
use crate::sharding::holdings::Holdings;
use crate::sharding::records::table::RollbackOutcome;
use crate::sharding::records::{
    queue_id, GroupKind, GroupName, GroupRecord, GroupStatus, Lease, OpKind, OpRequest,
    PlacementRow, QueueRow, QueueStatus, Registration, RowFailure, Scope, TableState, TableStatus,
};
use crate::sharding::topology::Membership;

/// Quick retries, no rebalance delay: the engine tests' settings.
pub(super) const CONFIG: EngineConfig = EngineConfig {
    retry: RetryPolicy {
        max_tries: 2,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    },
    retention: Duration::from_secs(600),
    rebalance: crate::sharding::master::engine::RebalanceConfig {
        delay: Duration::ZERO,
        parallel: 2,
        retry_after: Duration::from_secs(30),
        automatic: true,
        attempts: 5,
        stall_after: Duration::from_secs(600),
    },
    liveness: Duration::from_secs(5),
};

fn id(s: &str) -> NodeId {
    NodeId::new(s)
}

fn table() -> TableName {
    TableName::parse("t").unwrap()
}

/// The metadata as the engine's commands leave it, the membership, and a
/// virtual clock.
struct World {
    t0: Instant,
    elapsed: Duration,
    lease: Option<Lease>,
    scope: Scope,
    members: Option<Membership>,
    tables: BTreeMap<TableName, TableState>,
    groups: BTreeMap<GroupName, GroupRecord>,
    rows: BTreeMap<u64, QueueRow>,
    failures: BTreeMap<u64, RowFailure>,
    placement: Vec<PlacementRow>,
    registered: BTreeSet<NodeId>,
    registrations: BTreeMap<NodeId, Registration>,
    /// What each node reports of its replication clusters (live nodes
    /// without an entry run none).
    clusters: BTreeMap<NodeId, Vec<ClusterReport>>,
    controls: BTreeMap<TableName, crate::sharding::records::ControlRequest>,
    drained: BTreeSet<NodeId>,
    /// What each node holds, when the round sweeps for orphans.
    holdings: Option<BTreeMap<NodeId, Holdings>>,
    woken: Vec<&'static str>,
    bootstrapped: Vec<(NodeId, ClusterName)>,
}

impl World {
    /// Nodes `live` in `scope`, with `master` holding the lease at `epoch`.
    fn new(scope: Scope, live: &[&str], master: &str, epoch: u64) -> Self {
        let active: BTreeSet<NodeId> = live.iter().map(|n| id(n)).collect();
        Self {
            t0: Instant::now(),
            elapsed: Duration::ZERO,
            lease: Some(Lease {
                node: id(master),
                epoch,
                beat: 3,
            }),
            scope,
            members: Some(Membership {
                all: active.clone(),
                active,
                primary: true,
            }),
            tables: BTreeMap::new(),
            groups: BTreeMap::new(),
            rows: BTreeMap::new(),
            failures: BTreeMap::new(),
            placement: Vec::new(),
            registered: live.iter().map(|n| id(n)).collect(),
            registrations: BTreeMap::new(),
            clusters: BTreeMap::new(),
            controls: BTreeMap::new(),
            drained: BTreeSet::new(),
            holdings: None,
            woken: Vec::new(),
            bootstrapped: Vec::new(),
        }
    }

    fn request(&mut self, kind: OpKind, shards: u32, rf: u32, timeout_ms: u64) {
        let request = OpRequest {
            id: format!("req-{}", self.tables.len()),
            by: id("n1"),
            at_ms: 0,
            timeout_ms,
            scope: self.scope.clone(),
            shards,
            rf,
            instance: None,
        };
        let state = TableState::requested(kind, request, "id bigint".into(), String::new());
        self.tables.insert(table(), state);
    }

    fn snapshot(&self) -> Snapshot {
        let mut unfinished: BTreeMap<GroupName, Vec<QueueRow>> = BTreeMap::new();
        for row in self
            .rows
            .values()
            .filter(|r| r.status != QueueStatus::Processed)
        {
            unfinished
                .entry(row.group.clone())
                .or_default()
                .push(row.clone());
        }
        let aborting = self
            .groups
            .iter()
            .filter(|(_, g)| g.status == GroupStatus::Aborting)
            .map(|(name, _)| {
                let rows = self.rows.values().filter(|r| r.group == *name).cloned();
                (name.clone(), rows.collect())
            })
            .collect();
        Snapshot {
            now: self.t0 + self.elapsed,
            now_ms: 1_000 + i64::try_from(self.elapsed.as_millis()).unwrap(),
            lease: self.lease.clone(),
            scope: self.scope.clone(),
            members: self.members.clone(),
            tables: self.tables.clone(),
            groups: self.groups.clone(),
            unfinished,
            aborting,
            failures: self.failures.clone(),
            placement: self.placement.clone(),
            registered: self.registered.clone(),
            registrations: self.registrations.clone(),
            clusters: self
                .members
                .iter()
                .flat_map(|m| m.active.iter())
                .map(|n| (n.clone(), self.clusters.get(n).cloned().unwrap_or_default()))
                .collect(),
            controls: self.controls.clone(),
            drained: self.drained.clone(),
            holdings: self.holdings.clone(),
        }
    }

    /// One engine step, applied; returns the commands.
    fn step(&mut self, engine: &mut MasterEngine) -> Vec<Command> {
        let commands = engine.step(&self.snapshot(), &CONFIG);
        for command in &commands {
            self.apply(command.clone());
        }
        commands
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Enqueue(rows) => self.rows.extend(rows.into_iter().map(|r| (r.id, r))),
            Command::ReplacePlacement(t, rows) => {
                self.placement.retain(|r| r.table != t);
                self.placement.extend(rows);
            }
            Command::DeletePlacement(t) => self.placement.retain(|r| r.table != t),
            Command::PutTable(t, state) => {
                self.tables.insert(t, state);
            }
            Command::DeleteTable(t) => {
                self.tables.remove(&t);
            }
            Command::PutGroup(name, rec) => {
                self.groups.insert(name, rec);
            }
            Command::PutControl(t, request) => {
                self.controls.insert(t, request);
            }
            Command::PurgeGroup(name) => {
                self.rows.retain(|_, r| r.group != name);
                self.groups.remove(&name);
            }
            Command::WakeExecutors => self.woken.push("executors"),
            Command::TableChanged => self.woken.push("waiters"),
            Command::StepAgain => self.woken.push("master"),
            Command::Bootstrap { node, cluster } => self.bootstrapped.push((node, cluster)),
            Command::Log(_) => {}
        }
    }

    /// The executors run every runnable row of `group`, in id order.
    fn run_group(&mut self, group: &GroupName) {
        for row in self.rows.values_mut().filter(|r| r.group == *group) {
            row.status = QueueStatus::Processed;
            row.tries += 1;
        }
    }

    /// The executors run the first `n` rows of `group`.
    fn run_first(&mut self, group: &GroupName, n: usize) {
        for row in self.rows.values_mut().filter(|r| r.group == *group).take(n) {
            row.status = QueueStatus::Processed;
            row.tries = 1;
        }
    }

    /// The row `nth` of `group` fails for good.
    fn fail_row(&mut self, group: &GroupName, nth: usize, error: &str) -> u64 {
        let row = self
            .rows
            .values_mut()
            .filter(|r| r.group == *group)
            .nth(nth)
            .expect("such a row");
        row.status = QueueStatus::Error;
        row.tries = CONFIG.retry.max_tries;
        self.failures.insert(
            row.id,
            RowFailure {
                node: row.node.clone(),
                query: row.action.to_query_text(),
                error: error.into(),
                tries: row.tries,
                at_ms: 0,
            },
        );
        row.id
    }

    fn group_named(&self, kind: GroupKind) -> GroupName {
        self.groups
            .iter()
            .find(|(_, g)| g.kind == kind)
            .map(|(n, _)| n.clone())
            .expect("a group of that kind")
    }
}

/// An engine past its first (adopting) step.
fn engine_in_office(world: &mut World, epoch: u64, me: &str) -> MasterEngine {
    let mut engine = MasterEngine::new(epoch, id(me), 0);
    let first = world.step(&mut engine);
    assert_eq!(
        first,
        vec![
            Command::Log(Event::TookOffice {
                epoch,
                adopted: 0,
                discarded: 0
            }),
            Command::StepAgain
        ]
    );
    engine
}

/// A local CREATE of `t` with `shards` shards on `n1`, planned by the
/// master of epoch 1: the world, the engine, and the CREATE's group.
fn local_create_planned(shards: u32, timeout_ms: u64) -> (World, MasterEngine, GroupName) {
    let mut world = World::new(Scope::Local, &["n1"], "n1", 1);
    world.request(OpKind::Create, shards, 1, timeout_ms);
    let mut engine = engine_in_office(&mut world, 1, "n1");
    world.step(&mut engine);
    let group = world.group_named(GroupKind::Create);
    (world, engine, group)
}

/// Each row's shape with its rollback.
fn texts(rows: &[QueueRow]) -> Vec<(u64, &str, String, u64, Option<String>)> {
    crate::sharding::testing::shapes(rows)
        .into_iter()
        .zip(rows)
        .map(|((id, node, sql, wait), r)| {
            (
                id,
                node,
                sql,
                wait,
                r.rollback.as_ref().map(Action::to_query_text),
            )
        })
        .collect()
}

/// The table state as a failed (and undone) operation leaves it.
fn failed(world: &World, error: &str, executed: bool, success: bool) -> TableState {
    let mut state = world.tables[&table()].clone();
    let outcome = RollbackOutcome { executed, success };
    state.fail(error.into(), Some(outcome)).unwrap();
    state
}

fn ok_result() -> serde_json::Value {
    serde_json::to_value(vec![ResultSet::ok()]).unwrap()
}

/// The rows of a local CREATE of `t (id bigint)` with 2 shards.
fn local_create_rows() -> Vec<(u64, &'static str, String, u64, Option<String>)> {
    let shard = |n: u64| {
        (
            queue_id(1, n + 1),
            "n1",
            format!("CREATE TABLE IF NOT EXISTS system.t_s{n} (id bigint) "),
            0,
            Some(format!("DROP TABLE IF EXISTS system.t_s{n}")),
        )
    };
    let wrapper = "CREATE TABLE `t` (id bigint)\n\t\t\ttype='shard' local='system.t_s0' local='system.t_s1'  ";
    vec![
        shard(0),
        shard(1),
        (
            queue_id(1, 3),
            "n1",
            wrapper.to_string(),
            0,
            Some("DROP TABLE IF EXISTS t OPTION force=1".to_string()),
        ),
    ]
}

#[test]
fn a_create_is_enqueued_committed_last_and_completed() {
    let mut world = World::new(Scope::Local, &["n1"], "n1", 1);
    world.request(OpKind::Create, 2, 1, 30_000);
    let mut engine = engine_in_office(&mut world, 1, "n1");

    let commands = world.step(&mut engine);
    let group = GroupName::from("shard_create_t_10000000001");
    let Command::Enqueue(rows) = &commands[0] else {
        panic!("rows first: {commands:?}")
    };
    assert_eq!(texts(rows), local_create_rows());
    let mut processing = world.tables[&table()].clone();
    assert_eq!(processing.status, TableStatus::Processing);
    assert_eq!(processing.queue_ids, vec![queue_id(1, 3)]);
    let mut record = GroupRecord::committed(GroupKind::Create, &table(), 1, &id("n1"), 1_000);
    record.timeout_ms = Some(30_000);
    assert_eq!(
        commands[1..],
        vec![
            Command::PutTable(table(), processing.clone()),
            Command::ReplacePlacement(
                table(),
                vec![PlacementRow {
                    scope: Scope::Local,
                    node: id("n1"),
                    table: table(),
                    shards: vec![0, 1],
                }]
            ),
            Command::PutGroup(group.clone(), record.clone()),
            Command::WakeExecutors,
            Command::TableChanged,
            Command::Log(Event::Enqueued {
                table: table(),
                group: group.clone(),
                rows: 3
            }),
        ]
    );

    // Nothing to do while rows run.
    assert_eq!(world.step(&mut engine), vec![]);
    world.run_group(&group);
    record.complete(1_000).unwrap();
    processing.succeed(ok_result()).unwrap();
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::PutTable(table(), processing),
            Command::TableChanged,
            Command::PutGroup(group.clone(), record),
            Command::Log(Event::Done {
                table: table(),
                group
            }),
        ]
    );
}

/// Found by the fault suite's storm: a master killed between writing a
/// CREATE's final group record and its outcome left the request
/// `processing` for good (its waiting client timed out although the table
/// was made, and every later CREATE or DROP of it was refused as in
/// progress). Now the outcome goes first; a master stopped before the group
/// record leaves a committed group that the next master completes.
#[test]
fn storm_defect_a_master_stopped_while_completing_a_create_leaves_no_request_stuck() {
    let (mut world, mut old, group) = local_create_planned(1, 30_000);
    world.run_group(&group);
    let completing = old.step(&world.snapshot(), &CONFIG);
    // The master dies right after the first of the two final writes.
    let first = completing
        .iter()
        .position(|c| matches!(c, Command::PutTable(..) | Command::PutGroup(..)))
        .expect("the outcome is written");
    for command in completing.into_iter().take(first + 1) {
        world.apply(command);
    }

    world.lease = Some(Lease {
        node: id("n1"),
        epoch: 2,
        beat: 0,
    });
    let mut engine = MasterEngine::new(2, id("n1"), queue_id(1, 9));
    world.step(&mut engine);
    world.step(&mut engine);
    assert_eq!(world.tables[&table()].status, TableStatus::Done);
    assert_eq!(world.groups[&group].status, GroupStatus::Done);
}

#[test]
fn a_drop_removes_placement_and_every_finished_operation() {
    let (mut world, mut engine, create) = local_create_planned(1, 30_000);
    world.run_group(&create);
    world.step(&mut engine);
    // The requester of the CREATE has read its outcome and forgotten it.
    world.tables.clear();

    world.request(OpKind::Drop, 0, 0, 30_000);
    let commands = world.step(&mut engine);
    let drop = GroupName::from("shard_drop_t_10000000003");
    let Command::Enqueue(rows) = &commands[0] else {
        panic!("rows first: {commands:?}")
    };
    assert_eq!(
        texts(rows),
        vec![
            (
                queue_id(1, 3),
                "n1",
                "DROP TABLE IF EXISTS t OPTION force=1".to_string(),
                0,
                None
            ),
            (
                queue_id(1, 4),
                "n1",
                "DROP TABLE IF EXISTS system.t_s0".to_string(),
                0,
                None
            ),
        ]
    );
    assert!(
        !commands
            .iter()
            .any(|c| matches!(c, Command::ReplacePlacement(..))),
        "a DROP keeps the placement until it is done"
    );
    let mut state = world.tables[&table()].clone();
    assert_eq!(state.queue_ids, vec![queue_id(1, 3), queue_id(1, 4)]);

    world.run_group(&drop);
    state.succeed(ok_result()).unwrap();
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::DeletePlacement(table()),
            Command::PurgeGroup(create.clone()),
            Command::PurgeGroup(create.rollback()),
            Command::PurgeGroup(drop.clone()),
            Command::PurgeGroup(drop.rollback()),
            Command::PutTable(table(), state),
            Command::TableChanged,
            Command::Log(Event::Done {
                table: table(),
                group: drop
            }),
        ]
    );
    assert!(world.groups.is_empty() && world.rows.is_empty() && world.placement.is_empty());
}

/// The rollback of a 1-shard RF 2 CREATE on `a:1`, `b:1` that made and
/// joined its cluster and the shard: undone newest first, on the node that
/// ran each step, in one chain.
fn assert_undoes_the_cluster_and_shard(commands: &[Command]) {
    let Command::Enqueue(rows) = &commands[0] else {
        panic!("rollback rows first: {commands:?}")
    };
    let undo: Vec<(&str, String, u64)> = rows
        .iter()
        .map(|r| (r.node.as_str(), r.action.to_query_text(), r.wait_for_id))
        .collect();
    let internal = crate::placement::internal_cluster_name(&[id("a:1"), id("b:1")]);
    assert_eq!(
        undo,
        vec![
            ("a:1", "DROP TABLE IF EXISTS system.t_s0".to_string(), 0),
            ("b:1", format!("DELETE CLUSTER {internal}"), rows[0].id),
            ("a:1", format!("DELETE CLUSTER {internal}"), rows[1].id),
        ]
    );
}

#[test]
fn a_create_past_its_timeout_is_undone_newest_first_then_reported() {
    let c = ClusterName::parse("c").unwrap();
    let mut world = World::new(Scope::Cluster(c), &["a:1", "b:1"], "a:1", 1);
    world.request(OpKind::Create, 1, 2, 5_000);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    world.step(&mut engine);
    let group = world.group_named(GroupKind::Create);
    // The cluster is made and joined, then nothing more happens.
    world.run_first(&group, 3);
    world.elapsed = Duration::from_millis(4_999);
    assert_eq!(
        world.step(&mut engine),
        vec![],
        "the deadline has not passed"
    );

    world.elapsed = Duration::from_millis(5_000);
    let mut aborting = world.groups[&group].clone();
    aborting.abort("Waiting timeout exceeded.".into()).unwrap();
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::PutGroup(group.clone(), aborting.clone()),
            Command::StepAgain,
            Command::Log(Event::Aborted {
                table: table(),
                group: group.clone(),
                error: "Waiting timeout exceeded.".into()
            }),
        ]
    );

    let commands = world.step(&mut engine);
    let rb = group.rollback();
    assert_undoes_the_cluster_and_shard(&commands);
    let mut rolling = aborting.clone();
    rolling.roll_back().unwrap();
    let mut rb_record = GroupRecord::committed(GroupKind::Rollback, &table(), 1, &id("a:1"), 6_000);
    rb_record.undoes = Some(group.clone());
    assert_eq!(
        commands[1..],
        vec![
            Command::PutGroup(rb.clone(), rb_record),
            Command::PutGroup(group.clone(), rolling),
            Command::WakeExecutors,
            Command::Log(Event::RollingBack {
                group: group.clone(),
                steps: 3
            }),
        ]
    );

    world.run_group(&rb);
    let failed = failed(&world, "Waiting timeout exceeded.", true, true);
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::PurgeGroup(group.clone()),
            Command::PurgeGroup(rb),
            Command::DeletePlacement(table()),
            Command::PutTable(table(), failed),
            Command::TableChanged,
        ]
    );
    assert!(world.groups.is_empty() && world.rows.is_empty() && world.placement.is_empty());
}

#[test]
fn a_failed_step_aborts_with_its_error_and_node_and_nothing_done_is_reported_at_once() {
    let (mut world, mut engine, group) = local_create_planned(1, 30_000);
    world.fail_row(&group, 0, "unknown column type 'varchar'");
    let error =
        "table 't': CREATE TABLE failed on node n1: unknown column type 'varchar'".to_string();
    let mut aborting = world.groups[&group].clone();
    aborting.abort(error.clone()).unwrap();
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::PutGroup(group.clone(), aborting),
            Command::StepAgain,
            Command::Log(Event::Aborted {
                table: table(),
                group: group.clone(),
                error: error.clone()
            }),
        ]
    );
    // The failed row never took effect and nothing else ran: no rollback rows.
    let failed = failed(&world, &error, false, true);
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::PurgeGroup(group.clone()),
            Command::PurgeGroup(group.rollback()),
            Command::DeletePlacement(table()),
            Command::PutTable(table(), failed),
            Command::TableChanged,
        ]
    );
}

#[test]
fn an_aborted_group_waits_for_rows_still_running_on_live_nodes() {
    let (mut world, mut engine, group) = local_create_planned(2, 30_000);
    world.fail_row(&group, 0, "boom");
    world.step(&mut engine);
    let second = world.rows.values_mut().nth(1).unwrap();
    second.status = QueueStatus::Processing;
    assert_eq!(
        world.step(&mut engine),
        vec![],
        "a live node still runs a row"
    );
    world.rows.values_mut().nth(1).unwrap().status = QueueStatus::Processed;
    let commands = world.step(&mut engine);
    assert!(matches!(&commands[0], Command::Enqueue(rows) if rows.len() == 1));
}

#[test]
fn a_failed_rollback_is_reported_and_recorded_for_an_operator() {
    let (mut world, mut engine, group) = local_create_planned(1, 30_000);
    world.run_first(&group, 1);
    world.fail_row(&group, 1, "boom");
    world.step(&mut engine);
    world.step(&mut engine);
    let rb = group.rollback();
    world.fail_row(&rb, 0, "cannot drop");
    let failed = failed(
        &world,
        "table 't': CREATE TABLE failed on node n1: boom",
        true,
        false,
    );
    let (mut group_rec, mut rb_rec) = (world.groups[&group].clone(), world.groups[&rb].clone());
    group_rec.rollback_failed(1_000).unwrap();
    rb_rec.rollback_failed(1_000).unwrap();
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::DeletePlacement(table()),
            Command::PutTable(table(), failed),
            Command::TableChanged,
            Command::Log(Event::RollbackFailed {
                group: group.clone()
            }),
            Command::PutGroup(group, group_rec),
            Command::PutGroup(rb, rb_rec),
        ]
    );
}

#[test]
fn a_new_master_adopts_committed_groups_and_discards_uncommitted_rows() {
    let (mut world, mut old, group) = local_create_planned(1, 30_000);
    // Rows of another group whose master died before committing it.
    let orphan = GroupName::from("shard_create_u_10000000009");
    world.rows.insert(
        queue_id(1, 9),
        QueueRow::fresh(queue_id(1, 9), id("n1"), Action::Noop, None, 0, &orphan, 0),
    );

    world.lease = Some(Lease {
        node: id("n1"),
        epoch: 2,
        beat: 0,
    });
    assert_eq!(world.step(&mut old), vec![], "the old term is over");
    let mut engine = MasterEngine::new(2, id("n1"), queue_id(1, 9));
    let mut adopted = world.groups[&group].clone();
    adopted.adopt(2, &id("n1")).unwrap();
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::PurgeGroup(orphan.clone()),
            Command::Log(Event::DiscardedUncommitted { group: orphan }),
            Command::PutGroup(group.clone(), adopted),
            Command::Log(Event::TookOffice {
                epoch: 2,
                adopted: 1,
                discarded: 1
            }),
            Command::StepAgain,
        ]
    );
    // The adopted group completes under the new term; new ids start at epoch 2.
    world.run_group(&group);
    let commands = world.step(&mut engine);
    assert!(
        commands.iter().any(
            |c| matches!(c, Command::PutGroup(g, r) if *g == group && r.status == GroupStatus::Done)
        ),
        "{commands:?}"
    );
}

#[test]
fn a_group_of_a_stale_master_is_discarded_and_its_request_planned_again() {
    let mut world = World::new(Scope::Local, &["n1", "n2"], "n2", 2);
    world.request(OpKind::Create, 1, 1, 30_000);
    let mut engine = engine_in_office(&mut world, 2, "n2");
    // Meanwhile the old master (epoch 1), unaware it was replaced, commits.
    let stale_group = GroupName::from("shard_create_t_10000000001");
    let mut state = world.tables[&table()].clone();
    state.start(stale_group.clone(), vec![], vec![]).unwrap();
    world.tables.insert(table(), state.clone());
    world.groups.insert(
        stale_group.clone(),
        GroupRecord::committed(GroupKind::Create, &table(), 1, &id("n1"), 0),
    );
    let mut stale = world.groups[&stale_group].clone();
    stale.stale(1_000).unwrap();
    state.request_again().unwrap();
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::PutGroup(stale_group.clone(), stale),
            Command::Log(Event::DiscardedStale {
                group: stale_group,
                epoch: 1
            }),
            Command::PutTable(table(), state),
            Command::StepAgain,
        ]
    );
    let commands = world.step(&mut engine);
    assert!(
        matches!(&commands[0], Command::Enqueue(rows) if rows[0].id == queue_id(2, 1)),
        "planned again by the current master: {commands:?}"
    );
}

#[test]
fn finished_groups_are_purged_after_the_retention_period_on_this_masters_clock() {
    let (mut world, mut engine, group) = local_create_planned(1, 30_000);
    world.run_group(&group);
    world.step(&mut engine);
    world.elapsed = Duration::from_secs(1);
    assert_eq!(world.step(&mut engine), vec![], "first seen finished now");
    world.elapsed = Duration::from_secs(600);
    assert_eq!(world.step(&mut engine), vec![]);
    world.elapsed = Duration::from_secs(601);
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::PurgeGroup(group.clone()),
            Command::PurgeGroup(group.rollback()),
        ]
    );
}

#[test]
fn requests_that_cannot_be_planned_are_refused_with_the_reason() {
    let c = ClusterName::parse("c").unwrap();
    let cases = [
        (
            Scope::Cluster(c.clone()),
            3,
            "The node count (2) is lower than replication factor (3)",
        ),
        (
            Scope::Cluster(ClusterName::parse("d").unwrap()),
            1,
            "sharded tables of these nodes live in cluster 'c': use CREATE TABLE c:t",
        ),
    ];
    for (scope, rf, error) in cases {
        let mut world = World::new(Scope::Cluster(c.clone()), &["a:1", "b:1"], "a:1", 1);
        world.request(OpKind::Create, 1, rf, 30_000);
        world
            .tables
            .get_mut(&table())
            .unwrap()
            .request
            .as_mut()
            .unwrap()
            .scope = scope;
        let mut engine = engine_in_office(&mut world, 1, "a:1");
        let mut failed = world.tables[&table()].clone();
        failed.fail(error.into(), None).unwrap();
        assert_eq!(
            world.step(&mut engine),
            vec![
                Command::PutTable(table(), failed),
                Command::TableChanged,
                Command::Log(Event::Refused {
                    table: table(),
                    error: error.into()
                }),
            ],
            "{error}"
        );
    }
}

#[test]
fn a_request_whose_commit_keeps_failing_is_refused_at_its_timeout() {
    let mut world = World::new(Scope::Local, &["n1"], "n1", 1);
    world.request(OpKind::Create, 1, 1, 5_000);
    let mut engine = engine_in_office(&mut world, 1, "n1");
    world.step(&mut engine);
    // The commit record never got written.
    let group = world.group_named(GroupKind::Create);
    world.groups.clear();
    world.elapsed = Duration::from_secs(5);
    let mut failed = world.tables[&table()].clone();
    failed.request_again().unwrap();
    failed
        .fail("Waiting timeout exceeded.".into(), None)
        .unwrap();
    assert_eq!(
        world.step(&mut engine),
        vec![
            Command::PurgeGroup(group.clone()),
            Command::Log(Event::DiscardedUncommitted { group }),
            // The placement the uncommitted CREATE wrote goes too.
            Command::DeletePlacement(table()),
            Command::PutTable(table(), failed),
            Command::TableChanged,
            Command::Log(Event::Refused {
                table: table(),
                error: "Waiting timeout exceeded.".into()
            }),
        ]
    );
}

#[test]
fn nothing_happens_without_the_lease_or_with_a_newer_master_around() {
    let mut world = World::new(Scope::Local, &["n1"], "n1", 1);
    world.request(OpKind::Create, 1, 1, 30_000);
    let mut engine = engine_in_office(&mut world, 1, "n1");
    world.lease = None;
    assert_eq!(world.step(&mut engine), vec![]);
    world.lease = Some(Lease {
        node: id("n2"),
        epoch: 1,
        beat: 0,
    });
    assert_eq!(world.step(&mut engine), vec![]);
    world.lease = Some(Lease {
        node: id("n1"),
        epoch: 1,
        beat: 9,
    });
    world.groups.insert(
        GroupName::from("newer"),
        GroupRecord::committed(GroupKind::Create, &table(), 2, &id("n2"), 0),
    );
    assert_eq!(world.step(&mut engine), vec![]);
    world.groups.clear();
    world.members = None;
    assert_eq!(
        world.step(&mut engine),
        vec![],
        "no planning while the membership is unknown"
    );
}

// ---- rebalancing ---------------------------------------------------------------

/// `name` as `node` reports it: its status, members and tables.
fn report(name: &str, status: &str, members: &[&str], tables: &[&str]) -> ClusterReport {
    ClusterReport {
        name: ClusterName::parse(name).unwrap(),
        status: status.into(),
        nodes_set: members.iter().map(|n| id(n)).collect(),
        tables: tables.iter().map(|t| t.to_string()).collect(),
    }
}

/// Cluster `c` on `a:1`, `b:1` (live) and `c:1` (down); `t` is done with
/// shard 0 on `a:1`+`b:1` and shard 1 on `a:1`+`c:1`, each in the cluster
/// CREATE made for its replica set, as the live nodes report.
fn world_after_losing_c() -> World {
    let c = ClusterName::parse("c").unwrap();
    let scope = Scope::Cluster(c);
    let mut world = World::new(scope.clone(), &["a:1", "b:1"], "a:1", 1);
    world.members.as_mut().unwrap().all.insert(id("c:1"));
    world.request(OpKind::Create, 2, 2, 30_000);
    let state = world.tables.get_mut(&table()).unwrap();
    state
        .start(GroupName::from("shard_create_t_1"), vec![], vec![])
        .unwrap();
    state.succeed(ok_result()).unwrap();
    for (node, shards) in [("a:1", vec![0, 1]), ("b:1", vec![0]), ("c:1", vec![1])] {
        world.placement.push(PlacementRow {
            scope: scope.clone(),
            node: id(node),
            table: table(),
            shards,
        });
    }
    let ab = crate::placement::internal_cluster_name(&[id("a:1"), id("b:1")]);
    let ac = crate::placement::internal_cluster_name(&[id("a:1"), id("c:1")]);
    world.clusters.insert(
        id("a:1"),
        vec![
            report(ab.as_str(), "primary", &["a:1", "b:1"], &["system.t_s0"]),
            report(
                ac.as_str(),
                "non-primary",
                &["a:1", "c:1"],
                &["system.t_s1"],
            ),
        ],
    );
    world.clusters.insert(
        id("b:1"),
        vec![report(
            ab.as_str(),
            "primary",
            &["a:1", "b:1"],
            &["system.t_s0"],
        )],
    );
    world
}

fn bootstraps(commands: &[Command]) -> Vec<(&str, &str)> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Bootstrap { node, cluster } => Some((node.as_str(), cluster.as_str())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_replica_set_that_lost_half_its_members_is_promoted_on_one_survivor() {
    let mut world = world_after_losing_c();
    // Two more sets on a:1: one whose down members are a majority (never
    // promoted: they may be a primary component elsewhere), and the user's
    // cluster (not a replica set).
    world.clusters.get_mut(&id("a:1")).unwrap().extend([
        report("minority", "non-primary", &["a:1", "c:1", "d:1"], &[]),
        report("c", "non-primary", &["a:1", "b:1", "c:1"], &[]),
    ]);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    let ac = crate::placement::internal_cluster_name(&[id("a:1"), id("c:1")]);
    let commands = world.step(&mut engine);
    assert_eq!(bootstraps(&commands), vec![("a:1", ac.as_str())]);
    // Not again while the statement may still be on its way; again when
    // the set still reports non-primary two seconds later.
    world.elapsed = Duration::from_millis(1_999);
    assert!(bootstraps(&world.step(&mut engine)).is_empty());
    world.elapsed = Duration::from_millis(2_000);
    assert_eq!(
        bootstraps(&world.step(&mut engine)),
        vec![("a:1", ac.as_str())]
    );
}

/// A node back after the other members of a replica set deleted it (a DROP
/// emptied it meanwhile) holds it alone, non-primary, for good: it is made
/// writable there, so the node's own steps can detach and delete it. A set
/// a live member still runs, or one whose member did not report, is not.
#[test]
fn a_replica_set_its_other_members_deleted_is_promoted_on_the_node_that_still_holds_it() {
    let c = ClusterName::parse("c").unwrap();
    let mut world = World::new(Scope::Cluster(c), &["a:1", "b:1", "c:1"], "a:1", 1);
    world.clusters.insert(
        id("a:1"),
        vec![
            report("gone", "non-primary", &["a:1", "b:1"], &["system.t_s0"]),
            report("shared", "non-primary", &["a:1", "c:1"], &["system.u_s0"]),
        ],
    );
    world.clusters.insert(id("b:1"), vec![]);
    world.clusters.insert(
        id("c:1"),
        vec![report(
            "shared",
            "primary",
            &["a:1", "c:1"],
            &["system.u_s0"],
        )],
    );
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    let commands = world.step(&mut engine);
    assert_eq!(bootstraps(&commands), vec![("a:1", "gone")]);
    assert!(commands.contains(&Command::Log(Event::Promoted {
        cluster: ClusterName::parse("gone").unwrap(),
        node: id("a:1"),
        down: vec![],
        left: vec![id("b:1")],
    })));
    assert_eq!(
        Event::Promoted {
            cluster: ClusterName::parse("gone").unwrap(),
            node: id("a:1"),
            down: vec![],
            left: vec![id("b:1")],
        }
        .to_string(),
        "made the surviving copies of replica set gone writable again on a:1 (no longer run by b:1)"
    );
}

#[test]
fn a_lost_copy_is_rebuilt_in_a_cluster_of_the_rebalances_own() {
    let mut world = world_after_losing_c();
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    let commands = world.step(&mut engine);
    let group = world.group_named(GroupKind::Rebalance);
    assert!(
        commands.contains(&Command::Log(Event::RebalanceDueToInactive(
            "Rebalancing due to inactive nodes: c:1".into()
        )))
    );
    let rows: Vec<QueueRow> = world
        .rows
        .values()
        .filter(|r| r.group == group)
        .cloned()
        .collect();
    let sql: Vec<(&str, String)> = rows
        .iter()
        .map(|r| (r.node.as_str(), r.action.to_query_text()))
        .collect();
    let ab = crate::placement::internal_cluster_name(&[id("a:1"), id("b:1")]);
    let ac = crate::placement::internal_cluster_name(&[id("a:1"), id("c:1")]);
    let fresh = crate::placement::names::fresh_cluster_name(
        group.as_str(),
        &[id("a:1"), id("b:1")],
        &id("a:1"),
    );
    let has = |node: &str, text: &str| sql.iter().any(|(n, s)| *n == node && s == text);
    // Shard 1 leaves the cluster its donor reports it in, goes into a new
    // cluster on its donor, and b:1 joins that cluster: the join ships it.
    assert!(has("a:1", &format!("ALTER CLUSTER {ac} DROP system.t_s1")));
    assert!(has(
        "a:1",
        &format!("CREATE CLUSTER IF NOT EXISTS {fresh} '{fresh}' as path")
    ));
    assert!(has(
        "a:1",
        &format!("ALTER CLUSTER {fresh} ADD system.t_s1")
    ));
    assert!(has(
        "b:1",
        &format!("JOIN CLUSTER {fresh} at 'a:1' '{fresh}' as path")
    ));
    assert!(has("b:1", "SHARDBUDDY VERIFY COPY system.t_s1 MATCH 'a:1'"));
    // Nothing is added to a cluster that has other members, and the
    // cluster the shard left is deleted once empty; shard 0's stays.
    assert!(!sql
        .iter()
        .any(|(_, s)| s.starts_with(&format!("ALTER CLUSTER {ab} ADD"))));
    assert!(has("a:1", &format!("DELETE CLUSTER {ac}")));
    assert!(!sql
        .iter()
        .any(|(_, s)| *s == format!("DELETE CLUSTER {ab}")));
}

#[test]
fn a_rebalance_writes_its_placement_before_it_is_recorded_settled() {
    let mut world = world_after_losing_c();
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    world.step(&mut engine);
    let group = world.group_named(GroupKind::Rebalance);
    world.run_group(&group);
    let commands = world.step(&mut engine);
    let placed = commands
        .iter()
        .position(|c| matches!(c, Command::ReplacePlacement(t, _) if *t == table()))
        .expect("the new placement is written");
    let settled = commands
        .iter()
        .position(|c| {
            matches!(c, Command::PutGroup(g, rec)
                if *g == group && rec.rebalance.as_ref().is_some_and(|r| r.settled))
        })
        .expect("the group is settled");
    // A master that stops between the two leaves a group its successor
    // settles again, never a settled group with the old placement.
    assert!(placed < settled, "{commands:?}");
}

#[test]
fn no_rebalance_is_planned_while_a_holder_has_not_reported_its_clusters() {
    let mut world = world_after_losing_c();
    world.clusters.remove(&id("b:1"));
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    let mut snapshot = world.snapshot();
    snapshot.clusters.remove(&id("b:1"));
    let commands = engine.step(&snapshot, &CONFIG);
    assert!(
        commands.contains(&Command::Log(Event::RebalanceSkipped(
            "Skipping rebalance for table t: node b:1 did not report its replication clusters; \
             trying again"
                .into()
        ))),
        "{commands:?}"
    );
    assert!(!commands.iter().any(|c| matches!(c, Command::Enqueue(_))));
}

/// A DROP deletes the cluster named after its replica set once it empties
/// it, even while another table has shards on the same nodes: a rebalance
/// moved those into a cluster of another name, as the nodes report. While
/// the nodes have not reported, that cluster may be the other table's: kept.
#[test]
fn a_drop_deletes_the_set_named_cluster_that_another_table_on_those_nodes_left() {
    let ab = crate::placement::internal_cluster_name(&[id("a:1"), id("b:1")]);
    let drop_queries = |reported: bool| -> Vec<String> {
        let mut world = world_after_losing_c();
        world.placement.retain(|r| r.node != id("c:1"));
        for r in world.placement.iter_mut() {
            r.shards = vec![0];
        }
        world.members.as_mut().unwrap().all.remove(&id("c:1"));
        world.clusters.clear();
        for node in ["a:1", "b:1"] {
            world.placement.push(PlacementRow {
                scope: world.scope.clone(),
                node: id(node),
                table: TableName::parse("k").unwrap(),
                shards: vec![0],
            });
            if reported {
                world.clusters.insert(
                    id(node),
                    vec![
                        report(ab.as_str(), "primary", &["a:1", "b:1"], &["system.t_s0"]),
                        report("rs_k0", "primary", &["a:1", "b:1"], &["system.k_s0"]),
                    ],
                );
            }
        }
        world.tables.clear();
        world.request(OpKind::Drop, 0, 0, 30_000);
        let mut engine = engine_in_office(&mut world, 1, "a:1");
        world.step(&mut engine);
        let drop = world.group_named(GroupKind::Drop);
        world
            .rows
            .values()
            .filter(|r| r.group == drop)
            .map(|r| r.action.to_query_text())
            .collect()
    };
    let queries = drop_queries(true);
    assert!(
        queries.contains(&format!("DELETE CLUSTER {ab}")),
        "{queries:#?}"
    );
    assert!(!queries.iter().any(|q| q.contains("rs_k0")), "{queries:#?}");
    let queries = drop_queries(false);
    assert!(
        !queries.iter().any(|q| q.starts_with("DELETE CLUSTER")),
        "{queries:#?}"
    );
}

/// A rebalance of another table that is settled (only steps for a node
/// that is down are left) puts no more shards anywhere: the cluster named
/// after a pair its target uses is deleted by a DROP that empties it (found
/// by the disruption campaign: such clusters were left behind).
#[test]
fn a_drop_deletes_its_cluster_while_a_settled_rebalance_targets_the_same_pair() {
    let (mut world, mut engine, _) = settled_after_losing_c();
    // t's copies on a:1 and b:1 are in clusters of the rebalance's names;
    // u's only shard is alone in the cluster named after the pair.
    let u = TableName::parse("u").unwrap();
    let ab = crate::placement::internal_cluster_name(&[id("a:1"), id("b:1")]);
    for node in ["a:1", "b:1"] {
        world.clusters.insert(
            id(node),
            vec![
                report(
                    "rs_t",
                    "primary",
                    &["a:1", "b:1"],
                    &["system.t_s0", "system.t_s1"],
                ),
                report(ab.as_str(), "primary", &["a:1", "b:1"], &["system.u_s0"]),
            ],
        );
        world.placement.push(PlacementRow {
            scope: world.scope.clone(),
            node: id(node),
            table: u.clone(),
            shards: vec![0],
        });
    }
    let request = request_of(&world, "u", 0, 0);
    let state = TableState::requested(OpKind::Drop, request, "id bigint".into(), String::new());
    world.tables.insert(u.clone(), state);
    world.step(&mut engine);
    let drop = world
        .groups
        .iter()
        .find(|(_, g)| g.kind == GroupKind::Drop && g.table == u)
        .map(|(n, _)| n.clone())
        .expect("the DROP of u is planned");
    let queries: Vec<String> = world
        .rows
        .values()
        .filter(|r| r.group == drop)
        .map(|r| r.action.to_query_text())
        .collect();
    assert!(
        queries.contains(&format!("DELETE CLUSTER {ab}")),
        "{queries:#?}"
    );
}

// ---- DROP answering before its clusters are deleted --------------------------

#[test]
fn a_drop_answers_once_the_table_is_gone_and_a_create_waits_for_the_cluster_it_deletes() {
    let mut world = world_after_losing_c();
    // c:1 is back and t lives on a:1 and b:1 alone, in their set's cluster.
    let ab = crate::placement::internal_cluster_name(&[id("a:1"), id("b:1")]);
    world.placement.retain(|r| r.node != id("c:1"));
    for r in world.placement.iter_mut() {
        r.shards = vec![0];
    }
    world.members.as_mut().unwrap().all.remove(&id("c:1"));
    for node in ["a:1", "b:1"] {
        world.clusters.insert(
            id(node),
            vec![report(
                ab.as_str(),
                "primary",
                &["a:1", "b:1"],
                &["system.t_s0"],
            )],
        );
    }
    world.tables.clear();
    world.request(OpKind::Drop, 0, 0, 30_000);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    world.step(&mut engine);
    let drop = world.group_named(GroupKind::Drop);
    let delete = format!("DELETE CLUSTER {ab}");
    let ids_where = |world: &World, deleting: bool| -> Vec<u64> {
        world
            .rows
            .values()
            .filter(|r| r.group == drop && (r.action.to_query_text() == delete) == deleting)
            .map(|r| r.id)
            .collect()
    };
    let (deletions, rest) = (ids_where(&world, true), ids_where(&world, false));
    // One on the member that deletes it for both, then one on the other for
    // itself (a no-op unless it was away).
    let nodes: Vec<&str> = deletions
        .iter()
        .map(|d| world.rows[d].node.as_str())
        .collect();
    assert_eq!(nodes, ["a:1", "b:1"]);
    assert_eq!(world.rows[&deletions[1]].wait_for_id, deletions[0]);
    for id in &rest {
        let row = world.rows.get_mut(id).unwrap();
        row.status = QueueStatus::Processed;
    }
    // Only the deletion is left: the requester is answered, the placement
    // goes, the group stays until the cluster is deleted.
    let commands = world.step(&mut engine);
    assert!(commands.contains(&Command::DeletePlacement(table())));
    assert!(commands.contains(&Command::TableChanged));
    assert_eq!(world.tables[&table()].status, TableStatus::Done);
    assert!(world.groups.contains_key(&drop));

    // A CREATE of another table on the same pair waits for the deletion.
    let u = TableName::parse("u").unwrap();
    let request = OpRequest {
        id: "req-u".into(),
        by: id("a:1"),
        at_ms: 0,
        timeout_ms: 30_000,
        scope: world.scope.clone(),
        shards: 1,
        rf: 2,
        instance: None,
    };
    world.tables.insert(
        u.clone(),
        TableState::requested(OpKind::Create, request, "id bigint".into(), String::new()),
    );
    let waiting = world.step(&mut engine);
    assert!(
        !waiting.iter().any(|c| matches!(c, Command::Enqueue(_))),
        "{waiting:?}"
    );
    // Once it is deleted, the DROP is finished and the CREATE planned.
    for id in &deletions {
        world.rows.get_mut(id).unwrap().status = QueueStatus::Processed;
    }
    world.clusters.clear();
    let commands = world.step(&mut engine);
    assert!(!world.groups.contains_key(&drop));
    assert!(
        commands.iter().any(|c| matches!(c, Command::Enqueue(_))),
        "{commands:?}"
    );
}

// ---- operations that share an internal cluster ------------------------------------

/// Cluster `c` of `nodes` (the first is the master); each of `tables` done,
/// its one shard on `holders`, in the cluster CREATE names after them, as
/// every holder reports it.
fn world_with_tables(nodes: &[&str], tables: &[(&str, &[&str])]) -> World {
    let scope = Scope::Cluster(ClusterName::parse("c").unwrap());
    let mut world = World::new(scope.clone(), nodes, nodes[0], 1);
    for (t, holders) in tables {
        let name = TableName::parse(t).unwrap();
        let mut state = TableState::requested(
            OpKind::Create,
            request_of(&world, t, 1, holders.len() as u32),
            "id bigint".into(),
            String::new(),
        );
        state
            .start(
                GroupName::from(format!("shard_create_{t}_1").as_str()),
                vec![],
                vec![],
            )
            .unwrap();
        state.succeed(ok_result()).unwrap();
        world.tables.insert(name.clone(), state);
        // As a CREATE leaves it: a row on every node, without shards where
        // the node holds none (it holds the wrapper).
        for node in nodes {
            world.placement.push(PlacementRow {
                scope: scope.clone(),
                node: id(node),
                table: name.clone(),
                shards: if holders.contains(node) {
                    vec![0]
                } else {
                    vec![]
                },
            });
        }
        if holders.len() > 1 {
            let ids: Vec<NodeId> = holders.iter().map(|n| id(n)).collect();
            let set = crate::placement::internal_cluster_name(&ids).to_string();
            for node in *holders {
                attach(&mut world, node, &set, &[&format!("system.{t}_s0")]);
            }
        }
    }
    world
}

fn request_of(world: &World, t: &str, shards: u32, rf: u32) -> OpRequest {
    OpRequest {
        id: format!("req-{t}-{}", world.elapsed.as_millis()),
        by: id("n1"),
        at_ms: 0,
        timeout_ms: 600_000,
        scope: world.scope.clone(),
        shards,
        rf,
        instance: None,
    }
}

/// `node` reports `cluster` holding `tables` as well.
fn attach(world: &mut World, node: &str, cluster: &str, tables: &[&str]) {
    let reports = world.clusters.entry(id(node)).or_default();
    if !reports.iter().any(|r| r.name.as_str() == cluster) {
        reports.push(report(cluster, "primary", &[], &[]));
    }
    for r in reports.iter_mut().filter(|r| r.name.as_str() == cluster) {
        r.tables.extend(tables.iter().map(|t| t.to_string()));
    }
}

/// Runs every row of `group` and changes the nodes' reports as its cluster
/// statements would (table statements change nothing a report shows).
fn run_and_report(world: &mut World, group: &GroupName) {
    let statements: Vec<(String, String)> = world
        .rows
        .values()
        .filter(|r| r.group == *group)
        .map(|r| (r.node.as_str().to_string(), r.action.to_query_text()))
        .collect();
    world.run_group(group);
    for (node, sql) in statements {
        let words: Vec<&str> = sql.split_whitespace().collect();
        match words.as_slice() {
            ["CREATE", "CLUSTER", "IF", "NOT", "EXISTS", cluster, ..]
            | ["JOIN", "CLUSTER", cluster, ..] => attach(world, &node, cluster, &[]),
            ["ALTER", "CLUSTER", cluster, verb, tables] => {
                let tables: Vec<&str> = tables.split(',').collect();
                for reports in world.clusters.values_mut() {
                    for r in reports.iter_mut().filter(|r| r.name.as_str() == *cluster) {
                        match *verb {
                            "ADD" => r.tables.extend(tables.iter().map(|t| t.to_string())),
                            _ => r.tables.retain(|t| !tables.contains(&t.as_str())),
                        }
                    }
                }
            }
            ["DELETE", "CLUSTER", cluster] => {
                for reports in world.clusters.values_mut() {
                    reports.retain(|r| r.name.as_str() != *cluster);
                }
            }
            _ => {}
        }
    }
}

/// Defect 1 and its relatives, each a set of tables and waves of requests
/// (the rows of one wave are enqueued before the next wave arrives, and
/// run only after the last): the order the engine plans them in, which
/// ones wait for another table's operation, and, once everything is done,
/// that every replicated shard is in a cluster on each of its holders and
/// no internal cluster is left empty.
#[test]
fn operations_sharing_an_internal_cluster_are_planned_one_after_the_other() {
    type Wave<'a> = &'a [(&'a str, OpKind)];
    struct Case<'a> {
        name: &'a str,
        nodes: &'a [&'a str],
        tables: &'a [(&'a str, &'a [&'a str])],
        waves: &'a [Wave<'a>],
        planned: &'a [&'a str],
        waited: &'a [&'a str],
    }
    let all: &[&str] = &["n1", "n2", "n3"];
    let (create, drop) = (OpKind::Create, OpKind::Drop);
    let cases = [
        Case {
            name: "a DROP planned first keeps a CREATE of the same set waiting until it is done",
            nodes: all,
            tables: &[("a", all)],
            waves: &[&[("a", drop), ("b", create)]],
            planned: &["a", "b"],
            waited: &["b"],
        },
        Case {
            name: "a CREATE planned first keeps the DROP from deleting its cluster",
            nodes: all,
            tables: &[("z", all)],
            waves: &[&[("z", drop), ("b", create)]],
            planned: &["b", "z"],
            waited: &["z"],
        },
        Case {
            name: "a DROP waits for an open CREATE of the same set",
            nodes: all,
            tables: &[("a", all)],
            waves: &[&[("b", create)], &[("a", drop)]],
            planned: &["b", "a"],
            waited: &["a"],
        },
        Case {
            name: "a CREATE waits for an open DROP of the same set",
            nodes: all,
            tables: &[("a", all)],
            waves: &[&[("a", drop)], &[("b", create)]],
            planned: &["a", "b"],
            waited: &["b"],
        },
        Case {
            name: "the second of two DROPs of one set deletes the cluster",
            nodes: all,
            tables: &[("a", all), ("b", all)],
            waves: &[&[("a", drop), ("b", drop)]],
            planned: &["a", "b"],
            waited: &["b"],
        },
        Case {
            name: "operations on other replica sets do not wait",
            nodes: &["n1", "n2", "n3", "n4"],
            tables: &[("a", &["n2", "n4"])],
            waves: &[&[("a", drop), ("b", create)]],
            planned: &["a", "b"],
            waited: &[],
        },
    ];
    for case in cases {
        let mut world = world_with_tables(case.nodes, case.tables);
        let mut engine = engine_in_office(&mut world, 1, case.nodes[0]);
        let mut log = Vec::new();
        for wave in case.waves {
            for (t, kind) in *wave {
                let rf = if *kind == OpKind::Create {
                    case.tables[0].1.len()
                } else {
                    0
                };
                let request = request_of(&world, t, 1, rf as u32);
                let state =
                    TableState::requested(*kind, request, "id bigint".into(), String::new());
                world.tables.insert(TableName::parse(t).unwrap(), state);
            }
            log.extend(world.step(&mut engine));
        }
        for _ in 0..10 {
            let open: Vec<GroupName> = world
                .groups
                .iter()
                .filter(|(_, g)| !g.status.is_final())
                .map(|(n, _)| n.clone())
                .collect();
            for group in &open {
                run_and_report(&mut world, group);
            }
            log.extend(world.step(&mut engine));
            log.extend(world.step(&mut engine));
        }
        let planned: Vec<&str> = log
            .iter()
            .filter_map(|c| match c {
                Command::Log(Event::Enqueued { table, .. }) => Some(table.as_str()),
                _ => None,
            })
            .collect();
        let waited: Vec<&str> = log
            .iter()
            .filter_map(|c| match c {
                Command::Log(Event::Waiting { table, .. }) => Some(table.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(planned, case.planned, "{}: planned", case.name);
        assert_eq!(waited, case.waited, "{}: waited", case.name);
        let holds = |r: &&PlacementRow| r.shards.contains(&0);
        for row in world.placement.iter().filter(holds) {
            let copies = world
                .placement
                .iter()
                .filter(holds)
                .filter(|r| r.table == row.table)
                .count();
            if copies < 2 {
                continue;
            }
            let shard = format!("system.{}_s0", row.table);
            assert!(
                world.clusters[&row.node]
                    .iter()
                    .any(|r| r.tables.contains(&shard)),
                "{}: no cluster holds {shard} on {}: {:?}",
                case.name,
                row.node,
                world.clusters
            );
        }
        for (node, reports) in &world.clusters {
            assert!(
                reports.iter().all(|r| !r.tables.is_empty()),
                "{}: an empty cluster on {node}: {reports:?}",
                case.name
            );
        }
    }
}

// ---- requesters that are gone ------------------------------------------------------

/// What happens to the shardbuddy process of node n2 that received the
/// statement.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fate {
    /// It keeps beating.
    Beats,
    /// searchd restarts it before the master planned the statement.
    RestartsBeforePlanning,
    /// searchd restarts it once the rows are queued.
    RestartsAfterPlanning,
    /// It dies once the rows are queued and nothing replaces it.
    StopsAfterPlanning,
}

/// The end of a statement, as the metadata shows it.
#[derive(Debug, PartialEq)]
enum End {
    /// Its state says done; the table is placed (or, a DROP, gone).
    Done,
    /// No trace of the request at all.
    Discarded,
    /// Its state is failed with this error; nothing of a CREATE is placed,
    /// a DROP left the table placed.
    Failed(String),
}

/// Defect 2: a request whose requester is gone before the master plans it
/// is discarded, a CREATE whose requester goes before it is done is
/// undone, and a CREATE is done only once its requester was seen alive
/// after its rows were; a DROP already under way is finished.
#[test]
fn statements_whose_requester_is_gone_do_not_take_effect() {
    let t = table();
    let gone = |kind| crate::sharding::wording::requester_gone(kind, &table(), &id("n2"));
    let cases = [
        (OpKind::Create, Fate::Beats, End::Done),
        (OpKind::Create, Fate::RestartsBeforePlanning, End::Discarded),
        (
            OpKind::Create,
            Fate::RestartsAfterPlanning,
            End::Failed(gone(OpKind::Create)),
        ),
        (
            OpKind::Create,
            Fate::StopsAfterPlanning,
            End::Failed(gone(OpKind::Create)),
        ),
        (OpKind::Drop, Fate::Beats, End::Done),
        (
            OpKind::Drop,
            Fate::RestartsBeforePlanning,
            End::Failed(gone(OpKind::Drop)),
        ),
        (OpKind::Drop, Fate::StopsAfterPlanning, End::Done),
    ];
    for (kind, fate, want) in cases {
        let placed: &[(&str, &[&str])] = match kind {
            OpKind::Create => &[],
            OpKind::Drop => &[("t", &["n1"])],
        };
        let mut world = world_with_tables(&["n1", "n2"], placed);
        let mut beats = BTreeMap::from([("n1", ("master", 1)), ("n2", ("p1", 1))]);
        let register = |world: &mut World, beats: &BTreeMap<&str, (&str, u64)>| {
            world.registrations = beats
                .iter()
                .map(|(node, (instance, beat))| {
                    let reg = Registration {
                        seen_at: 0,
                        version: String::new(),
                        instance: instance.to_string(),
                        beat: *beat,
                    };
                    (id(node), reg)
                })
                .collect();
        };
        register(&mut world, &beats);
        let mut engine = engine_in_office(&mut world, 1, "n1");
        let mut request = request_of(&world, "t", 2, 1);
        request.by = id("n2");
        request.instance = Some("p1".into());
        let state = match world.tables.remove(&t) {
            Some(done) => TableState::requested(kind, request, done.structure, done.extra),
            None => TableState::requested(kind, request, "id bigint".into(), String::new()),
        };
        world.tables.insert(t.clone(), state);
        let mut restarted = false;
        for _ in 0..30 {
            let planned = world.groups.values().any(|g| g.kind != GroupKind::Rollback);
            let replace = match fate {
                Fate::RestartsBeforePlanning => true,
                Fate::RestartsAfterPlanning => planned,
                _ => false,
            };
            if replace && !restarted {
                beats.insert("n2", ("p2", 1));
                restarted = true;
            }
            for (node, (_, beat)) in beats.iter_mut() {
                let dead = *node == "n2" && fate == Fate::StopsAfterPlanning && planned;
                if !dead {
                    *beat += 1;
                }
            }
            register(&mut world, &beats);
            world.elapsed += Duration::from_millis(500);
            world.step(&mut engine);
            let open: Vec<GroupName> = world
                .groups
                .iter()
                .filter(|(_, g)| !g.status.is_final())
                .map(|(n, _)| n.clone())
                .collect();
            for group in &open {
                world.run_group(group);
                world.run_group(&group.rollback());
            }
        }
        let state = world.tables.get(&t);
        let placed = world.placement.iter().any(|r| r.table == t);
        let got = match state {
            None => End::Discarded,
            Some(s) if s.status == TableStatus::Done => End::Done,
            Some(s) => End::Failed(s.error.clone().unwrap_or_default()),
        };
        assert_eq!(got, want, "{kind:?} {fate:?}");
        let placed_after = matches!(
            (kind, &got),
            (OpKind::Create, End::Done) | (OpKind::Drop, End::Failed(_))
        );
        assert_eq!(placed, placed_after, "{kind:?} {fate:?}: placement");
    }
}

/// Found by the fault suite's storm: a master killed after writing a
/// CREATE's placement but before committing its group left that placement
/// behind when the next master discarded the request (its requester had
/// gone): the metadata placed a table no node held. Killed after any of the
/// writes before the commit record, it leaves no trace.
#[test]
fn storm_defect_a_create_discarded_after_its_master_stopped_leaves_no_placement() {
    let t = table();
    let register = |world: &mut World, n2: &str, beat: u64| {
        world.registrations = [("n1", "master"), ("n2", n2)]
            .into_iter()
            .map(|(node, instance)| {
                let reg = Registration {
                    seen_at: 0,
                    version: String::new(),
                    instance: instance.to_string(),
                    beat,
                };
                (id(node), reg)
            })
            .collect();
    };
    let planned = |world: &mut World| {
        register(world, "p1", 1);
        let mut old = engine_in_office(world, 1, "n1");
        let mut request = request_of(world, "t", 2, 1);
        request.by = id("n2");
        request.instance = Some("p1".into());
        world.tables.insert(
            t.clone(),
            TableState::requested(OpKind::Create, request, "id bigint".into(), String::new()),
        );
        old.step(&world.snapshot(), &CONFIG)
    };
    let commit_at = planned(&mut world_with_tables(&["n1", "n2"], &[]))
        .iter()
        .position(|c| matches!(c, Command::PutGroup(..)))
        .expect("the commit record is written");
    for stop_after in 1..=commit_at {
        let mut world = world_with_tables(&["n1", "n2"], &[]);
        // The master dies after `stop_after` of its writes, before the
        // commit record.
        for command in planned(&mut world).into_iter().take(stop_after) {
            world.apply(command);
        }
        // The requester is replaced (searchd restarted it) and a new master
        // takes office.
        world.lease = Some(Lease {
            node: id("n1"),
            epoch: 2,
            beat: 0,
        });
        let mut engine = MasterEngine::new(2, id("n1"), queue_id(1, 100));
        for beat in 2..20 {
            register(&mut world, "p2", beat);
            world.elapsed += Duration::from_millis(500);
            world.step(&mut engine);
        }
        assert!(
            !world.tables.contains_key(&t),
            "stopped after {stop_after}: {:?}",
            world.tables.get(&t)
        );
        assert!(
            world.placement.iter().all(|r| r.table != t),
            "stopped after {stop_after}: {:?}",
            world.placement
        );
    }
}

// ---- operator control: REBALANCE TABLE, PAUSE, RESUME, STOP, progress -------

fn control(world: &mut World, action: crate::sharding::records::ControlAction) {
    let request = crate::sharding::records::ControlRequest::requested(
        format!("ctl-{}", world.elapsed.as_millis()),
        id("b:1"),
        action,
        world.scope.clone(),
        0,
    );
    world.controls.insert(table(), request);
}

/// The answer to the last control request: `Ok(first row)` or `Err(error)`.
fn answer(world: &World) -> Result<Vec<serde_json::Value>, String> {
    use crate::sharding::records::ControlStatus;
    let r = world.controls.get(&table()).expect("a request");
    match r.status {
        ControlStatus::Done => {
            let sets = r.result.as_ref().and_then(|v| v.as_array()).unwrap();
            let set = ResultSet::from_json(&sets[0]).unwrap();
            Ok(set.rows.first().cloned().unwrap_or_default())
        }
        ControlStatus::Failed => Err(r.error.clone().unwrap()),
        ControlStatus::Requested => Err("not answered".into()),
    }
}

fn rebalance_world() -> (World, MasterEngine, GroupName) {
    let mut world = world_after_losing_c();
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    world.step(&mut engine);
    let group = world.group_named(GroupKind::Rebalance);
    (world, engine, group)
}

#[test]
fn pause_and_resume_go_through_the_group_record_and_bad_forms_are_refused() {
    use crate::sharding::records::ControlAction::*;
    let (mut world, mut engine, group) = rebalance_world();
    control(&mut world, Resume);
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err("the rebalance of table 't' is not paused (it is running)".into())
    );
    control(&mut world, Pause);
    world.step(&mut engine);
    let row = answer(&world).unwrap();
    assert_eq!(row[2], "paused");
    assert!(world.groups[&group].is_paused());
    // Paused survives a master change: the record carries it.
    world.lease = Some(Lease {
        node: id("b:1"),
        epoch: 2,
        beat: 0,
    });
    let mut next = MasterEngine::new(2, id("b:1"), 0);
    world.step(&mut next);
    assert!(world.groups[&group].is_paused());
    assert_eq!(world.groups[&group].epoch, 2);
    control(&mut world, Pause);
    world.step(&mut next);
    assert_eq!(
        answer(&world),
        Err("the rebalance of table 't' is already paused".into())
    );
    control(&mut world, Rebalance);
    world.step(&mut next);
    assert!(answer(&world)
        .unwrap_err()
        .starts_with("a rebalance of table 't' is already paused (group rebalance_t_"));
    control(&mut world, Resume);
    world.step(&mut next);
    assert_eq!(answer(&world).unwrap()[2], "running");
    assert!(!world.groups[&group].is_paused());
}

#[test]
fn requests_for_another_cluster_or_a_table_without_a_rebalance_are_refused() {
    use crate::sharding::records::ControlAction::*;
    let mut world = world_after_losing_c();
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    control(&mut world, Pause);
    world.controls.get_mut(&table()).unwrap().scope = Scope::Local;
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err(
            "table 't' is not sharded in that cluster: sharded tables of these nodes live in \
             cluster 'c' (use c:t)"
                .into()
        )
    );
    // The refusal changed nothing: the automatic rebalance started in the
    // same step is the only group.
    assert_eq!(world.groups.len(), 1);
    let group = world.group_named(GroupKind::Rebalance);
    world.run_group(&group);
    world.step(&mut engine);
    world.step(&mut engine);
    assert_eq!(world.groups[&group].status, GroupStatus::Done);
    for action in [
        Pause,
        Resume,
        Stop(crate::sharding::records::StopKind::Graceful),
    ] {
        control(&mut world, action);
        world.step(&mut engine);
        assert_eq!(
            answer(&world),
            Err("no rebalance of table 't' is running".into())
        );
    }
    // Balanced now: REBALANCE TABLE answers so and starts nothing.
    control(&mut world, Rebalance);
    world.step(&mut engine);
    let row = answer(&world).unwrap();
    assert_eq!(
        (row[1].as_str(), row[2].as_str()),
        (Some(""), Some("balanced"))
    );
    assert_eq!(world.groups.len(), 1);
}

#[test]
fn an_immediate_stop_undoes_the_group_keeps_the_placement_and_holds_the_table() {
    use crate::sharding::records::{ControlAction::*, StopKind};
    let (mut world, mut engine, group) = rebalance_world();
    let before = world.placement.clone();
    world.run_first(&group, 4);
    control(&mut world, Stop(StopKind::Immediate));
    world.step(&mut engine);
    assert_eq!(answer(&world).unwrap()[2], "stopping (rolling back)");
    assert_eq!(world.groups[&group].operator_state(), "stopping");
    // Aborted, then its rollback planned and run, then stopped.
    world.step(&mut engine);
    assert_eq!(world.groups[&group].status, GroupStatus::RollingBack);
    world.step(&mut engine);
    world.run_group(&group.rollback());
    world.step(&mut engine);
    let rec = &world.groups[&group];
    assert_eq!(rec.status, GroupStatus::Stopped);
    assert!(rec
        .error
        .as_deref()
        .unwrap()
        .contains("stopped by an operator"));
    assert!(!world.groups.contains_key(&group.rollback()));
    assert!(!world.rows.values().any(|r| r.group == group));
    assert_eq!(world.placement, before);
    // Not rebalanced automatically again: the stop holds the table.
    let mut seen = Vec::new();
    for _ in 0..3 {
        world.elapsed += Duration::from_secs(60);
        let commands = world.step(&mut engine);
        assert!(!commands.iter().any(|c| matches!(c, Command::Enqueue(_))));
        seen.extend(commands);
    }
    assert!(seen.contains(&Command::Log(Event::RebalanceSkipped(
        "Skipping rebalance for table t: an operator stopped its rebalance; REBALANCE TABLE t \
         starts one again"
            .into()
    ))));
    // Until REBALANCE TABLE, which plans with the same function and answers
    // the plan's summary.
    control(&mut world, Rebalance);
    world.step(&mut engine);
    let row = answer(&world).unwrap();
    let again = GroupName::from(row[1].as_str().unwrap());
    assert_ne!(again, group);
    assert_eq!(row[2], "node lost");
    assert_eq!((row[4].as_u64(), row[5].as_u64()), (Some(1), Some(1)));
    assert!(!world.groups.contains_key(&group), "the stop is released");
    assert_eq!(world.groups.len(), 1);
}

#[test]
fn a_graceful_stop_finishes_the_group_in_flight_and_ends_stopped() {
    use crate::sharding::records::{ControlAction::*, StopKind};
    let (mut world, mut engine, group) = rebalance_world();
    control(&mut world, Pause);
    world.step(&mut engine);
    control(&mut world, Stop(StopKind::Graceful));
    world.step(&mut engine);
    assert!(
        !world.groups[&group].is_paused(),
        "a stop resumes the group"
    );
    control(&mut world, Stop(StopKind::Immediate));
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err("the rebalance of table 't' is already stopping".into())
    );
    world.run_group(&group);
    world.step(&mut engine);
    world.step(&mut engine);
    let rec = &world.groups[&group];
    assert_eq!(rec.status, GroupStatus::Stopped);
    let plan = rec.rebalance.as_ref().unwrap();
    assert!(plan.settled);
    // The new placement is committed: shard 1 on a:1 and b:1.
    let holders: Vec<&str> = world
        .placement
        .iter()
        .filter(|r| r.shards.contains(&1))
        .map(|r| r.node.as_str())
        .collect();
    assert_eq!(holders, vec!["a:1", "b:1"]);
}

#[test]
fn progress_is_measured_on_the_masters_clock_and_never_goes_back() {
    let (mut world, mut engine, group) = rebalance_world();
    let total = world.groups[&group].rebalance.as_ref().unwrap().steps_total;
    assert_eq!(
        total,
        world.rows.values().filter(|r| r.group == group).count() as u64
    );
    let progress = |w: &World| {
        w.groups[&group]
            .rebalance
            .as_ref()
            .unwrap()
            .progress
            .clone()
    };
    let mut last = progress(&world);
    assert_eq!((last.steps_done, last.eta_ms), (0, None));
    // The executors run one step after another, each taking as long as its
    // kind costs: at that steady throughput the ETA is the time really left.
    let costs: Vec<u64> = world
        .rows
        .values()
        .filter(|r| r.group == group)
        .map(|r| super::engine::step_cost(&r.action))
        .collect();
    for k in 1..total / 2 {
        world.elapsed += Duration::from_millis(costs[k as usize - 1]);
        world.run_first(&group, k as usize);
        world.step(&mut engine);
        let p = progress(&world);
        assert!(p.steps_done >= last.steps_done, "{p:?} after {last:?}");
        assert!(p.work_done > last.work_done, "{p:?} after {last:?}");
        assert_eq!(p.steps_done, k);
        assert!(p.elapsed_ms > last.elapsed_ms);
        let left: u64 = costs[k as usize..].iter().sum();
        assert_eq!(p.eta_ms, Some(left), "after {k} steps");
        last = p;
    }
    assert_eq!(last.moves_done, 0, "no copy verified yet: {last:?}");
    // Paused time counts as elapsed, not as running.
    use crate::sharding::records::ControlAction::Pause;
    control(&mut world, Pause);
    world.step(&mut engine);
    let paused = progress(&world);
    world.elapsed += Duration::from_secs(5);
    world.step(&mut engine);
    let later = progress(&world);
    assert_eq!(later.running_ms, paused.running_ms);
    assert!(later.elapsed_ms >= paused.elapsed_ms + 5_000);
    // Every move is done once every step is.
    world.run_group(&group);
    world.step(&mut engine);
    let rec = &world.groups[&group];
    let plan = rec.rebalance.as_ref().unwrap();
    assert_eq!(plan.progress.moves_done, plan.moves.len() as u64);
    assert_eq!(plan.progress.steps_done, total);
}

#[test]
fn a_failed_rebalance_is_undone_and_kept_for_the_status() {
    let (mut world, mut engine, group) = rebalance_world();
    world.run_first(&group, 2);
    world.fail_row(&group, 2, "boom");
    world.step(&mut engine);
    world.step(&mut engine);
    world.run_group(&group.rollback());
    let commands = world.step(&mut engine);
    assert!(
        commands.contains(&Command::Log(Event::Operator {
            table: table(),
            what: format!("rebalance {group} undone, the placement is as before it"),
        })),
        "{commands:?}"
    );
    let rec = &world.groups[&group];
    assert_eq!(rec.status, GroupStatus::Undone);
    assert!(rec.error.as_deref().unwrap().contains("boom"));
    // Kept for the retention period, then purged.
    world.step(&mut engine);
    assert_eq!(world.groups[&group].status, GroupStatus::Undone);
    world.elapsed += CONFIG.retention;
    world.step(&mut engine);
    assert!(!world.groups.contains_key(&group));
}

#[test]
fn rebalance_table_says_what_is_missing_to_keep_rf() {
    use crate::sharding::records::ControlAction::Rebalance;
    let mut world = world_after_losing_c();
    world.members.as_mut().unwrap().active.remove(&id("b:1"));
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    control(&mut world, Rebalance);
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err(
            "cannot rebalance table 't': keeping RF=2 needs 2 live nodes, 1 are live (down: \
             b:1, c:1); add or bring back 1 node(s)"
                .into()
        )
    );
    assert!(world.groups.is_empty());
}

/// Found by the disruption campaign: a node away while a table was made
/// (or one that joined after) got its wrapper only from a rebalance that
/// moved a copy, so with a balanced placement it never served the table.
#[test]
fn a_member_without_the_wrapper_gets_it_though_no_copy_moves() {
    let mut world = world_with_tables(&["a:1", "b:1", "c:1"], &[("t", &["a:1", "b:1"])]);
    world.placement.retain(|r| r.node != id("c:1"));
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    world.step(&mut engine);
    let group = world.group_named(GroupKind::Rebalance);
    let rows: Vec<(String, String)> = world
        .rows
        .values()
        .filter(|r| r.group == group)
        .map(|r| (r.node.to_string(), r.action.to_query_text()))
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "c:1");
    assert!(rows[0].1.starts_with("CREATE TABLE `t` "), "{rows:?}");
    world.run_group(&group);
    for _ in 0..3 {
        world.step(&mut engine);
    }
    assert!(
        world.groups[&group].status.is_final(),
        "{:?}",
        world.groups[&group]
    );
    let c_row = world
        .placement
        .iter()
        .find(|r| r.node == id("c:1") && r.table == table())
        .expect("c:1 has a placement row");
    assert!(c_row.shards.is_empty(), "{c_row:?}");
    // Nothing more to do.
    let quiet = world.step(&mut engine);
    assert!(
        !quiet.iter().any(|c| matches!(c, Command::Enqueue(_))),
        "{quiet:?}"
    );
}

#[test]
fn a_drained_node_hands_its_copies_over_and_gets_no_new_ones() {
    let mut world = world_with_tables(&["a:1", "b:1", "c:1"], &[("t", &["a:1", "b:1"])]);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    let quiet = world.step(&mut engine);
    assert!(!quiet.iter().any(|c| matches!(c, Command::Enqueue(_))));
    world.drained.insert(id("b:1"));
    let commands = world.step(&mut engine);
    let started = commands.iter().find_map(|c| match c {
        Command::Log(Event::RebalanceStarted { reason, copies, .. }) => Some((*reason, *copies)),
        _ => None,
    });
    assert_eq!(started, Some(("drain", 1)));
    let group = world.group_named(GroupKind::Rebalance);
    let plan = world.groups[&group].rebalance.clone().unwrap();
    let holds = |node: &str| {
        plan.target
            .iter()
            .any(|(n, shards)| n.as_str() == node && shards.contains(&0))
    };
    assert!(holds("a:1") && holds("c:1") && !holds("b:1"), "{plan:?}");
    assert!(plan.moves.iter().all(|m| m.reason == "drain"), "{plan:?}");
    // A CREATE places nothing on the drained node.
    let live: BTreeSet<NodeId> = ["a:1", "b:1", "c:1"].into_iter().map(id).collect();
    let request = request_of(&world, "u", 3, 2);
    let state = TableState::requested(
        OpKind::Create,
        request.clone(),
        "id bigint".into(),
        String::new(),
    );
    let planned = super::plan::create(
        &live,
        &world.drained,
        &TableName::parse("u").unwrap(),
        &state,
        &request,
        &BTreeSet::new(),
    )
    .unwrap();
    let rows = planned.placement.unwrap();
    assert!(rows
        .iter()
        .any(|r| r.node == id("b:1") && r.shards.is_empty()));
    assert!(rows
        .iter()
        .all(|r| r.node != id("b:1") || r.shards.is_empty()));
    world.drained.insert(id("c:1"));
    assert_eq!(
        super::plan::create(
            &live,
            &world.drained,
            &TableName::parse("u").unwrap(),
            &state,
            &request,
            &BTreeSet::new(),
        )
        .unwrap_err(),
        "table 'u': RF=2 needs 2 nodes that are not drained, 1 are; undrain a node with ALTER \
         CLUSTER … UNDRAIN NODE"
    );
}

// ---- cleanup of orphans -------------------------------------------------------------

/// What `world`'s nodes hold as its placement and clusters say, plus
/// `extra` shard tables (`node`, `table`, `shard`) no metadata knows.
fn sweep_round(world: &mut World, extra: &[(&str, &str, u32)]) {
    let mut held: BTreeMap<NodeId, Holdings> = BTreeMap::new();
    for node in world.members.as_ref().unwrap().active.iter() {
        let mut h = Holdings {
            clusters: world.clusters.get(node).cloned().unwrap_or_default(),
            ..Holdings::default()
        };
        for row in world.placement.iter().filter(|r| r.node == *node) {
            for shard in &row.shards {
                h.shards
                    .insert(crate::placement::ShardTable::new(&row.table, *shard));
            }
        }
        held.insert(node.clone(), h);
    }
    for (node, t, shard) in extra {
        let t = TableName::parse(t).unwrap();
        held.entry(id(node))
            .or_default()
            .shards
            .insert(crate::placement::ShardTable::new(&t, *shard));
    }
    world.holdings = Some(held);
}

/// The statements of the cleanup groups' rows, by node.
fn cleanup_statements(world: &World) -> Vec<(String, String)> {
    world
        .rows
        .values()
        .filter(|r| {
            world
                .groups
                .get(&r.group)
                .is_some_and(|g| g.kind == GroupKind::Cleanup)
        })
        .map(|r| (r.node.to_string(), r.action.to_query_text()))
        .collect()
}

#[test]
fn orphans_seen_at_rest_in_two_sweeps_are_removed_through_the_queue() {
    let mut world = world_with_tables(&["a:1", "b:1"], &[("t", &["a:1", "b:1"])]);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    // An internal cluster and a user's cluster, both empty, and a shard
    // table of a table nobody created.
    attach(&mut world, "b:1", "temp_move_0_0123456789ab", &[]);
    attach(&mut world, "b:1", "mine", &[]);
    sweep_round(&mut world, &[("b:1", "x", 0)]);
    world.step(&mut engine);
    assert!(
        cleanup_statements(&world).is_empty(),
        "one sweep is not enough"
    );
    world.holdings = None;
    world.step(&mut engine);
    assert!(cleanup_statements(&world).is_empty(), "only sweeps count");
    sweep_round(&mut world, &[("b:1", "x", 0)]);
    world.step(&mut engine);
    assert_eq!(
        cleanup_statements(&world),
        [
            (
                "b:1".to_string(),
                "DELETE CLUSTER temp_move_0_0123456789ab".to_string()
            ),
            (
                "b:1".to_string(),
                "DROP TABLE IF EXISTS system.x_s0".to_string()
            ),
        ]
    );
    let groups: Vec<(String, String)> = world
        .groups
        .iter()
        .filter(|(_, g)| g.kind == GroupKind::Cleanup)
        .map(|(n, g)| (n.to_string(), g.table.to_string()))
        .collect();
    assert_eq!(groups.len(), 2, "one group per table: {groups:?}");
    assert!(groups.iter().any(|(_, t)| t == "x"));
    // While they run the cluster is not at rest: no further cleanup.
    sweep_round(&mut world, &[("b:1", "x", 0)]);
    let before = world.rows.len();
    world.step(&mut engine);
    world.step(&mut engine);
    assert_eq!(world.rows.len(), before);
    // Done: each group is recorded done, with what it removed.
    for name in world.groups.keys().cloned().collect::<Vec<_>>() {
        if world.groups[&name].kind == GroupKind::Cleanup {
            world.run_group(&name);
        }
    }
    world.holdings = None;
    let commands = world.step(&mut engine);
    let cleaned = commands
        .iter()
        .filter(|c| matches!(c, Command::Log(Event::Cleaned { .. })))
        .count();
    assert_eq!(cleaned, 2);
    assert!(world
        .groups
        .values()
        .filter(|g| g.kind == GroupKind::Cleanup)
        .all(|g| g.status == GroupStatus::Done && g.removes.len() == 1));
}

#[test]
fn nothing_is_cleaned_while_an_operation_or_request_is_open() {
    let mut world = world_with_tables(&["a:1", "b:1"], &[("t", &["a:1", "b:1"])]);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    sweep_round(&mut world, &[("b:1", "x", 0)]);
    world.step(&mut engine);
    // A request arrives: the sweep that sees it forgets what it suspected.
    let request = request_of(&world, "u", 1, 1);
    let state = TableState::requested(OpKind::Create, request, "id bigint".into(), String::new());
    world.tables.insert(TableName::parse("u").unwrap(), state);
    sweep_round(&mut world, &[("b:1", "x", 0)]);
    world.step(&mut engine);
    assert!(cleanup_statements(&world).is_empty());
    // The CREATE runs and completes; two sweeps at rest are needed again.
    let create = world.group_named(GroupKind::Create);
    run_and_report(&mut world, &create);
    world.holdings = None;
    world.step(&mut engine);
    assert!(world.groups.values().all(|g| g.status.is_final()));
    sweep_round(&mut world, &[("b:1", "x", 0)]);
    world.step(&mut engine);
    assert!(cleanup_statements(&world).is_empty());
    sweep_round(&mut world, &[("b:1", "x", 0)]);
    world.step(&mut engine);
    assert_eq!(
        cleanup_statements(&world),
        [(
            "b:1".to_string(),
            "DROP TABLE IF EXISTS system.x_s0".to_string()
        )]
    );
}

#[test]
fn a_stale_copy_stays_while_a_holder_of_its_shard_is_not_read_and_clustered_ones_stay() {
    let mut world = world_with_tables(&["a:1", "b:1", "c:1"], &[("t", &["a:1", "b:1"])]);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    // c:1 keeps an old copy of t's shard 0, and b:1 (a holder) is not read.
    for _ in 0..2 {
        sweep_round(&mut world, &[("c:1", "t", 0)]);
        world.holdings.as_mut().unwrap().remove(&id("b:1"));
        world.step(&mut engine);
    }
    assert!(cleanup_statements(&world).is_empty());
    // A shard table in a replication cluster is never detached by itself.
    attach(&mut world, "c:1", "old", &["system.t_s0"]);
    for _ in 0..2 {
        sweep_round(&mut world, &[("c:1", "t", 0)]);
        world.step(&mut engine);
    }
    assert!(cleanup_statements(&world).is_empty());
    // Out of the cluster, with both holders read holding theirs: removed.
    world.clusters.remove(&id("c:1"));
    for _ in 0..2 {
        sweep_round(&mut world, &[("c:1", "t", 0)]);
        world.step(&mut engine);
    }
    assert_eq!(
        cleanup_statements(&world),
        [(
            "c:1".to_string(),
            "DROP TABLE IF EXISTS system.t_s0".to_string()
        )]
    );
}

#[test]
fn a_cleanup_step_that_cannot_run_is_reported_and_its_group_goes() {
    let mut world = world_with_tables(&["a:1", "b:1"], &[("t", &["a:1", "b:1"])]);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    for _ in 0..2 {
        sweep_round(&mut world, &[("b:1", "x", 3)]);
        world.step(&mut engine);
    }
    let group = world.group_named(GroupKind::Cleanup);
    world.fail_row(&group, 0, "no such table");
    world.holdings = None;
    let commands = world.step(&mut engine);
    assert!(commands.contains(&Command::PurgeGroup(group.clone())));
    assert!(commands.iter().any(|c| matches!(
        c,
        Command::Log(Event::OrphanLeft { error, .. }) if error == "no such table"
    )));
    assert!(!world.groups.contains_key(&group));
}

// ---- a node removed for good ----------------------------------------------------------

/// [`world_after_losing_c`] once the rebalance it starts is settled: RF is
/// back on a:1 and b:1, and its steps for c:1 wait for it to return.
fn settled_after_losing_c() -> (World, MasterEngine, GroupName) {
    let mut world = world_after_losing_c();
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    world.step(&mut engine);
    let group = world.group_named(GroupKind::Rebalance);
    run_live_rows(&mut world, &group);
    world.step(&mut engine);
    assert!(world.groups[&group].is_settled());
    (world, engine, group)
}

/// Runs the rows of `group` that are on live nodes.
fn run_live_rows(world: &mut World, group: &GroupName) {
    let live = world.members.as_ref().unwrap().active.clone();
    for row in world.rows.values_mut().filter(|r| r.group == *group) {
        if live.contains(&row.node) {
            row.status = QueueStatus::Processed;
            row.tries = 1;
        }
    }
}

#[test]
fn a_node_removed_for_good_frees_the_rebalance_waiting_for_it_and_a_drop_skips_it() {
    let (mut world, mut engine, group) = settled_after_losing_c();
    // Settled: RF is back on a:1 and b:1; steps wait for c:1 to return.
    assert!(world.groups[&group].is_settled());
    assert!(world
        .rows
        .values()
        .any(|r| r.group == group && r.node == id("c:1") && r.status != QueueStatus::Processed));
    for _ in 0..3 {
        world.step(&mut engine);
    }
    assert!(!world.groups[&group].status.is_final(), "c:1 is only down");

    // ALTER CLUSTER c UPDATE nodes: c:1 is no longer a member at all.
    world.members.as_mut().unwrap().all.remove(&id("c:1"));
    let commands = world.step(&mut engine);
    assert_eq!(world.groups[&group].status, GroupStatus::Done);
    assert!(commands.contains(&Command::Log(Event::Forgotten {
        table: table(),
        nodes: vec![id("c:1")],
    })));
    assert!(world.placement.iter().all(|r| r.node != id("c:1")));

    // A DROP now plans nothing for c:1 and completes on the live nodes.
    let request = request_of(&world, "t", 2, 2);
    let state = TableState::requested(OpKind::Drop, request, String::new(), String::new());
    world.tables.insert(table(), state);
    world.step(&mut engine);
    let drop = world.group_named(GroupKind::Drop);
    assert!(world
        .rows
        .values()
        .filter(|r| r.group == drop)
        .all(|r| r.node != id("c:1")));
    run_and_report(&mut world, &drop);
    world.step(&mut engine);
    world.step(&mut engine);
    assert_eq!(world.tables[&table()].status, TableStatus::Done);
    assert!(world.placement.is_empty());
}

#[test]
fn a_drop_plans_nothing_for_a_forgotten_holder_and_keeps_every_other_wait() {
    let world = world_after_losing_c();
    let live: BTreeSet<NodeId> = [id("a:1"), id("b:1")].into();
    let plan = |forgotten: &BTreeSet<NodeId>| {
        super::plan::drop(
            &live,
            forgotten,
            &table(),
            &world.placement,
            &world.snapshot().cluster_map(),
            &BTreeSet::new(),
        )
        .unwrap()
    };
    let all = plan(&BTreeSet::new());
    assert!(all.steps.iter().any(|s| s.node == id("c:1")));
    let kept = plan(&[id("c:1")].into());
    assert!(kept.steps.iter().all(|s| s.node != id("c:1")));
    assert!(!kept.nodes.contains(&id("c:1")));
    // The same steps on the other nodes, each waiting for the same steps.
    let on_live = |planned: &super::plan::Planned| -> Vec<(String, Vec<String>)> {
        planned
            .steps
            .iter()
            .filter(|s| s.node != id("c:1"))
            .map(|s| {
                let waits = s
                    .wait_for
                    .iter()
                    .map(|w| &planned.steps[*w])
                    .filter(|w| w.node != id("c:1"))
                    .map(|w| w.action.to_query_text())
                    .collect();
                (s.action.to_query_text(), waits)
            })
            .collect()
    };
    assert_eq!(on_live(&kept), on_live(&all));
}

// ---- the watchdog -----------------------------------------------------------------------

fn open_rebalance(world: &World) -> Option<GroupName> {
    world
        .groups
        .iter()
        .find(|(_, g)| g.kind == GroupKind::Rebalance && !g.status.is_final())
        .map(|(n, _)| n.clone())
}

#[test]
fn a_stalled_rebalance_is_undone_and_retried_with_back_off_until_its_budget_is_spent() {
    let mut world = world_after_losing_c();
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    let stall = CONFIG.rebalance.stall_after;
    let mut back_off = CONFIG.rebalance.retry_after;
    for attempt in 1..=CONFIG.rebalance.attempts {
        let before = world.elapsed;
        world.step(&mut engine);
        let group = open_rebalance(&world).expect("a rebalance starts");
        // Its steps never run: no shardbuddy beats on the nodes.
        world.elapsed = before + stall - Duration::from_millis(1);
        world.step(&mut engine);
        assert_eq!(world.groups[&group].status, GroupStatus::Committed);
        world.elapsed = before + stall;
        let commands = world.step(&mut engine);
        let aborted = commands.iter().any(|c| {
            matches!(c, Command::Log(Event::Aborted { error, .. })
                if error == "table 't': the rebalance made no progress for 600 s and none of its steps \
                            is running (they wait on a:1, b:1); it is undone and planned again")
        });
        assert!(aborted, "attempt {attempt}: {commands:?}");
        let mut after = Vec::new();
        for _ in 0..3 {
            after.extend(world.step(&mut engine));
        }
        assert_eq!(world.groups[&group].status, GroupStatus::Undone);
        if attempt == CONFIG.rebalance.attempts {
            // The budget is spent: skipped from now on, and said so once.
            world.elapsed += Duration::from_secs(3_600);
            after.extend(world.step(&mut engine));
            assert!(open_rebalance(&world).is_none());
            let skips: Vec<&Command> = after
                .iter()
                .filter(|c| matches!(c, Command::Log(Event::RebalanceSkipped(_))))
                .collect();
            assert_eq!(
                skips,
                [&Command::Log(Event::RebalanceSkipped(
                    "Skipping rebalance for table t: its last 5 rebalances failed; REBALANCE \
                     TABLE t tries again"
                        .into()
                ))]
            );
            break;
        }
        // Not again before the back-off, which doubles.
        let failed_at = world.elapsed;
        world.elapsed = failed_at + back_off - Duration::from_millis(1);
        world.step(&mut engine);
        assert!(open_rebalance(&world).is_none(), "attempt {attempt}");
        world.elapsed = failed_at + back_off;
        back_off *= 2;
    }
}

#[test]
fn a_rebalance_whose_step_a_live_shardbuddy_runs_never_stalls() {
    let mut world = world_after_losing_c();
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    world.step(&mut engine);
    let group = open_rebalance(&world).unwrap();
    let first = *world.rows.keys().next().unwrap();
    world.rows.get_mut(&first).unwrap().status = QueueStatus::Processing;
    let node = world.rows[&first].node.clone();
    for minute in 1..=30u64 {
        world.elapsed = Duration::from_secs(60 * minute);
        // Its shardbuddy beats: a long state transfer is progress.
        world.registrations.insert(
            node.clone(),
            Registration {
                seen_at: 0,
                version: "0".into(),
                instance: "p".into(),
                beat: minute,
            },
        );
        world.step(&mut engine);
    }
    assert_eq!(world.groups[&group].status, GroupStatus::Committed);
}

// ---- messages: each produced by the engine and checked word for word ---------

/// The errors of the `Aborted` events among `commands`.
fn aborted(commands: &[Command]) -> Vec<&str> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Log(Event::Aborted { error, .. }) => Some(error.as_str()),
            _ => None,
        })
        .collect()
}

/// The errors of the `Refused` events among `commands`.
fn refused(commands: &[Command]) -> Vec<&str> {
    commands
        .iter()
        .filter_map(|c| match c {
            Command::Log(Event::Refused { error, .. }) => Some(error.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_step_that_failed_without_a_recorded_reason_points_to_the_nodes_log() {
    let (mut world, mut engine, group) = local_create_planned(1, 30_000);
    // The row failed for good, but its failure record was never written.
    let row = world.rows.values_mut().find(|r| r.group == group).unwrap();
    row.status = QueueStatus::Error;
    row.tries = CONFIG.retry.max_tries;
    let commands = world.step(&mut engine);
    assert_eq!(
        aborted(&commands),
        [
            "table 't': CREATE TABLE failed on node n1: a step failed without a recorded reason; \
          see that node's searchd log for [BUDDY] lines"
        ]
    );
}

#[test]
fn a_request_without_its_details_is_refused() {
    let mut world = World::new(Scope::Local, &["n1"], "n1", 1);
    world.request(OpKind::Create, 1, 1, 30_000);
    world.tables.get_mut(&table()).unwrap().request = None;
    let mut engine = engine_in_office(&mut world, 1, "n1");
    let commands = world.step(&mut engine);
    assert_eq!(
        refused(&commands),
        ["table 't': its request carries no details; run the statement again"]
    );
    assert_eq!(world.tables[&table()].status, TableStatus::Failed);
}

#[test]
fn a_clustered_request_on_a_local_node_is_told_to_drop_the_cluster() {
    let mut world = World::new(Scope::Local, &["n1"], "n1", 1);
    world.request(OpKind::Create, 1, 1, 30_000);
    world
        .tables
        .get_mut(&table())
        .unwrap()
        .request
        .as_mut()
        .unwrap()
        .scope = Scope::Cluster(ClusterName::parse("c").unwrap());
    let mut engine = engine_in_office(&mut world, 1, "n1");
    let commands = world.step(&mut engine);
    assert_eq!(
        refused(&commands),
        ["sharded tables of this node are local, not in a cluster: use CREATE TABLE t"]
    );
}

#[test]
fn a_drop_of_a_table_whose_placement_has_a_gap_is_refused_with_what_to_do() {
    let mut world = world_with_tables(&["a:1", "b:1"], &[("t", &["a:1", "b:1"])]);
    for row in world.placement.iter_mut() {
        row.shards = vec![0, 2];
    }
    let request = request_of(&world, "t", 3, 2);
    let state = TableState::requested(OpKind::Drop, request, String::new(), String::new());
    world.tables.insert(table(), state);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    let commands = world.step(&mut engine);
    assert_eq!(
        refused(&commands),
        [
            "table 't': its placement metadata is damaged (shard numbers must be 0..2 without \
          gaps, shard 1 is missing); drop its wrappers and shards with OPTION force=1 on every \
          node"
        ]
    );
}

#[test]
fn a_rebalance_step_that_failed_names_its_node_and_error() {
    let (mut world, mut engine, group) = rebalance_world();
    let row = world.fail_row(&group, 0, "boom");
    let node = world.rows[&row].node.clone();
    assert_eq!(node, id("a:1"));
    let commands = world.step(&mut engine);
    assert_eq!(
        aborted(&commands),
        ["table 't': rebalance failed on node a:1: boom"]
    );
}

#[test]
fn a_node_that_leaves_during_a_rebalance_has_it_undone_and_planned_again() {
    let (mut world, mut engine, group) = rebalance_world();
    assert!(world
        .rows
        .values()
        .any(|r| r.group == group && r.node == id("b:1")));
    world.members.as_mut().unwrap().active.remove(&id("b:1"));
    let commands = world.step(&mut engine);
    assert_eq!(
        aborted(&commands),
        ["table 't': node b:1 left during the rebalance; it is undone and planned again"]
    );
}

/// A local table `t` with two shards on `n1`, created and done.
fn local_done_world() -> World {
    let mut world = World::new(Scope::Local, &["n1"], "n1", 1);
    world.request(OpKind::Create, 2, 1, 30_000);
    let state = world.tables.get_mut(&table()).unwrap();
    state
        .start(GroupName::from("shard_create_t_1"), vec![], vec![])
        .unwrap();
    state.succeed(ok_result()).unwrap();
    world.placement.push(PlacementRow {
        scope: Scope::Local,
        node: id("n1"),
        table: table(),
        shards: vec![0, 1],
    });
    world
}

#[test]
fn operator_statements_on_a_local_table_say_it_is_not_in_a_cluster() {
    use crate::sharding::records::ControlAction::*;
    let mut world = local_done_world();
    let mut engine = engine_in_office(&mut world, 1, "n1");
    control(&mut world, Pause);
    world.controls.get_mut(&table()).unwrap().scope =
        Scope::Cluster(ClusterName::parse("c").unwrap());
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err("table 't' is not in a cluster: sharded tables of this node are local (use t)".into())
    );
    control(&mut world, Rebalance);
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err(
            "table 't' is sharded on this node alone (not in a cluster): there is nowhere to \
             move its shards"
                .into()
        )
    );
    assert!(world.groups.is_empty());
}

#[test]
fn operator_statements_on_a_table_that_is_not_sharded_are_refused() {
    use crate::sharding::records::ControlAction::*;
    let c = ClusterName::parse("c").unwrap();
    let mut world = World::new(Scope::Cluster(c), &["a:1", "b:1"], "a:1", 1);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    for action in [Rebalance, Pause] {
        control(&mut world, action);
        world.step(&mut engine);
        assert_eq!(
            answer(&world),
            Err("table 't' is not a sharded table".into())
        );
    }
}

#[test]
fn a_settled_rebalance_cannot_be_paused() {
    use crate::sharding::records::ControlAction::Pause;
    let (mut world, mut engine, group) = settled_after_losing_c();
    assert!(world.groups[&group].is_settled());
    control(&mut world, Pause);
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err(
            "the rebalance of table 't' has committed its placement; only clean-up on nodes \
             that were down is left, and it cannot be paused"
                .into()
        )
    );
}

#[test]
fn a_stopping_rebalance_cannot_be_paused() {
    use crate::sharding::records::{ControlAction::*, StopKind};
    let (mut world, mut engine, group) = rebalance_world();
    control(&mut world, Stop(StopKind::Graceful));
    world.step(&mut engine);
    assert_eq!(world.groups[&group].operator_state(), "stopping");
    control(&mut world, Pause);
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err("the rebalance of table 't' is stopping: it cannot be paused".into())
    );
}

#[test]
fn rebalance_table_waits_for_another_operation_of_the_table() {
    use crate::sharding::records::ControlAction::Rebalance;
    let mut world = world_with_tables(&["a:1", "b:1"], &[("t", &["a:1", "b:1"])]);
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    let cleanup = GroupName::new(GroupKind::Cleanup, &table(), queue_id(1, 1));
    world.groups.insert(
        cleanup.clone(),
        GroupRecord::committed(GroupKind::Cleanup, &table(), 1, &id("a:1"), 0),
    );
    control(&mut world, Rebalance);
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err(format!(
            "table 't' has an operation under way (group {cleanup}); try again when it is done"
        ))
    );
}

#[test]
fn rebalance_table_without_a_primary_component_moves_nothing() {
    use crate::sharding::records::ControlAction::Rebalance;
    let mut world = world_with_tables(&["a:1", "b:1"], &[("t", &["a:1", "b:1"])]);
    world.members.as_mut().unwrap().primary = false;
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    control(&mut world, Rebalance);
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err("the cluster has no primary component on this side: nothing can be moved".into())
    );
    assert!(world.groups.is_empty());
}

#[test]
fn rebalance_table_of_an_rf_1_table_on_a_node_that_is_down_asks_for_the_node() {
    use crate::sharding::records::ControlAction::Rebalance;
    let mut world = world_with_tables(&["a:1", "b:1"], &[("t", &["b:1"])]);
    world.members.as_mut().unwrap().active.remove(&id("b:1"));
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    control(&mut world, Rebalance);
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err(
            "cannot rebalance table 't': it has RF=1 and its shards on b:1 are not reachable; \
             bring that node back (nothing can be copied from it)"
                .into()
        )
    );
}

#[test]
fn rebalance_table_refused_for_another_reason_names_the_table_once() {
    use crate::sharding::records::ControlAction::Rebalance;
    let nodes = ["a:1", "b:1", "c:1", "d:1", "e:1"];
    let mut world = world_with_tables(&nodes, &[("t", &["a:1", "b:1", "c:1"])]);
    let active = &mut world.members.as_mut().unwrap().active;
    active.remove(&id("b:1"));
    active.remove(&id("c:1"));
    let mut engine = engine_in_office(&mut world, 1, "a:1");
    control(&mut world, Rebalance);
    world.step(&mut engine);
    assert_eq!(
        answer(&world),
        Err(
            "cannot rebalance table 't': the unreachable copies of shard 0 (b:1, c:1) could \
             still be a majority of its replica set; waiting for them to return"
                .into()
        )
    );
}
