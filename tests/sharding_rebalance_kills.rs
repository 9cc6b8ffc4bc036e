//! A shard of an `rf=1` table moves to a node that joins, and the
//! shardbuddy that just ran one step of the move is killed (`kill -9`) right
//! after it: one test per step. searchd restarts its helper; the move must
//! resume or roll back, with no row lost, no copy served twice or left
//! behind, and the table balanced in the end.
//!
//! The nodes run the simulator's realistic cost profile, so that steps take
//! as long as on real searchd and the kill lands between two of them.

mod sharding_support;

use std::collections::BTreeSet;
use std::time::Duration;

use sharding_support::traffic::{lost_writes, Traffic, FIRST_WRITE_ID};
use sharding_support::*;

const SHARDS: u32 = 4;
const ROWS: u64 = 10_000;
/// Steps of the move the plan makes (4 shards on 3 nodes, a 4th joins: one
/// shard moves through a temporary cluster; `SHARDBUDDY NOOP` rows are the
/// barriers between phases).
const STEPS: usize = 15;

/// One step of the move: its queue id, the node that runs it, its status.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    id: u64,
    node: String,
    query: String,
    status: String,
}

async fn move_rows(c: &mut mysql_async::Conn) -> Vec<Row> {
    let mut found: Vec<Row> = rows(
        c,
        "SELECT id, node, query, status FROM system.sharding_queue \
         WHERE REGEX(operation_group, '^rebalance_t_') LIMIT 1000",
    )
    .await
    .into_iter()
    .map(|r| Row {
        id: r[0].parse().expect("id"),
        node: r[1].clone(),
        query: r[2].clone(),
        status: r[3].clone(),
    })
    .collect();
    found.sort_by_key(|r| r.id);
    found
}

async fn kill_after_step(step: usize) {
    let env = [
        ("MANTICORE_SIM_PROFILE", "realistic"),
        ("SHARDBUDDY_REBALANCE_RETRY_S", "1"),
        ("SHARDBUDDY_LEASE_TIMEOUT_MS", "1500"),
    ];
    let mut nodes = cluster_of(3, &env).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        &format!("CREATE TABLE c:t (id bigint, title text) shards='{SHARDS}' rf='1'"),
    )
    .await;
    insert_docs(&mut first, "t", 1..=ROWS).await;
    let traffic = Traffic::start(&nodes[0].mysql_url(), "t", ROWS).await;
    traffic.wait_for_writes(20, Duration::from_secs(10)).await;

    nodes.0.push(start(4, &env));
    join(&nodes[3], &nodes[0]).await;
    // Watch the move's rows; kill the node that ran step `step` once it has.
    let mut seen = Vec::new();
    wait_until(
        &format!("step {step} of the move to run"),
        Duration::from_secs(60),
        async || {
            seen = move_rows(&mut first).await;
            seen.get(step - 1).is_some_and(|r| r.status == "processed")
        },
    )
    .await;
    assert_eq!(seen.len(), STEPS, "the move's steps changed: {seen:#?}");
    let ran = &seen[step - 1];
    let node = nodes
        .iter()
        .find(|n| n.node_id() == ran.node)
        .expect("the step's node");
    let restarts = node.log_text().matches("[BUDDY] started").count();
    kill_9(helper_pid(node).expect("the node runs its shardbuddy"));
    println!(
        "step {step}/{STEPS} ({}) ran on {}: its shardbuddy killed",
        ran.query, ran.node
    );
    wait_for_log_count(node, "[BUDDY] started", restarts + 1);

    let fourth = nodes[3].node_id();
    wait_until(
        "the table balanced over four nodes",
        Duration::from_secs(90),
        async || {
            let copies = copies(&mut first, "t").await;
            settled(&copies, SHARDS, 1, 4) && copies.iter().any(|c| c.node == fourth)
        },
    )
    .await;
    traffic.wait_for_writes(20, Duration::from_secs(20)).await;
    let record = traffic.stop().await;
    let refused: Vec<_> = record
        .write_errors
        .iter()
        .filter(|(_, e)| !e.contains("table 't' absent"))
        .collect();
    assert!(refused.is_empty(), "writes refused: {refused:?}");
    let read_errors: Vec<_> = record
        .read_errors
        .keys()
        .filter(|e| !e.contains("unknown local table(s) 't'"))
        .collect();
    assert!(read_errors.is_empty(), "read errors: {read_errors:?}");
    assert!(record.short_reads.is_empty(), "{:?}", record.short_reads);

    // Every acknowledged write and every loaded row is where its shard is,
    // once.
    let total = count(&mut first, "SELECT COUNT(*) FROM t").await;
    assert_eq!(total, ROWS + record.acknowledged.len() as u64);
    let lost = lost_writes(&mut first, &[&record]).await;
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
    let copies = copies(&mut first, "t").await;
    for copy in &copies {
        let holder = nodes
            .iter()
            .find(|n| n.node_id() == copy.node)
            .expect("holder");
        let mut c = conn(holder).await;
        let expected = (1..=ROWS)
            .filter(|id| shard_of(*id, SHARDS) == copy.shard)
            .count() as u64;
        let stored = count(
            &mut c,
            &format!(
                "SELECT COUNT(*) FROM system.t_s{} WHERE id < {FIRST_WRITE_ID}",
                copy.shard
            ),
        )
        .await;
        assert_eq!(stored, expected, "shard {} on {}", copy.shard, copy.node);
    }
    // Nothing left behind: each node holds exactly its placed shards, and no
    // temporary cluster remains.
    wait_until(
        "the clean-up of the move",
        Duration::from_secs(30),
        async || {
            for node in nodes.iter() {
                let mut c = conn(node).await;
                let held: BTreeSet<String> = column(&mut c, "SHOW TABLES FROM system")
                    .await
                    .into_iter()
                    .filter(|t| t.starts_with("system.t_s"))
                    .collect();
                let placed: BTreeSet<String> = copies
                    .iter()
                    .filter(|c| c.node == node.node_id())
                    .map(|c| format!("system.t_s{}", c.shard))
                    .collect();
                let temporary =
                    column(&mut c, "SHOW STATUS LIKE 'cluster_temp_move%_status'").await;
                if held != placed || !temporary.is_empty() {
                    return false;
                }
            }
            true
        },
    )
    .await;
}

macro_rules! kill_after {
    ($($name:ident: $step:expr,)*) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
        async fn $name() {
            kill_after_step($step).await;
        }
    )*};
}

kill_after! {
    killed_after_step_01: 1,
    killed_after_step_02: 2,
    killed_after_step_03: 3,
    killed_after_step_04: 4,
    killed_after_step_05: 5,
    killed_after_step_06: 6,
    killed_after_step_07: 7,
    killed_after_step_08: 8,
    killed_after_step_09: 9,
    killed_after_step_10: 10,
    killed_after_step_11: 11,
    killed_after_step_12: 12,
    killed_after_step_13: 13,
    killed_after_step_14: 14,
    killed_after_step_15: 15,
}
