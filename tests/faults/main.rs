//! The fault suite: for every failpoint a CREATE or a DROP passes, abort the
//! process there (as `kill -9` would) on the master and on a non-master,
//! then check that the cluster becomes consistent within a bound
//! ([`harness::SETTLE_BOUND`], judged by `shardbuddy::check`) and that the
//! client's answer was true: OK means done; shardbuddy's error means undone
//! (or says the outcome is unknown); searchd's own error (its helper died)
//! says nothing about the outcome, but a CREATE whose helper died before it
//! was done is undone (README, "When shardbuddy stops in the middle of a
//! statement"). No acknowledged row may be lost.
//!
//! `cargo test --test faults` runs the CI subset: every case once, with
//! table shapes and the non-master drawn from a printed seed
//! (`SHARDBUDDY_SEED=<n>` replays a run). `cargo test --test faults --
//! --ignored campaign` runs `SHARDBUDDY_FAULT_ROUNDS` (default 5) rounds of
//! every case.

#[path = "../sharding_support/mod.rs"]
mod sharding_support;

mod disruption;
mod harness;
mod rebalance;
mod soak;
mod storm;

use std::fmt;
use std::time::{Duration, Instant};

use harness::*;
use shardbuddy::failpoint;
use sharding_support::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Create,
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Master,
    NonMaster,
}

/// One fault: abort at `point` on a node of `role`. The statement is sent
/// to that node, or with `elsewhere` to another one (whose shardbuddy then
/// lives to answer).
#[derive(Debug, Clone, Copy)]
struct Case {
    op: Op,
    point: &'static str,
    role: Role,
    elsewhere: bool,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {} with {}=abort on the {:?}",
            self.op,
            if self.elsewhere {
                "sent elsewhere"
            } else {
                "sent there"
            },
            self.point,
            self.role
        )
    }
}

/// Every case of `op`: each failpoint on the master and each that a
/// non-master passes (all but the master's own) on a non-master; the
/// master's and the executor's also with the statement sent to another
/// node (the helper's request path is only passed where it was sent).
fn cases(op: Op) -> Vec<Case> {
    let mut out = Vec::new();
    for &point in failpoint::NAMES {
        let roles: &[Role] = if point.starts_with("master.") {
            &[Role::Master]
        } else {
            &[Role::Master, Role::NonMaster]
        };
        let elsewhere: &[bool] = if point.starts_with("helper.") {
            &[false]
        } else {
            &[false, true]
        };
        for &role in roles {
            for &elsewhere in elsewhere {
                out.push(Case {
                    op,
                    point,
                    role,
                    elsewhere,
                });
            }
        }
    }
    out
}

/// What one case found.
#[derive(Debug, Default)]
struct Tally {
    cases: usize,
    answered_ok: usize,
    answered_error: usize,
    helper_gone: usize,
    /// Answers the outcome contradicts, and other broken promises.
    violations: Vec<String>,
    /// Answers that said the outcome is not known yet.
    unknown: Vec<String>,
    slowest_settle: Duration,
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cases", self.cases)?;
        if self.answered_ok + self.answered_error + self.helper_gone > 0 {
            write!(
                f,
                ": {} OK, {} shardbuddy errors, {} searchd errors (helper gone)",
                self.answered_ok, self.answered_error, self.helper_gone
            )?;
        }
        write!(
            f,
            "; 0 inconsistencies (each settled within {:?}, slowest {:.1} s); {} violations",
            SETTLE_BOUND,
            self.slowest_settle.as_secs_f64(),
            self.violations.len()
        )
    }
}

const DROP_ROWS: u64 = 20;
const ANCHOR_ROWS: u64 = 100;

/// The fault suite's clusters look for orphans every 2 s (60 s by
/// default): what a fault leaves on a node that was away and that no
/// operation accounts for (an empty internal cluster it kept) is the
/// cleanup's to remove, and the settle bound covers it.
const FAULT_ENV: &[(&str, &str)] = &[("SHARDBUDDY_CLEANUP_MS", "2000")];

/// A cluster of three nodes with the anchor table `keep` (its rows must
/// survive every fault; it also makes `SHOW SHARDING MASTER` answer).
async fn fault_cluster() -> Nodes {
    let nodes = cluster_of(3, FAULT_ENV).await;
    let mut c = conn(&nodes[0]).await;
    exec(
        &mut c,
        "CREATE TABLE c:keep (id bigint, title text) shards='2' rf='2'",
    )
    .await;
    insert_docs(&mut c, "keep", 1..=ANCHOR_ROWS).await;
    nodes
}

/// Every node still reads all of the anchor table's rows.
async fn anchor_intact(nodes: &[manticore_sim::testkit::SimNode]) {
    for node in nodes {
        let mut c = conn(node).await;
        assert_eq!(
            count(&mut c, "SELECT COUNT(*) FROM keep").await,
            ANCHOR_ROWS,
            "rows of keep through node {}",
            node.index()
        );
    }
}

/// Runs one case on table `table`; adds what it found to `tally`.
async fn run_case(nodes: &Nodes, rng: &mut Rng, case: Case, table: &str, tally: &mut Tally) {
    let shards = rng.range(1, 3);
    let rf = rng.range(1, 3);
    let create =
        format!("CREATE TABLE c:{table} (id bigint, title text) shards='{shards}' rf='{rf}'");
    if case.op == Op::Drop {
        let mut c = conn(&nodes[0]).await;
        exec_when_synced(&mut c, &create).await;
        insert_docs(&mut c, table, 1..=DROP_ROWS).await;
        wait_consistent(&nodes[0], SETTLE_BOUND, &format!("{table} created")).await;
    }
    let master = master_index(nodes).await;
    let target = match case.role {
        Role::Master => master,
        Role::NonMaster => {
            let others: Vec<usize> = (0..nodes.len()).filter(|i| *i != master).collect();
            others[rng.range(0, others.len() as u64 - 1) as usize]
        }
    };
    let node = &nodes[target];
    let requester = if case.elsewhere {
        let others: Vec<usize> = (0..nodes.len()).filter(|i| *i != target).collect();
        others[rng.range(0, others.len() as u64 - 1) as usize]
    } else {
        target
    };
    // Connect first: the connection's own set-up must not meet the failpoint.
    let mut c = conn(&nodes[requester]).await;
    let starts = helper_starts(node);
    let spec = format!("{}=abort", case.point);
    set_failpoints(node, &spec);
    let sql = match case.op {
        Op::Create => create.clone(),
        Op::Drop => format!("DROP TABLE c:{table}"),
    };
    let answer = Answer::of(run(&mut c, &sql).await);
    drop(c);
    let settle = wait_consistent(&nodes[0], SETTLE_BOUND, &format!("{case} ({table})")).await;
    wait_helpers(nodes).await;
    let reached = helper_starts(node) > starts;
    if !reached {
        set_failpoints(node, "");
    }
    let exists = placed(&nodes[0], table).await;
    eprintln!(
        "{case} (node {target}, sent to {requester}, {table}: shards {shards} rf {rf}): answer {answer:?}, \
         table {}, consistent after {:.1} s",
        if exists { "exists" } else { "absent" },
        settle.as_secs_f64()
    );
    tally.cases += 1;
    tally.slowest_settle = tally.slowest_settle.max(settle);
    match answer {
        Answer::Ok => tally.answered_ok += 1,
        Answer::HelperGone(_) => tally.helper_gone += 1,
        Answer::Error(_) => tally.answered_error += 1,
    }
    let mut violation = |what: String| {
        eprintln!("VIOLATION: {case} ({table}): {what}");
        tally.violations.push(format!("{case} ({table}): {what}"));
    };
    if !reached {
        violation("the failpoint was never reached".into());
    }
    let truth = match (case.op, &answer) {
        (Op::Create, Answer::Ok) => exists,
        (Op::Drop, Answer::Ok) => !exists,
        // Done just before its helper died: it stays done.
        (Op::Create, Answer::HelperGone(_)) => {
            case.point == failpoint::HELPER_BEFORE_REPLY || !exists
        }
        (Op::Drop, Answer::HelperGone(_)) => true,
        (_, a) if a.says_outcome_unknown() => true,
        (Op::Create, Answer::Error(_)) => !exists,
        (Op::Drop, Answer::Error(_)) => exists,
    };
    if !truth {
        violation(format!(
            "answered {answer:?} but the table {}",
            if exists { "exists" } else { "is absent" }
        ));
    }
    if exists {
        for problem in rows_kept_then_dropped(nodes, case.op, table).await {
            violation(problem);
        }
    }
}

/// A table that outlived a fault: it holds what was acknowledged (a
/// DROP's table its `DROP_ROWS`), and a created one takes writes; what each
/// node reads otherwise. Then it is dropped.
async fn rows_kept_then_dropped(
    nodes: &[manticore_sim::testkit::SimNode],
    op: Op,
    table: &str,
) -> Vec<String> {
    let mut c = conn(&nodes[0]).await;
    let want = if op == Op::Create {
        insert_docs(&mut c, table, 1..=10).await;
        10
    } else {
        DROP_ROWS
    };
    let mut problems = Vec::new();
    for n in nodes.iter() {
        let mut c = conn(n).await;
        let got = count(&mut c, &format!("SELECT COUNT(*) FROM {table}")).await;
        if got != want {
            problems.push(format!(
                "{got} rows through node {} instead of {want}",
                n.index()
            ));
        }
    }
    exec_when_synced(&mut c, &format!("DROP TABLE c:{table}")).await;
    wait_consistent(
        &nodes[0],
        SETTLE_BOUND,
        &format!("{table} dropped after the case"),
    )
    .await;
    problems
}

/// Runs every case of `ops`, `rounds` times, on one cluster.
async fn campaign(test: &str, ops: &[Op], rounds: usize) -> Tally {
    let seed = seed(test);
    let mut rng = Rng::new(seed);
    let nodes = fault_cluster().await;
    wait_consistent(&nodes[0], SETTLE_BOUND, "the new cluster").await;
    let mut tally = Tally::default();
    let mut n = 0;
    for round in 0..rounds {
        for &op in ops {
            for case in cases(op) {
                n += 1;
                let table = format!("f{n}");
                run_case(&nodes, &mut rng, case, &table, &mut tally).await;
            }
        }
        anchor_intact(&nodes).await;
        eprintln!("{test}: round {} of {rounds} done: {tally}", round + 1);
    }
    eprintln!("{test}: seed {seed}: {tally}");
    tally
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_aborted_at_each_failpoint_answers_true_and_settles() {
    let tally = campaign("create", &[Op::Create], 1).await;
    assert!(tally.violations.is_empty(), "{:#?}", tally.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_aborted_at_each_failpoint_answers_true_and_settles() {
    let tally = campaign("drop", &[Op::Drop], 1).await;
    assert!(tally.violations.is_empty(), "{:#?}", tally.violations);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalancing_aborted_at_each_failpoint_heals_without_losing_rows() {
    let tally = rebalance::rebalance_campaign("rebalance", 1).await;
    assert!(tally.violations.is_empty(), "{:#?}", tally.violations);
}

/// Found by the storm: `CREATE TABLE IF NOT EXISTS` answered OK while
/// another CREATE of the table was still running (or being undone, after
/// its shardbuddy died), and the table then did not exist. Now, while a
/// CREATE or DROP of the table is under way, `IF [NOT] EXISTS` answers that
/// it is in progress. The first CREATE is held in the executors by a delay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_defect_if_not_exists_during_another_create_is_not_ok() {
    let nodes = cluster_of(3, &[]).await;
    for node in nodes.iter() {
        set_failpoints(node, "executor.before_run=delay(1500)");
    }
    let first = {
        let url = nodes[1].mysql_url();
        tokio::spawn(async move {
            let opts = mysql_async::Opts::from_url(&url).expect("url");
            let mut c = mysql_async::Conn::new(opts).await.expect("conn");
            run(
                &mut c,
                "CREATE TABLE c:t (id bigint, title text) shards='2' rf='2'",
            )
            .await
        })
    };
    let mut third = conn(&nodes[2]).await;
    wait_until("the first CREATE is under way", SETTLE_BOUND, async || {
        traces_of(&mut third, "t")
            .await
            .contains(&"table:t".to_string())
    })
    .await;
    let again = run(
        &mut third,
        "CREATE TABLE IF NOT EXISTS c:t (id bigint, title text) shards='2' rf='2'",
    )
    .await;
    let placed_then = placed(&nodes[2], "t").await;
    assert!(
        again.is_err() || placed_then,
        "CREATE IF NOT EXISTS answered {again:?} while t is not placed"
    );
    assert_eq!(
        again,
        Err(
            "table 't': a CREATE or DROP of this table is in progress; retry when it has finished"
                .into()
        )
    );
    let dropped = run(&mut third, "DROP TABLE IF EXISTS c:t").await;
    assert!(
        dropped.is_err(),
        "DROP IF EXISTS answered {dropped:?} during the CREATE"
    );
    assert_eq!(first.await.expect("first CREATE"), Ok(()));
    for node in nodes.iter() {
        set_failpoints(node, "");
    }
    assert!(placed(&nodes[0], "t").await);
    wait_consistent(&nodes[0], SETTLE_BOUND, "after the CREATE").await;
}

/// A failed read of the outcome (here `helper.after_request=error(…)`)
/// answered the client with that error at once, while the operation went
/// on and succeeded. Now the read is retried; when it keeps failing until
/// the statement's deadline, the answer says the outcome is not known and
/// how to learn it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_reads_of_the_outcome_are_retried_and_never_answer_an_untrue_error() {
    let nodes = cluster_of(3, &[("SHARDBUDDY_ROLLBACK_GRACE_MS", "500")]).await;
    let node = &nodes[1];
    set_failpoints(node, "helper.after_request=error(injected read failure)");
    let create = {
        let url = node.mysql_url();
        tokio::spawn(async move {
            let opts = mysql_async::Opts::from_url(&url).expect("url");
            let mut c = mysql_async::Conn::new(opts).await.expect("conn");
            run(
                &mut c,
                "CREATE TABLE c:r1 (id bigint, title text) shards='2' rf='2'",
            )
            .await
        })
    };
    wait_until("the CREATE is done", SETTLE_BOUND, async || {
        placed(&nodes[0], "r1").await
    })
    .await;
    set_failpoints(node, "");
    assert_eq!(create.await.expect("create task"), Ok(()));
    assert!(node
        .log_text()
        .contains("cannot read the outcome of a statement yet"));

    set_failpoints(node, "helper.after_request=error(injected read failure)");
    let mut c = conn(node).await;
    let answer = run(
        &mut c,
        "CREATE TABLE c:r2 (id bigint, title text) shards='2' rf='2' timeout='1'",
    )
    .await;
    set_failpoints(node, "");
    assert_eq!(
        answer,
        Err(
            "table 'r2': the statement was handed over but its outcome cannot be read \
             (injected read failure); check SHOW SHARDING STATUS r2 before running it again"
                .into()
        )
    );
    wait_consistent(&nodes[0], SETTLE_BOUND, "after the CREATEs").await;
}

/// A step that fails on one node for good: a statement fault of the
/// simulator fails every `CREATE TABLE IF NOT EXISTS system.t_s…` that node 2
/// receives (with shards='2' rf='2' on three nodes every node holds a copy).
/// The CREATE answers an error that names the failure, is undone (the
/// checker finds the cluster consistent, nothing of t is left), and once the
/// fault is cleared the same CREATE succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_create_failing_for_good_on_one_node_fails_the_create_and_leaves_nothing() {
    use manticore_sim::testkit::{clear_statement_faults, fail_statement, Hits};
    const CREATE: &str = "CREATE TABLE c:t (id bigint, title text) shards='2' rf='2'";
    const FAILURE: &str = "injected: no space left on device";
    let nodes = cluster_of(3, &[]).await;
    fail_statement(
        &nodes[1],
        "CREATE TABLE IF NOT EXISTS system.t_s*",
        Hits::Every,
        FAILURE,
    )
    .expect("set the statement fault");
    let mut c = conn(&nodes[0]).await;
    let started = Instant::now();
    let answer = run(&mut c, CREATE).await;
    eprintln!(
        "CREATE with a failing shard on node 2: {answer:?} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let error = answer.expect_err("the CREATE fails");
    assert!(
        error.contains(FAILURE) && error.contains(&nodes[1].node_id()),
        "the answer names the failure and its node: {error}"
    );
    assert!(
        nodes[1]
            .log_text()
            .contains("sim: statement fault: failing"),
        "the fault was hit"
    );
    let report = check_through(&nodes[0]).await.expect("the checker runs");
    assert!(
        report.is_consistent(),
        "the failed CREATE left something behind: {:?}",
        report.discrepancies
    );
    assert!(!placed(&nodes[0], "t").await, "t is not placed");
    for node in nodes.iter() {
        let mut c = conn(node).await;
        let mut left = Vec::new();
        for sql in ["SHOW TABLES", "SHOW TABLES FROM system"] {
            left.extend(
                rows(&mut c, sql)
                    .await
                    .into_iter()
                    .map(|r| r[0].clone())
                    .filter(|t| t == "t" || t.trim_start_matches("system.").starts_with("t_s")),
            );
        }
        assert!(left.is_empty(), "node {} keeps {left:?}", node.index());
    }

    clear_statement_faults(&nodes[1]).expect("clear the statement faults");
    assert_eq!(run(&mut c, CREATE).await, Ok(()));
    assert!(placed(&nodes[0], "t").await);
    wait_consistent(&nodes[0], SETTLE_BOUND, "after the second CREATE").await;
}

/// Regression (found by the disruption campaign, seed 1796449090861693157
/// and others): a holder of a shard that is away (killed, or cut off by a
/// partition) after the DROP was planned comes back with the shard still in
/// the replication cluster the others deleted meanwhile, and `DROP TABLE`
/// of it is refused there (`unable to drop a cluster table`); after a
/// partition that cluster is also non-primary there for good. The DROP must
/// finish when the node is back, leaving nothing behind.
/// When the holder goes away during the DROP.
#[derive(Debug, Clone, Copy)]
enum Away {
    /// Planned with it, before any step ran: it misses the detach too.
    BeforeTheSteps,
    /// Once the shard is detached on both holders, before the survivor
    /// deletes the emptied cluster: it keeps the cluster, empty.
    AfterTheDetach,
}

async fn drop_with_a_shard_holder_away(fault: disruption::Fault, when: Away) {
    // No other table: the shard's replica set has a cluster of its own.
    let mut nodes = cluster_of(3, &[]).await;
    let mut c = conn(&nodes[0]).await;
    exec(
        &mut c,
        "CREATE TABLE c:h (id bigint, title text) shards='1' rf='2'",
    )
    .await;
    insert_docs(&mut c, "h", 1..=DROP_ROWS).await;
    wait_consistent(&nodes[0], SETTLE_BOUND, "h created").await;
    let master = master_index(&nodes).await;
    let holders: Vec<usize> = copies(&mut c, "h")
        .await
        .iter()
        .filter_map(|copy| nodes.iter().position(|n| n.node_id() == copy.node))
        .collect();
    // The holder that is not the first of the shard's replicas: the first
    // one detaches the shard from the cluster for both, and deletes it.
    let victim = *holders
        .iter()
        .max_by_key(|i| nodes[**i].node_id())
        .expect("holders");
    assert_ne!(victim, master, "the master is node 0, the first one");
    let requester = (0..3).find(|i| *i != victim).expect("a requester");
    let survivor = *holders.iter().find(|i| **i != victim).expect("survivor");
    let slowed = match when {
        // The master plans with every node there, then waits before writing
        // the plan: the holder goes away in that second.
        Away::BeforeTheSteps => {
            set_failpoints(&nodes[master], "master.after_plan=delay(1000)");
            master
        }
        // The survivor takes 1.5 s to record each step it ran.
        Away::AfterTheDetach => {
            set_failpoints(&nodes[survivor], "executor.after_run=delay(1500)");
            survivor
        }
    };
    let statement = tokio::spawn(run_on(
        nodes[requester].mysql_url(),
        "DROP TABLE c:h".to_string(),
    ));
    match when {
        Away::BeforeTheSteps => tokio::time::sleep(Duration::from_millis(300)).await,
        Away::AfterTheDetach => {
            let mut there = conn(&nodes[victim]).await;
            wait_until(
                "the shard detached on the holder that goes away",
                Duration::from_secs(30),
                async || {
                    rows(&mut there, "SHOW STATUS LIKE 'cluster%indexes'")
                        .await
                        .iter()
                        .all(|r| !r[1].contains("system.h_s0"))
                },
            )
            .await;
        }
    }
    let others: Vec<&manticore_sim::testkit::SimNode> =
        (0..3).filter(|i| *i != victim).map(|i| &nodes[i]).collect();
    match fault {
        disruption::Fault::Kill => nodes[victim].kill(),
        disruption::Fault::Partition => {
            manticore_sim::testkit::partition(&[&[&nodes[victim]], &others]).expect("partition")
        }
    }
    // Back once the survivors have done their part (the shard detached and
    // dropped, the emptied cluster deleted): only its own steps are left.
    let away = nodes[victim].node_id();
    let mut admin = conn(&nodes[master]).await;
    wait_until(
        "only the steps of the node that is away left",
        Duration::from_secs(30),
        async || {
            let steps = rows(
                &mut admin,
                "SELECT node, status FROM system.sharding_queue \
                 WHERE REGEX(operation_group, '^shard_drop_h_') LIMIT 100",
            )
            .await;
            let left: Vec<&Vec<String>> = steps.iter().filter(|r| r[1] != "processed").collect();
            !left.is_empty() && left.iter().all(|r| r[0] == away)
        },
    )
    .await;
    set_failpoints(&nodes[slowed], "");
    match fault {
        disruption::Fault::Kill => nodes[victim].restart().expect("restart"),
        disruption::Fault::Partition => {
            let all: Vec<&manticore_sim::testkit::SimNode> = nodes.iter().collect();
            manticore_sim::testkit::heal(&all).expect("heal")
        }
    }
    let answer = Answer::of(statement.await.expect("the statement's task"));
    wait_helpers(&nodes).await;
    let settle = wait_consistent(&nodes[0], SETTLE_BOUND, "h dropped with a holder away").await;
    let exists = placed(&nodes[0], "h").await;
    eprintln!(
        "DROP with holder {victim} away ({fault:?}, {when:?}): answer {answer:?}, table {}, \
         consistent after {:.1} s",
        if exists { "exists" } else { "absent" },
        settle.as_secs_f64()
    );
    assert!(!exists, "the DROP finished once the node was back");
    assert!(
        answer == Answer::Ok || answer.says_outcome_unknown(),
        "{answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_whose_shard_holder_died_after_planning_finishes_when_it_returns() {
    drop_with_a_shard_holder_away(disruption::Fault::Kill, Away::BeforeTheSteps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_whose_shard_holder_was_cut_off_after_planning_finishes_after_the_heal() {
    drop_with_a_shard_holder_away(disruption::Fault::Partition, Away::BeforeTheSteps).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_whose_shard_holder_died_after_the_detach_leaves_no_empty_cluster() {
    drop_with_a_shard_holder_away(disruption::Fault::Kill, Away::AfterTheDetach).await;
}

/// `SHARDBUDDY_STORM_SECS` (default 20) of concurrent CREATE/DROP on every
/// node under random aborts and helper kills.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_create_drop_storm_under_chaos_answers_true_and_settles() {
    let secs = std::env::var("SHARDBUDDY_STORM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let tally = storm::storm("storm", secs).await;
    assert!(tally.violations.is_empty(), "{:#?}", tally.violations);
}

/// The full campaign: `SHARDBUDDY_FAULT_ROUNDS` (default 5) rounds of every
/// CREATE, DROP and rebalancing case, then a storm of
/// `SHARDBUDDY_STORM_SECS` (default 60 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: the full fault campaign"]
async fn campaign_of_every_case_in_many_rounds() {
    let rounds = std::env::var("SHARDBUDDY_FAULT_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let started = Instant::now();
    let storm_secs = std::env::var("SHARDBUDDY_STORM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let tally = campaign("campaign", &[Op::Create, Op::Drop], rounds).await;
    let rebalancing = rebalance::rebalance_campaign("campaign-rebalance", rounds).await;
    let storm = storm::storm("campaign-storm", storm_secs).await;
    eprintln!(
        "campaign: {rounds} rounds in {:.0} s: CREATE/DROP {tally}; rebalancing {rebalancing}; \
         storm of {storm_secs} s {storm}",
        started.elapsed().as_secs_f64()
    );
    for violations in [
        &tally.violations,
        &rebalancing.violations,
        &storm.violations,
    ] {
        assert!(violations.is_empty(), "{violations:#?}");
    }
}

/// Node kills and partitions at random moments of CREATE and DROP: one run
/// of each pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_kills_and_partitions_during_create_and_drop_leave_true_answers() {
    let tally = disruption::disruption_campaign("disruption", 1).await;
    assert!(tally.violations.is_empty(), "{:#?}", tally.violations);
    unknown_outcomes_say_how_to_learn_them(&tally);
}

/// A statement whose outcome is not known yet says so, and how to learn it.
fn unknown_outcomes_say_how_to_learn_them(tally: &Tally) {
    for answer in &tally.unknown {
        assert!(
            answer
                .contains("has not finished and may still take effect; check SHOW SHARDING STATUS")
                || answer.contains("its outcome cannot be read"),
            "{answer}"
        );
    }
}

/// The same, `SHARDBUDDY_DISRUPTION_ROUNDS` (default 20) runs of each pair.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: node kills and partitions, 20 seeded runs of each"]
async fn node_kills_and_partitions_campaign() {
    let rounds = std::env::var("SHARDBUDDY_DISRUPTION_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let tally = disruption::disruption_campaign("disruption campaign", rounds).await;
    assert!(tally.violations.is_empty(), "{:#?}", tally.violations);
    unknown_outcomes_say_how_to_learn_them(&tally);
}

/// Soak: `SHARDBUDDY_SOAK_SECS` (default 1800) of writes and reads while
/// nodes are killed and come back; 0 lost rows, no helper growth.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long: the soak"]
async fn soak_with_writers_readers_and_node_kills() {
    let secs = std::env::var("SHARDBUDDY_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1800);
    soak::soak(secs).await;
}
