//! Whole-node faults at random moments of a CREATE or a DROP, in the manner
//! of Elasticsearch's disruption tests: a node is killed (`kill -9` of its
//! searchd and, with it, its helper) or cut off from the other two by a
//! partition, a random number of milliseconds after the statement was
//! sent to one of the other nodes. Then the node comes back (restart, or
//! the partition heals), and the cluster must become consistent within
//! [`SETTLE_BOUND`], the client's answer must have been true (OK means done,
//! shardbuddy's error means not done unless it says the outcome is unknown),
//! and no row of the anchor table may be lost. Every run prints its seed.

use std::time::Duration;

use manticore_sim::testkit::{heal, partition};

use crate::harness::*;
use crate::sharding_support::*;
use crate::{anchor_intact, fault_cluster, rows_kept_then_dropped, Op, Tally, DROP_ROWS};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `kill -9` of the node's searchd (its helper dies with it).
    Kill,
    /// The node is cut off from the other two.
    Partition,
}

/// One run: `fault` on node `victim`, `delay_ms` after `op` was sent to
/// node `requester` (never the victim: its answer must be true).
async fn run_one(
    nodes: &mut Nodes,
    rng: &mut Rng,
    (op, fault): (Op, Fault),
    table: &str,
    tally: &mut Tally,
) {
    let shards = rng.range(1, 3);
    let rf = rng.range(1, 2);
    let create =
        format!("CREATE TABLE c:{table} (id bigint, title text) shards='{shards}' rf='{rf}'");
    if op == Op::Drop {
        let mut c = conn(&nodes[0]).await;
        exec_when_synced(&mut c, &create).await;
        insert_docs(&mut c, table, 1..=DROP_ROWS).await;
        wait_consistent(&nodes[0], SETTLE_BOUND, &format!("{table} created")).await;
    }
    let victim = rng.range(0, 2) as usize;
    let others: Vec<usize> = (0..3).filter(|i| *i != victim).collect();
    let requester = others[rng.range(0, 1) as usize];
    let delay_ms = rng.range(0, 400);
    let sql = match op {
        Op::Create => create,
        Op::Drop => format!("DROP TABLE c:{table}"),
    };
    let statement = tokio::spawn(run_on(nodes[requester].mysql_url(), sql));
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    match fault {
        Fault::Kill => nodes[victim].kill(),
        Fault::Partition => {
            let rest: Vec<&manticore_sim::testkit::SimNode> =
                others.iter().map(|i| &nodes[*i]).collect();
            partition(&[&[&nodes[victim]], &rest]).expect("partition");
        }
    }
    let answer = Answer::of(statement.await.expect("the statement's task"));
    match fault {
        Fault::Kill => nodes[victim].restart().expect("restart"),
        Fault::Partition => {
            let all: Vec<&manticore_sim::testkit::SimNode> = nodes.iter().collect();
            heal(&all).expect("heal");
        }
    }
    let what = format!("{op:?} with a {fault:?} of node {victim} after {delay_ms} ms ({table})");
    eprintln!("{what}: answered {answer:?}; waiting for the cluster to settle");
    wait_helpers(nodes).await;
    let settle = wait_consistent(&nodes[0], SETTLE_BOUND, &what).await;
    let exists = placed_anywhere(nodes, table).await;
    eprintln!(
        "{what}, sent to node {requester} (shards {shards} rf {rf}): answer {answer:?}, table {}, \
         consistent after {:.1} s",
        if exists { "exists" } else { "absent" },
        settle.as_secs_f64()
    );
    tally.cases += 1;
    tally.slowest_settle = tally.slowest_settle.max(settle);
    match &answer {
        Answer::Ok => tally.answered_ok += 1,
        Answer::HelperGone(_) => tally.helper_gone += 1,
        Answer::Error(_) => tally.answered_error += 1,
    }
    if answer.says_outcome_unknown() {
        if let Answer::Error(e) = &answer {
            tally.unknown.push(e.clone());
        }
    }
    let truth = match (op, &answer) {
        (_, a) if a.says_outcome_unknown() => true,
        (Op::Create, Answer::Ok) => exists,
        (Op::Drop, Answer::Ok) => !exists,
        (Op::Create, _) => !exists,
        (Op::Drop, _) => exists,
    };
    if !truth {
        let v = format!(
            "{what}: answered {answer:?} but the table {}",
            if exists { "exists" } else { "is absent" }
        );
        eprintln!("VIOLATION: {v}");
        tally.violations.push(v);
    }
    if exists {
        wait_served_everywhere(nodes, table, &what).await;
        for problem in rows_kept_then_dropped(nodes, op, table).await {
            let v = format!("{what}: {problem}");
            eprintln!("VIOLATION: {v}");
            tally.violations.push(v);
        }
    }
}

/// `rounds` runs of each (statement, fault) pair on one cluster.
pub async fn disruption_campaign(test: &str, rounds: usize) -> Tally {
    let seed = seed(test);
    let mut rng = Rng::new(seed);
    let mut nodes = fault_cluster().await;
    wait_consistent(&nodes[0], SETTLE_BOUND, "the new cluster").await;
    let mut tally = Tally::default();
    let mut n = 0;
    for round in 0..rounds {
        for op in [Op::Create, Op::Drop] {
            for fault in [Fault::Kill, Fault::Partition] {
                n += 1;
                let table = format!("d{n}");
                run_one(&mut nodes, &mut rng, (op, fault), &table, &mut tally).await;
            }
        }
        anchor_intact(&nodes).await;
        eprintln!("{test}: round {} of {rounds} done: {tally}", round + 1);
    }
    eprintln!("{test}: seed {seed}: {tally}");
    tally
}
