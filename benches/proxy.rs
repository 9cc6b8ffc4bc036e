//! What the proxy costs: latency of a point SELECT (p50/p99) and statements
//! per second through `shardbuddy proxy` against the same node directly,
//! and the proxy's peak memory while it relays a large result set.
//!
//! `cargo build --release --workspace --bins && cargo bench --bench proxy`
//! (`SHARDBUDDY_BENCH_SELECTS`, `SHARDBUDDY_BENCH_SECONDS`,
//! `SHARDBUDDY_BENCH_BIG_ROWS` change the sizes.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use manticore_sim::testkit::{NodeOptions, SimNode};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn connect(url: &str) -> Conn {
    Conn::new(Opts::from_url(url).expect("url"))
        .await
        .expect("connection")
}

/// Starts the proxy in front of `node`; returns it and its address.
fn proxy(node: &SimNode) -> (Child, String) {
    let sim = manticore_sim::testkit::binary().expect("manticore-sim is built");
    let mut child = Command::new(sim.with_file_name("shardbuddy"))
        .args(["proxy", "--listen", "127.0.0.1:0", "--log-level", "info"])
        .args(["--node", &format!("127.0.0.1:{}", node.ports().mysql)])
        .stdout(Stdio::piped())
        .spawn()
        .expect("the proxy starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut first)
        .expect("the proxy prints its address");
    let addr = first
        .trim()
        .rsplit(' ')
        .next()
        .expect("an address")
        .to_string();
    (child, addr)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// Point SELECTs on one connection, alternating between the two targets
/// so both see the same machine load.
async fn latency(direct: &str, proxied: &str, rounds: usize) {
    let (mut d, mut p) = (connect(direct).await, connect(proxied).await);
    let (mut at_node, mut through) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let sql = format!("SELECT id, title FROM b WHERE id = {}", 1 + i % 10_000);
        for (conn, out) in [(&mut d, &mut at_node), (&mut p, &mut through)] {
            let started = Instant::now();
            let rows: Vec<(u64, String)> = conn.query(&sql).await.expect("select");
            out.push(started.elapsed());
            assert_eq!(rows.len(), 1);
        }
    }
    at_node.sort();
    through.sort();
    let (d50, d99) = (percentile(&at_node, 0.5), percentile(&at_node, 0.99));
    let (p50, p99) = (percentile(&through, 0.5), percentile(&through, 0.99));
    println!(
        "point SELECT, {rounds} each: direct p50 {d50:?} p99 {d99:?}; proxy p50 {p50:?} p99 {p99:?}; \
         overhead p50 {:?} p99 {:?}",
        p50.saturating_sub(d50),
        p99.saturating_sub(d99)
    );
}

/// Statements per second with `clients` connections for `seconds`.
async fn throughput(url: &str, clients: usize, seconds: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut workers = Vec::new();
    for w in 0..clients {
        let url = url.to_string();
        workers.push(tokio::spawn(async move {
            let mut c = connect(&url).await;
            let mut n = 0u64;
            while Instant::now() < deadline {
                let sql = format!(
                    "SELECT id, title FROM b WHERE id = {}",
                    1 + (n * 7 + w as u64) % 10_000
                );
                let _: Vec<(u64, String)> = c.query(&sql).await.expect("select");
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for w in workers {
        total += w.await.expect("worker");
    }
    total as f64 / seconds as f64
}

/// Peak resident memory of `pid` (`VmHWM`), in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

async fn insert(c: &mut Conn, table: &str, rows: usize) {
    for start in (1..=rows).step_by(5_000) {
        let values: Vec<String> = (start..(start + 5_000).min(rows + 1))
            .map(|i| format!("({i}, 'document number {i} with some text to carry')"))
            .collect();
        c.query_drop(format!(
            "INSERT INTO {table} (id, title) VALUES {}",
            values.join(",")
        ))
        .await
        .expect("insert");
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let node = SimNode::start(1, NodeOptions::default()).expect("node starts");
    let direct = node.mysql_url();
    let mut c = connect(&direct).await;
    c.query_drop("CREATE TABLE b (id bigint, title text)")
        .await
        .expect("create");
    insert(&mut c, "b", 10_000).await;
    let (mut child, addr) = proxy(&node);
    let proxied = format!("mysql://root@{addr}");

    latency(
        &direct,
        &proxied,
        setting("SHARDBUDDY_BENCH_SELECTS", 5_000),
    )
    .await;
    let seconds = setting("SHARDBUDDY_BENCH_SECONDS", 5) as u64;
    for clients in [1, 8] {
        let d = throughput(&direct, clients, seconds).await;
        let p = throughput(&proxied, clients, seconds).await;
        println!(
            "throughput, {clients} connection(s), {seconds} s: direct {d:.0}/s, proxy {p:.0}/s ({:.0}%)",
            100.0 * p / d
        );
    }

    let big = setting("SHARDBUDDY_BENCH_BIG_ROWS", 1_000_000);
    c.query_drop("CREATE TABLE big (id bigint, title text)")
        .await
        .expect("create");
    insert(&mut c, "big", big).await;
    let before = peak_rss_mib(child.id());
    let mut p = connect(&proxied).await;
    let started = Instant::now();
    let mut result = p
        .query_iter(format!(
            "SELECT id, title FROM big LIMIT {big} OPTION max_matches={big}"
        ))
        .await
        .expect("big select");
    let mut rows = 0usize;
    while result.next().await.expect("row").is_some() {
        rows += 1;
    }
    drop(result);
    println!(
        "{rows} rows relayed in {:?}; proxy peak RSS {before:.1} MiB before, {:.1} MiB after",
        started.elapsed(),
        peak_rss_mib(child.id())
    );
    let _ = child.kill();
    let _ = child.wait();
}
