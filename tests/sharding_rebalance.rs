//! Rebalancing end to end: sim nodes with this shardbuddy binary as their
//! helper, a writer and a reader running throughout, nodes killed, added and
//! brought back.

mod sharding_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use manticore_sim::testkit;
use sharding_support::traffic::{lost_writes, Ack, Record, Traffic, FIRST_WRITE_ID};
use sharding_support::*;

/// Reads fail only where searchd cannot help it: while a node's wrapper is
/// replaced (DROP + CREATE: golden `rebalance` item 6). Anything else is a
/// failure of the rebalance.
const SWAP_WINDOW: &str = "unknown local table(s) 't' in search request";

fn assert_reads_ok(record: &Record) {
    let other: Vec<(&String, &usize)> = record
        .read_errors
        .iter()
        .filter(|(e, _)| !e.contains(SWAP_WINDOW))
        .collect();
    assert!(other.is_empty(), "read errors: {other:?}");
    assert!(
        record.short_reads.is_empty(),
        "reads missed acknowledged rows: {:?}",
        record.short_reads
    );
}

/// A write that arrives while its node's wrapper is replaced finds no table
/// (the same window as [`SWAP_WINDOW`]); any other refusal is a failure.
const SWAP_WINDOW_WRITE: &str = "table 't' absent";

fn assert_writes_ok(record: &Record) {
    let other: Vec<&(Instant, String)> = record
        .write_errors
        .iter()
        .filter(|(_, e)| !e.contains(SWAP_WINDOW_WRITE))
        .collect();
    assert!(other.is_empty(), "write errors: {other:?}");
}

fn swap_window_reads(record: &Record) -> usize {
    record
        .read_errors
        .iter()
        .filter(|(e, _)| e.contains(SWAP_WINDOW))
        .map(|(_, n)| n)
        .sum()
}

/// Every acknowledged write is in the table (read through `c`).
async fn assert_writes_kept(c: &mut mysql_async::Conn, record: &Record) {
    assert_all_writes_kept(c, &[record]).await;
}

/// Every write acknowledged to any of `records` is in the table.
async fn assert_all_writes_kept(c: &mut mysql_async::Conn, records: &[&Record]) {
    let lost = lost_writes(c, records).await;
    assert!(lost.is_empty(), "acknowledged writes lost: {lost:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_node_of_rf2_heals_on_the_survivors_without_losing_a_write() {
    let mut nodes = cluster_of(3, &[]).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='2'",
    )
    .await;
    insert_docs(&mut first, "t", 1..=10_000).await;
    let traffic = Traffic::start(&nodes[0].mysql_url(), "t", 10_000).await;
    traffic.wait_for_writes(20, Duration::from_secs(10)).await;

    let killed_at = Instant::now();
    nodes[2].kill();
    wait_until(
        "every shard back to 2 copies on the survivors",
        Duration::from_secs(30),
        async || settled(&copies(&mut first, "t").await, 4, 2, 2),
    )
    .await;
    let healed_after = killed_at.elapsed();
    traffic.wait_for_writes(50, Duration::from_secs(10)).await;

    nodes[2].restart().expect("restart");
    wait_until(
        "copies on all three nodes again",
        Duration::from_secs(30),
        async || settled(&copies(&mut first, "t").await, 4, 2, 3),
    )
    .await;
    traffic.wait_for_writes(50, Duration::from_secs(10)).await;
    let record = traffic.stop().await;

    println!(
        "rf=2 loss: healed {healed_after:?} after the kill; writes refused for at most {:?} \
         ({} refused, {} acknowledged); {} reads, {} in a wrapper swap",
        record.write_outage(),
        record.write_errors.len(),
        record.acknowledged.len(),
        record.reads,
        swap_window_reads(&record)
    );
    assert_reads_ok(&record);
    // Detection takes about a second in the simulator; writes are back
    // within two more.
    assert!(
        record.write_outage() < Duration::from_secs(3),
        "{:?}",
        record.write_errors
    );
    assert_writes_kept(&mut first, &record).await;
    // Nothing stale is served: every node counts the same rows.
    let total = count(&mut first, "SELECT COUNT(*) FROM t").await;
    assert!(total >= 10_000 + record.acknowledged.len() as u64);
    for node in nodes.iter() {
        let mut c = conn(node).await;
        assert_eq!(
            count(&mut c, "SELECT COUNT(*) FROM t").await,
            total,
            "{}",
            node.node_id()
        );
    }
    let log = nodes[0].log_text();
    assert!(log.contains("Rebalancing due to inactive nodes: "), "{log}");
    assert!(log.contains("Rebalancing completed for table t"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_added_to_rf1_takes_its_share_without_losing_a_row() {
    let mut nodes = cluster_of(3, &[]).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='6' rf='1'",
    )
    .await;
    insert_docs(&mut first, "t", 1..=10_000).await;
    let per_shard = |ids: std::ops::RangeInclusive<u64>| {
        let mut counts = [0u64; 6];
        for id in ids {
            counts[shard_of(id, 6) as usize] += 1;
        }
        counts
    };
    let traffic = Traffic::start(&nodes[0].mysql_url(), "t", 10_000).await;
    traffic.wait_for_writes(20, Duration::from_secs(10)).await;

    nodes.0.push(start(4, &[]));
    join(&nodes[3], &nodes[0]).await;
    let fourth = nodes[3].node_id();
    wait_until(
        "the new node to hold shards",
        Duration::from_secs(30),
        async || {
            let copies = copies(&mut first, "t").await;
            settled(&copies, 6, 1, 4) && copies.iter().any(|c| c.node == fourth)
        },
    )
    .await;
    traffic.wait_for_writes(50, Duration::from_secs(10)).await;
    let record = traffic.stop().await;
    println!(
        "rf=1 add: {} reads, {} in a wrapper swap; {} writes acknowledged, {} refused",
        record.reads,
        swap_window_reads(&record),
        record.acknowledged.len(),
        record.write_errors.len()
    );
    assert_reads_ok(&record);
    assert_writes_ok(&record);
    assert_writes_kept(&mut first, &record).await;

    // Each shard holds exactly the rows routed to it, wherever it lives now.
    let expected = per_shard(1..=10_000);
    let copies = copies(&mut first, "t").await;
    for copy in &copies {
        let node = nodes
            .iter()
            .find(|n| n.node_id() == copy.node)
            .expect("holder");
        let mut c = conn(node).await;
        let stored = count(
            &mut c,
            &format!(
                "SELECT COUNT(*) FROM system.t_s{} WHERE id < {FIRST_WRITE_ID}",
                copy.shard
            ),
        )
        .await;
        assert_eq!(
            stored, expected[copy.shard as usize],
            "shard {} on {}",
            copy.shard, copy.node
        );
    }
    // The moved shards left nothing behind on their old nodes.
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
        assert_eq!(held, placed, "{}", node.node_id());
    }
    let clusters = column(&mut first, "SHOW STATUS LIKE 'cluster_temp_move%_status'").await;
    assert!(clusters.is_empty(), "temporary clusters left: {clusters:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rf3_on_four_nodes_heals_after_one_loss_and_waits_after_the_second() {
    let mut nodes = cluster_of(4, &[]).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='3'",
    )
    .await;
    insert_docs(&mut first, "t", 1..=1_000).await;

    nodes[3].kill();
    wait_until(
        "RF 3 restored on the three survivors",
        Duration::from_secs(30),
        async || settled(&copies(&mut first, "t").await, 4, 3, 3),
    )
    .await;
    nodes[2].kill();
    wait_until(
        "the master to give up on RF 3",
        Duration::from_secs(30),
        async || {
            nodes[0]
                .log_text()
                .contains("Skipping rebalance for table t: only 2 active nodes")
        },
    )
    .await;
    assert_eq!(count(&mut first, "SELECT COUNT(*) FROM t").await, 1_000);
    exec(
        &mut first,
        "INSERT INTO t (id, title) VALUES (5000, 'after two losses')",
    )
    .await;

    nodes[2].restart().expect("restart");
    nodes[3].restart().expect("restart");
    wait_until(
        "copies on all four nodes again",
        Duration::from_secs(45),
        async || settled(&copies(&mut first, "t").await, 4, 3, 4),
    )
    .await;
    for node in nodes.iter() {
        let mut c = conn(node).await;
        assert_eq!(
            count(&mut c, "SELECT COUNT(*) FROM t").await,
            1_001,
            "{}",
            node.node_id()
        );
    }
}

/// Rows of each copy of each shard of `t`, by shard: `(node, rows)`.
async fn copy_counts(
    nodes: &[manticore_sim::testkit::SimNode],
) -> BTreeMap<u32, Vec<(String, u64)>> {
    let mut by_shard: BTreeMap<u32, Vec<(String, u64)>> = BTreeMap::new();
    for node in nodes {
        let mut c = conn(node).await;
        for table in column(&mut c, "SHOW TABLES FROM system").await {
            let Some(shard) = table.strip_prefix("system.t_s") else {
                continue;
            };
            let shard: u32 = shard.parse().expect("shard number");
            let rows = count(&mut c, &format!("SELECT COUNT(*) FROM {table}")).await;
            by_shard
                .entry(shard)
                .or_default()
                .push((node.node_id(), rows));
        }
    }
    by_shard
}

/// The writes of `record` sent between `from` and `to` that were acknowledged.
fn sent_between(record: &Record, from: Instant, to: Instant) -> impl Iterator<Item = &Ack> {
    record
        .acknowledged
        .iter()
        .filter(move |ack| (from..to).contains(&ack.sent))
}

/// The shards that acknowledged a write of `record` sent between `from` and `to`.
fn shards_written(record: &Record, shards: u32, from: Instant, to: Instant) -> BTreeSet<u32> {
    sent_between(record, from, to)
        .map(|ack| shard_of(ack.id, shards))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_accepts_writes_on_one_side_only_and_loses_none_after_healing() {
    let partition_for = Duration::from_secs(
        std::env::var("SHARDBUDDY_TEST_PARTITION_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(30),
    );
    let nodes = cluster_of(3, &[]).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='2'",
    )
    .await;
    insert_docs(&mut first, "t", 1..=10_000).await;
    let majority = Traffic::start(&nodes[0].mysql_url(), "t", 10_000).await;
    let minority = Traffic::start_at(&nodes[2].mysql_url(), "t", 10_000, 2 * FIRST_WRITE_ID).await;
    majority.wait_for_writes(20, Duration::from_secs(10)).await;
    minority.wait_for_writes(20, Duration::from_secs(10)).await;

    let cut_at = Instant::now();
    testkit::partition(&[&[&nodes[0], &nodes[1]], &[&nodes[2]]]).expect("partition");
    // A write sent before the links were all cut may have reached both
    // sides, even when it is answered later; the partition is complete from
    // here.
    let cut_done = Instant::now();
    wait_until(
        "every shard back to 2 copies on the majority side",
        Duration::from_secs(30),
        async || settled(&copies(&mut first, "t").await, 4, 2, 2),
    )
    .await;
    let healed_rf_after = cut_at.elapsed();
    let remaining = partition_for.saturating_sub(cut_at.elapsed());
    tokio::time::sleep(remaining).await; // the partition's length is the scenario, not a wait for a condition
    majority.wait_for_writes(20, Duration::from_secs(10)).await;
    let healed_at = Instant::now();
    testkit::heal(&nodes.iter().collect::<Vec<_>>()).expect("heal");

    wait_until(
        "copies on all three nodes again",
        Duration::from_secs(60),
        async || settled(&copies(&mut first, "t").await, 4, 2, 3),
    )
    .await;
    majority.wait_for_writes(20, Duration::from_secs(10)).await;
    let majority = majority.stop().await;
    let minority = minority.stop().await;

    let written_in_majority = shards_written(&majority, 4, cut_done, healed_at);
    let written_in_minority = shards_written(&minority, 4, cut_done, healed_at);
    println!(
        "partition of {partition_for:?}: RF restored on the majority side after {healed_rf_after:?}; \
         shards written during it: majority {written_in_majority:?}, minority {written_in_minority:?}; \
         majority writes refused for at most {:?}; {} + {} writes acknowledged",
        majority.write_outage(),
        majority.acknowledged.len(),
        minority.acknowledged.len(),
    );
    let minority_during: Vec<(u64, Duration)> = sent_between(&minority, cut_done, healed_at)
        .map(|ack| (ack.id, ack.sent - cut_done))
        .collect();
    println!("minority acks during the partition: {minority_during:?}");
    assert_all_writes_kept(&mut first, &[&majority, &minority]).await;
    assert!(
        written_in_majority.is_disjoint(&written_in_minority),
        "both sides took writes for shards {:?}",
        written_in_majority.intersection(&written_in_minority)
    );
    assert_reads_ok(&majority);
    assert_all_writes_kept(&mut first, &[&majority, &minority]).await;
    let total = count(&mut first, "SELECT COUNT(*) FROM t").await;
    for node in nodes.iter() {
        let mut c = conn(node).await;
        assert_eq!(
            count(&mut c, "SELECT COUNT(*) FROM t").await,
            total,
            "{}",
            node.node_id()
        );
    }
    let counts = copy_counts(&nodes).await;
    assert_eq!(counts.len(), 4, "{counts:?}");
    for (shard, copies) in &counts {
        assert_eq!(copies.len(), 2, "shard {shard}: {copies:?}");
        assert!(
            copies.iter().all(|(_, rows)| *rows == copies[0].1),
            "copies of shard {shard} disagree: {copies:?}"
        );
    }
}

/// Whether any node's log holds `needle` `times` times or more.
fn logged(nodes: &[manticore_sim::testkit::SimNode], needle: &str, times: usize) -> bool {
    nodes
        .iter()
        .any(|n| n.log_text().matches(needle).count() >= times)
}

/// The time of day (`HH:MM:SS.mmm`, as searchd's log writes it) of the
/// first line of `node`'s log holding `needle`. The nodes share one host,
/// so their logs' times compare.
fn logged_at(node: &manticore_sim::testkit::SimNode, needle: &str) -> Option<String> {
    node.log_text()
        .lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().nth(3).map(str::to_string))
}

/// Galera-like costs make the moves last long enough to change things
/// while they run: a fifth node joins during the rebalance the fourth one
/// started, another table is created and a third dropped. The fifth node
/// is handled by a rebalance of its own after the first; the other tables
/// are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_topology_change_during_a_rebalance_is_handled_after_it() {
    let slow = [("MANTICORE_SIM_PROFILE", "realistic")];
    let mut nodes = cluster_of(3, &slow).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='6' rf='1'",
    )
    .await;
    exec(&mut first, "CREATE TABLE c:v (id bigint) shards='2' rf='1'").await;
    insert_docs(&mut first, "t", 1..=10_000).await;
    let traffic = Traffic::start(&nodes[0].mysql_url(), "t", 10_000).await;
    traffic.wait_for_writes(20, Duration::from_secs(10)).await;

    nodes.0.push(start(4, &slow));
    nodes.0.push(start(5, &slow));
    join(&nodes[3], &nodes[0]).await;
    let started = "rebalancing table t (node added)";
    wait_until(
        "the rebalance for the fourth node to start",
        Duration::from_secs(30),
        async || logged(&nodes, started, 1),
    )
    .await;
    // All three at once, while the rebalance runs.
    let create = tokio::spawn(run_on(
        nodes[1].mysql_url(),
        "CREATE TABLE c:u (id bigint) shards='2' rf='2'".into(),
    ));
    let drop = tokio::spawn(run_on(nodes[2].mysql_url(), "DROP TABLE c:v".into()));
    join(&nodes[4], &nodes[0]).await;
    create
        .await
        .expect("task")
        .expect("CREATE during a rebalance");
    drop.await.expect("task").expect("DROP during a rebalance");

    wait_until(
        "t spread over all five nodes",
        Duration::from_secs(90),
        async || settled(&copies(&mut first, "t").await, 6, 1, 5),
    )
    .await;
    traffic.wait_for_writes(20, Duration::from_secs(10)).await;
    let record = traffic.stop().await;

    // The scenario happened: the fifth node was in the cluster, and the
    // CREATE was queued, before the first rebalance completed. (The DROP of
    // v was sent then too, but waits for v's own rebalance: the fourth node
    // gets v's wrapper, behind t's steps in that node's queue.)
    let master = nodes
        .iter()
        .find(|n| n.log_text().contains(started))
        .expect("the master's log");
    let completed = logged_at(master, "Rebalancing completed for table t").expect("completed");
    for (what, at) in [
        (
            "the fifth node synced",
            logged_at(&nodes[4], "cluster 'c': state transfer received"),
        ),
        (
            "CREATE u queued",
            logged_at(master, "operation enqueued: table u"),
        ),
    ] {
        let at = at.unwrap_or_else(|| panic!("{what}: not in the log"));
        assert!(
            at < completed,
            "{what} at {at}, after the first rebalance completed at {completed}: the scenario needs slower moves"
        );
    }
    assert!(logged(&nodes, started, 2), "one rebalance per change");
    println!(
        "topology change: {} reads, {} in a wrapper swap; {} writes acknowledged, {} refused in a swap",
        record.reads,
        swap_window_reads(&record),
        record.acknowledged.len(),
        record.write_errors.len()
    );
    assert_reads_ok(&record);
    assert_writes_ok(&record);
    assert_writes_kept(&mut first, &record).await;
    assert_eq!(
        count(&mut first, "SELECT COUNT(*) FROM t").await,
        10_000 + record.acknowledged.len() as u64
    );
    // The table created during the rebalance is whole, the dropped one gone.
    let u = copies(&mut first, "u").await;
    assert_eq!(u.len(), 4, "{u:?}");
    assert!(
        u.iter()
            .all(|c| c.status == "active" && c.rf_status == "ok"),
        "{u:?}"
    );
    exec(&mut first, "INSERT INTO u (id) VALUES (1), (2), (3)").await;
    assert_eq!(count(&mut first, "SELECT COUNT(*) FROM u").await, 3);
    wait_for_no_traces(&nodes, &["v"]).await;
}

/// A node gone for good: while the cluster still lists it, DROP is refused
/// by its health gate and the rebalance keeps steps for its return; once
/// `ALTER CLUSTER c UPDATE nodes` removes it, the rebalance ends, the node
/// leaves the placement, and DROP works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_removed_for_good_is_forgotten_and_drop_works_again() {
    let mut nodes = cluster_of(3, &[]).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='3' rf='2'",
    )
    .await;
    insert_docs(&mut first, "t", 1..=1_000).await;
    nodes[2].kill();
    wait_until(
        "every shard back to 2 copies on the survivors",
        Duration::from_secs(30),
        async || settled(&copies(&mut first, "t").await, 3, 2, 2),
    )
    .await;
    let refused = error(&mut first, "DROP TABLE c:t").await;
    assert!(
        refused.contains("cluster 'c' has unreachable members (2 of 3 alive)"),
        "{refused}"
    );
    let state = |rows: Vec<Vec<String>>| rows.first().map(|r| r[2].clone());
    assert_ne!(
        state(rows(&mut first, "SHOW REBALANCE STATUS c:t").await).as_deref(),
        Some("completed"),
        "the rebalance keeps steps for the node's return"
    );

    exec(&mut first, "ALTER CLUSTER c UPDATE nodes").await;
    wait_until(
        "the rebalance to end once the node is no longer a member",
        Duration::from_secs(30),
        async || {
            state(rows(&mut first, "SHOW REBALANCE STATUS c:t").await).as_deref()
                == Some("completed")
        },
    )
    .await;
    assert_eq!(count(&mut first, "SELECT COUNT(*) FROM t").await, 1_000);
    exec(&mut first, "DROP TABLE c:t").await;
    for node in &nodes.0[..2] {
        let mut c = conn(node).await;
        let tables = column(&mut c, "SHOW TABLES").await;
        assert!(!tables.iter().any(|t| t == "t"), "{tables:?}");
        let shards = column(&mut c, "SHOW TABLES FROM system").await;
        assert!(
            !shards.iter().any(|t| t.starts_with("system.t_s")),
            "{shards:?}"
        );
    }
    let log = nodes[0].log_text();
    assert!(
        log.contains("left the cluster for good; the steps kept for their return are dropped"),
        "{log}"
    );
    // The two nodes left make new sharded tables as a two-node cluster.
    exec(&mut first, "CREATE TABLE c:u (id bigint) shards='2' rf='2'").await;
    assert!(settled(&copies(&mut first, "u").await, 2, 2, 2));
}
