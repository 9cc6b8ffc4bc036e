//! Rebalancing end to end: sim nodes with this shardbuddy binary as their
//! helper, a writer and a reader running throughout, nodes killed, added and
//! brought back.

mod sharding_support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use sharding_support::traffic::{Record, Traffic, FIRST_WRITE_ID};
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
    let stored: BTreeSet<u64> = column(
        c,
        &format!(
            "SELECT id FROM t WHERE id >= {FIRST_WRITE_ID} ORDER BY id ASC LIMIT 100000 OPTION max_matches=100000"
        ),
    )
    .await
    .into_iter()
    .map(|s| s.parse().expect("id"))
    .collect();
    let lost: Vec<u64> = record
        .acknowledged
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| !stored.contains(id))
        .collect();
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
    assert!(record.write_errors.is_empty(), "{:?}", record.write_errors);
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
