//! How long rebalancing takes and how much it copies, on simulated clusters:
//! real `manticore-sim` processes with the real shardbuddy binary as their
//! helper, a writer and a reader running throughout.
//!
//! `cargo build --release --workspace --bins && cargo bench --bench rebalance`
//!
//! Two scenarios per table size (`SHARDBUDDY_BENCH_ROWS`, comma-separated,
//! default `10000,1000000`):
//! - **loss**: 3 nodes, `shards='4' rf='2'`, one node killed. Reported: when
//!   the cluster noticed (the survivors' view of `c` shrinks), when every
//!   shard had 2 live copies again, and the difference — the part that is
//!   shardbuddy's; the copies made against the lower bound (the copies the
//!   dead node held: each must be made again somewhere).
//! - **add**: 3 nodes, `shards='6' rf='1'`, a 4th node joins. Reported: time
//!   from the join to a balanced table, shards moved against the lower bound
//!   (the new node's fair share, `floor(copies / nodes)`).
//!
//! Both report the writer's refused writes and the reader's errors.
//! `SHARDBUDDY_BENCH_PROFILE=realistic` charges Galera's costs (state
//! transfers by size among them: see `sim/src/cost.rs`).

// The integration tests' clients; the bench uses part of them.
#[path = "../tests/sharding_support/traffic.rs"]
#[allow(dead_code)]
mod traffic;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use manticore_sim::testkit::{NodeOptions, SimNode};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use traffic::Traffic;

/// Ids the writer uses start here, above every preloaded row.
const WRITER_IDS: u64 = 100_000_000;

fn options() -> NodeOptions {
    let sim = manticore_sim::testkit::binary()
        .expect("manticore-sim is built (cargo build --release --workspace --bins)");
    let mut env = vec![("SHARDBUDDY_POLL_MS".into(), "20".into())];
    if let Ok(profile) = std::env::var("SHARDBUDDY_BENCH_PROFILE") {
        env.push((manticore_sim::cost::PROFILE_ENV.into(), profile));
    }
    NodeOptions {
        buddy_path: Some(sim.with_file_name("shardbuddy").display().to_string()),
        env,
        ..NodeOptions::default()
    }
}

async fn conn(node: &SimNode) -> Conn {
    Conn::new(Opts::from_url(&node.mysql_url()).expect("url"))
        .await
        .expect("connection")
}

async fn exec(c: &mut Conn, sql: &str) {
    c.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Nodes 1..=n in cluster `c`.
async fn cluster(n: usize) -> Vec<SimNode> {
    let nodes: Vec<SimNode> = (1..=n)
        .map(|i| SimNode::start(i, options()).expect("node starts"))
        .collect();
    exec(&mut conn(&nodes[0]).await, "CREATE CLUSTER c").await;
    for node in &nodes[1..] {
        join(node, &nodes[0]).await;
    }
    nodes
}

async fn join(node: &SimNode, seed: &SimNode) {
    let sql = format!("JOIN CLUSTER c AT '{}'", seed.node_id());
    exec(&mut conn(node).await, &sql).await;
}

async fn load(c: &mut Conn, rows: u64) -> Duration {
    let started = Instant::now();
    let mut next = 1;
    while next <= rows {
        let last = (next + 999).min(rows);
        let values: Vec<String> = (next..=last).map(|i| format!("({i},'doc {i}')")).collect();
        exec(
            c,
            &format!("INSERT INTO t (id, title) VALUES {}", values.join(",")),
        )
        .await;
        next = last + 1;
    }
    started.elapsed()
}

/// Live copies per node (SHOW SHARDING STATUS), and whether every shard has
/// `rf` active copies with `rf_status` ok.
async fn placement(c: &mut Conn, shards: usize, rf: usize) -> (BTreeMap<String, usize>, bool) {
    let rows: Vec<mysql_async::Row> = c.query("SHOW SHARDING STATUS t").await.expect("status");
    let mut per_node = BTreeMap::new();
    let mut active = 0;
    let mut ok = true;
    for row in rows {
        let node: String = row.get("node").expect("node");
        let status: String = row.get("status").expect("status");
        let rf_status: String = row.get("rf_status").expect("rf_status");
        ok &= rf_status == "ok";
        if status == "active" {
            active += 1;
            *per_node.entry(node).or_insert(0) += 1;
        }
    }
    (per_node, ok && active == shards * rf)
}

async fn wait_for<F: AsyncFnMut() -> bool>(what: &str, limit: Duration, mut check: F) -> Instant {
    let started = Instant::now();
    loop {
        if check().await {
            return Instant::now();
        }
        assert!(started.elapsed() < limit, "{what} within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Shard copies the master said it makes (`… N shard copies to make`).
fn copies_made(nodes: &[SimNode]) -> usize {
    nodes
        .iter()
        .flat_map(|n| {
            n.log_text()
                .lines()
                .filter_map(|l| {
                    let (_, rest) = l.split_once("rebalancing table t (")?;
                    let (_, rest) = rest.split_once(", ")?;
                    rest.split_whitespace().next()?.parse::<usize>().ok()
                })
                .collect::<Vec<_>>()
        })
        .sum()
}

fn report_traffic(record: &traffic::Record) -> String {
    format!(
        "writes: {} acknowledged, {} refused (outage {:?}); reads: {}, errors {:?}",
        record.acknowledged.len(),
        record.write_errors.len(),
        record.write_outage(),
        record.reads,
        record.read_errors
    )
}

async fn loss(rows: u64) {
    let mut nodes = cluster(3).await;
    let mut c = conn(&nodes[0]).await;
    exec(
        &mut c,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='2'",
    )
    .await;
    let loaded = load(&mut c, rows).await;
    let (before, _) = placement(&mut c, 4, 2).await;
    let victim = nodes[2].node_id();
    let lower_bound = before.get(&victim).copied().unwrap_or(0);
    let traffic = Traffic::start_at(&nodes[0].mysql_url(), "t", rows, WRITER_IDS).await;
    traffic.wait_for_writes(20, Duration::from_secs(10)).await;

    let killed = Instant::now();
    nodes[2].kill();
    let noticed = wait_for("the loss noticed", Duration::from_secs(60), async || {
        let size: Option<(String, String)> = c
            .query_first("SHOW STATUS LIKE 'cluster_c_size'")
            .await
            .expect("status");
        size.is_some_and(|(_, v)| v == "2")
    })
    .await;
    let restored = wait_for("RF restored", Duration::from_secs(600), async || {
        placement(&mut c, 4, 2).await.1
    })
    .await;
    traffic.wait_for_writes(20, Duration::from_secs(30)).await;
    let record = traffic.stop().await;
    let made = copies_made(&nodes);
    println!(
        "loss, {rows} rows (loaded in {loaded:?}): noticed {:?} after the kill, RF restored {:?} after \
         that ({:?} after the kill); copies made {made}, lower bound {lower_bound} (ratio {:.2}); {}",
        noticed - killed,
        restored - noticed,
        restored - killed,
        made as f64 / lower_bound.max(1) as f64,
        report_traffic(&record)
    );
}

async fn add(rows: u64) {
    let mut nodes = cluster(3).await;
    let mut c = conn(&nodes[0]).await;
    exec(
        &mut c,
        "CREATE TABLE c:t (id bigint, title text) shards='6' rf='1'",
    )
    .await;
    let loaded = load(&mut c, rows).await;
    let traffic = Traffic::start_at(&nodes[0].mysql_url(), "t", rows, WRITER_IDS).await;
    traffic.wait_for_writes(20, Duration::from_secs(10)).await;

    nodes.push(SimNode::start(4, options()).expect("node starts"));
    let joined = Instant::now();
    join(&nodes[3], &nodes[0]).await;
    let fourth = nodes[3].node_id();
    let mut moved = 0;
    let balanced = wait_for("the table balanced", Duration::from_secs(600), async || {
        let (per_node, settled) = placement(&mut c, 6, 1).await;
        moved = per_node.get(&fourth).copied().unwrap_or(0);
        settled && per_node.len() == 4 && per_node.values().all(|&n| n >= 6 / 4)
    })
    .await;
    traffic.wait_for_writes(20, Duration::from_secs(30)).await;
    let record = traffic.stop().await;
    let lower_bound = 6 / 4;
    println!(
        "add, {rows} rows (loaded in {loaded:?}): balanced {:?} after the join; shards moved {moved}, \
         lower bound {lower_bound} (ratio {:.2}); {}",
        balanced - joined,
        moved as f64 / lower_bound as f64,
        report_traffic(&record)
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let sizes: Vec<u64> = std::env::var("SHARDBUDDY_BENCH_ROWS")
        .unwrap_or_else(|_| "10000,1000000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("SHARDBUDDY_BENCH_ROWS: numbers"))
        .collect();
    println!(
        "profile: {}",
        std::env::var("SHARDBUDDY_BENCH_PROFILE").unwrap_or_else(|_| "fast".into())
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        for rows in sizes {
            loss(rows).await;
            add(rows).await;
        }
    });
}
