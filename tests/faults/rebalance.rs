//! Rebalancing under faults: a node holding copies of an RF=2 table dies
//! (the master rebuilds its copies on the survivors) and comes back (the
//! master spreads the copies over it again), with a process aborted at a
//! failpoint of the master or the executor on the way. Each phase must end
//! consistent, with every acknowledged row readable through every live node.

use std::time::Duration;

use manticore_sim::testkit::SimNode;

use crate::harness::*;
use crate::sharding_support::*;
use crate::{Role, Tally};
use shardbuddy::failpoint;

const ROWS: u64 = 200;

/// Failpoints a rebalance passes: the master's and the executor's.
fn points() -> Vec<(&'static str, Role)> {
    let mut out = Vec::new();
    for &point in failpoint::NAMES {
        if point.starts_with("master.") {
            out.push((point, Role::Master));
        } else if point.starts_with("executor.") {
            out.push((point, Role::Master));
            out.push((point, Role::NonMaster));
        }
    }
    out
}

/// Every live node reads `ROWS` rows of `t`.
async fn rows_intact(nodes: &Nodes, live: &[usize]) -> Vec<String> {
    let mut lost = Vec::new();
    for &i in live {
        let mut c = conn(&nodes[i]).await;
        let got = count(&mut c, "SELECT COUNT(*) FROM t").await;
        if got != ROWS {
            lost.push(format!(
                "{got} rows of t through node {i} instead of {ROWS}"
            ));
        }
    }
    lost
}

/// Waits (through `via`) until `t` has 2 active copies of each of its 3
/// shards on `holders` nodes and the checker finds nothing; how long that
/// took.
async fn healed(via: &SimNode, holders: usize, what: &str) -> Duration {
    let started = std::time::Instant::now();
    wait_until(what, SETTLE_BOUND, async || {
        try_copies(via, "t")
            .await
            .is_some_and(|copies| settled(&copies, 3, 2, holders))
    })
    .await;
    wait_consistent(via, SETTLE_BOUND, what).await;
    started.elapsed()
}

pub async fn rebalance_campaign(test: &str, rounds: usize) -> Tally {
    let seed = seed(test);
    let mut rng = Rng::new(seed);
    let env = [("SHARDBUDDY_REBALANCE_RETRY_S", "1")];
    let mut nodes = cluster_of(3, &env).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='3' rf='2'",
    )
    .await;
    insert_docs(&mut first, "t", 1..=ROWS).await;
    drop(first);
    healed(&nodes[0], 3, "t created").await;
    let mut tally = Tally::default();
    for round in 0..rounds {
        for (point, role) in points() {
            // The victim is neither the master nor the node the failpoint
            // is set on; the target, alive throughout, is asked.
            let master = master_index(&nodes).await;
            let target = match role {
                Role::Master => master,
                Role::NonMaster => {
                    let candidates: Vec<usize> =
                        (0..nodes.len()).filter(|i| *i != master).collect();
                    candidates[rng.range(0, candidates.len() as u64 - 1) as usize]
                }
            };
            let victims: Vec<usize> = (0..nodes.len())
                .filter(|i| *i != target && *i != master)
                .collect();
            let victim = victims[rng.range(0, victims.len() as u64 - 1) as usize];
            let case = format!("rebalance with {point}=abort on the {role:?} (node {target}), node {victim} killed");
            let starts = helper_starts(&nodes[target]);
            set_failpoints(&nodes[target], &format!("{point}=abort"));
            nodes[victim].kill();
            let lost_phase = healed(
                &nodes[target],
                2,
                &format!("{case}: healed on the survivors"),
            )
            .await;
            let live: Vec<usize> = (0..nodes.len()).filter(|i| *i != victim).collect();
            let survivors: Vec<_> = live.iter().map(|i| &nodes[*i]).collect();
            for node in &survivors {
                wait_until("helper answers", Duration::from_secs(30), async || {
                    failpoints_of(node).is_some()
                })
                .await;
            }
            let reached = helper_starts(&nodes[target]) > starts;
            if !reached {
                set_failpoints(&nodes[target], "");
            }
            let mut problems = rows_intact(&nodes, &live).await;
            // The node comes back: the same failpoint, on the same node.
            let starts_back = helper_starts(&nodes[target]);
            set_failpoints(&nodes[target], &format!("{point}=abort"));
            nodes[victim].restart().expect("restart");
            wait_for_log(&nodes[victim], "[BUDDY] started", Duration::from_secs(20));
            let back_phase =
                healed(&nodes[target], 3, &format!("{case}: back on three nodes")).await;
            wait_helpers(&nodes).await;
            let reached_back = helper_starts(&nodes[target]) > starts_back;
            if !reached_back {
                set_failpoints(&nodes[target], "");
            }
            problems.extend(rows_intact(&nodes, &[0, 1, 2]).await);
            if !reached {
                problems.push("the failpoint was never reached while healing".into());
            }
            eprintln!(
                "{case}: healed in {:.1} s (failpoint reached: {reached}), back in {:.1} s (reached: {reached_back})",
                lost_phase.as_secs_f64(),
                back_phase.as_secs_f64()
            );
            tally.cases += 1;
            tally.slowest_settle = tally.slowest_settle.max(lost_phase).max(back_phase);
            for p in problems {
                eprintln!("VIOLATION: {case}: {p}");
                tally.violations.push(format!("{case}: {p}"));
            }
        }
        eprintln!("{test}: round {} of {rounds} done: {tally}", round + 1);
    }
    tally
}
