//! Soak: a writer and a reader run through node 0 while nodes 1 and 2 are
//! killed and restarted in turn (each loss and each return rebalances the
//! RF=2 table), for `SHARDBUDDY_SOAK_SECS` (default 1800). Reports lost
//! acknowledged rows (must be 0), reader errors and short reads, and the
//! resident memory of every process over time; the helper of node 0, never
//! killed, must not grow.

use std::time::{Duration, Instant};

use manticore_sim::testkit::SimNode;

use crate::harness::*;
use crate::sharding_support::traffic::{lost_writes, Traffic};
use crate::sharding_support::*;

/// `VmRSS` of `pid` in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// One sample: (node, daemon RSS, helper RSS) in MiB.
fn sample(nodes: &[SimNode]) -> Vec<(usize, f64, f64)> {
    nodes
        .iter()
        .map(|n| {
            let daemon = n.pid().and_then(rss_kib).unwrap_or(0);
            let helper = helper_pid(n).and_then(|p| rss_kib(p as u32)).unwrap_or(0);
            (n.index(), daemon as f64 / 1024.0, helper as f64 / 1024.0)
        })
        .collect()
}

/// Waits until the table's 4 shards have 2 copies each on `holders` nodes;
/// on timeout, says what SHOW SHARDING STATUS and the queue showed last.
async fn wait_settled(via: &SimNode, holders: usize, what: &str) {
    let deadline = Instant::now() + SETTLE_BOUND;
    loop {
        let last = try_copies(via, "t").await;
        if last.as_ref().is_some_and(|c| settled(c, 4, 2, holders)) {
            return;
        }
        if Instant::now() >= deadline {
            let mut c = conn(via).await;
            let open = rows(
                &mut c,
                "SELECT id, node, query, status, tries FROM system.sharding_queue \
                 WHERE status != 'processed' LIMIT 100",
            )
            .await;
            panic!(
                "timed out after {SETTLE_BOUND:?} waiting for {what}: last status {last:#?}; \
                 unprocessed queue rows {open:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn soak(secs: u64) {
    let seed = seed("soak");
    let mut rng = Rng::new(seed);
    let mut nodes = cluster_of(3, crate::FAULT_ENV).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='2'",
    )
    .await;
    insert_docs(&mut first, "t", 1..=1000).await;
    let traffic = Traffic::start(&nodes[0].mysql_url(), "t", 1000).await;
    let started = Instant::now();
    let mut samples = vec![(0.0, sample(&nodes))];
    let mut cycles = 0;
    let mut warm_helper0 = None;
    // When each phase of each cycle began: (kill, healed, restart, back).
    let mut phases: Vec<[Instant; 4]> = Vec::new();
    while started.elapsed() < Duration::from_secs(secs) {
        let victim = rng.range(1, 2) as usize;
        let killed = Instant::now();
        nodes[victim].kill();
        wait_settled(&nodes[0], 2, "healed on the survivors").await;
        let healed = Instant::now();
        nodes[victim].restart().expect("restart");
        let restarted = Instant::now();
        wait_for_log(&nodes[victim], "[BUDDY] started", Duration::from_secs(20));
        wait_settled(&nodes[0], 3, "back on three nodes").await;
        phases.push([killed, healed, restarted, Instant::now()]);
        wait_consistent(&nodes[0], SETTLE_BOUND, "after a kill and return").await;
        cycles += 1;
        let now = sample(&nodes);
        if cycles == 1 {
            warm_helper0 = Some(now[0].2);
        }
        samples.push((started.elapsed().as_secs_f64(), now));
    }
    let record = traffic.stop().await;
    let lost = lost_writes(&mut first, &[&record]).await;
    eprintln!(
        "soak: seed {seed}: {:.0} s, {cycles} kill/return cycles, {} writes acknowledged, {} refused, \
         {} lost; {} reads, {} short, reader errors {:?}",
        started.elapsed().as_secs_f64(),
        record.acknowledged.len(),
        record.write_errors.len(),
        lost.len(),
        record.reads,
        record.short_reads.len(),
        record.read_errors
    );
    // Where the short reads fell: while a lost node was being healed around,
    // while a returned node took its copies back, or at rest.
    let mut by_phase = [0usize; 3];
    for (at, _, _) in &record.short_reads {
        let phase = phases.iter().find_map(|[k, h, r, b]| {
            if (k..h).contains(&at) {
                Some(0)
            } else if (r..b).contains(&at) {
                Some(1)
            } else {
                None
            }
        });
        by_phase[phase.unwrap_or(2)] += 1;
    }
    eprintln!(
        "soak: short reads while healing after a kill {}, while a returned node took its copies back {}, at rest {}",
        by_phase[0], by_phase[1], by_phase[2]
    );
    eprintln!("soak: RSS in MiB (node: daemon/helper) over time:");
    for (at, s) in &samples {
        let cells: Vec<String> = s
            .iter()
            .map(|(i, d, h)| format!("{i}: {d:.1}/{h:.1}"))
            .collect();
        eprintln!("soak: {at:>7.0} s  {}", cells.join("  "));
    }
    assert!(lost.is_empty(), "acknowledged rows lost: {lost:?}");
    if let (Some(warm), Some((_, last))) = (warm_helper0, samples.last()) {
        assert!(
            last[0].2 <= warm + 20.0,
            "the helper of node 0 grew from {warm:.1} MiB to {:.1} MiB",
            last[0].2
        );
    }
}
