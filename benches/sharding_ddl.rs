//! Wall time of sharded CREATE and DROP on simulated clusters: real
//! `manticore-sim` processes with the real shardbuddy binary as their
//! helper, driven through the MySQL protocol like a user would.
//!
//! `cargo build --release --workspace --bins && cargo bench --bench sharding_ddl`
//! (`SHARDBUDDY_BENCH_ROUNDS` sets the number of CREATE/DROP pairs per case;
//! `SHARDBUDDY_BENCH_PROFILE=realistic` runs the nodes under the simulator's
//! realistic cost profile, which charges what real searchd with Galera
//! takes for each statement: see `sim/src/cost.rs`. `MANTICORE_SIM_BIN`
//! points at another build's binaries, e.g. to compare two versions.)

use std::time::{Duration, Instant};

use manticore_sim::testkit::{NodeOptions, SimNode};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};

fn shardbuddy_binary() -> String {
    let sim = manticore_sim::testkit::binary()
        .expect("manticore-sim is built (cargo build --workspace --bins)");
    sim.with_file_name("shardbuddy").display().to_string()
}

fn start_cluster(nodes: usize) -> Vec<SimNode> {
    // Production timings, except the poll interval, which is the knob that
    // trades idle load for latency.
    let mut env = vec![("SHARDBUDDY_POLL_MS".into(), "20".into())];
    if let Ok(profile) = std::env::var("SHARDBUDDY_BENCH_PROFILE") {
        env.push((manticore_sim::cost::PROFILE_ENV.into(), profile));
    }
    let options = NodeOptions {
        buddy_path: Some(shardbuddy_binary()),
        env,
        ..NodeOptions::default()
    };
    (1..=nodes)
        .map(|i| SimNode::start(i, options.clone()).expect("node starts"))
        .collect()
}

async fn conn(node: &SimNode) -> Conn {
    Conn::new(Opts::from_url(&node.mysql_url()).expect("url"))
        .await
        .expect("connection")
}

async fn exec(c: &mut Conn, sql: &str) -> Duration {
    let started = Instant::now();
    c.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Replication clusters the nodes run besides the user's cluster `c`.
async fn internal_clusters(nodes: &[SimNode]) -> usize {
    let mut total = 0;
    for node in nodes {
        let mut c = conn(node).await;
        let names: Vec<(String, String)> = c
            .query("SHOW STATUS LIKE 'cluster_name'")
            .await
            .expect("cluster status");
        total += names.iter().filter(|(_, name)| name != "c").count();
    }
    total
}

/// Waits until a DROP's clusters are deleted (the DROP answers before), so
/// the next CREATE is measured alone; returns how long that took.
async fn clusters_gone(nodes: &[SimNode]) -> Duration {
    let started = Instant::now();
    while internal_clusters(nodes).await > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "clusters left after a DROP"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    started.elapsed()
}

async fn case(name: &str, nodes: &[SimNode], create: &str, drop: &str, rounds: usize) {
    let mut c = conn(&nodes[0]).await;
    let (mut creates, mut drops, mut cleanups) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        creates.push(exec(&mut c, create).await);
        drops.push(exec(&mut c, drop).await);
        cleanups.push(clusters_gone(nodes).await);
    }
    let range = |v: &[Duration]| {
        format!(
            "median {:?} (min {:?}, max {:?})",
            median(v.to_vec()),
            v.iter().min().unwrap(),
            v.iter().max().unwrap()
        )
    };
    println!(
        "{name}: CREATE {}, DROP {}, clusters deleted {} after the DROP answered; {rounds} rounds",
        range(&creates),
        range(&drops),
        range(&cleanups),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let rounds: usize = std::env::var("SHARDBUDDY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!(
        "profile: {}",
        std::env::var("SHARDBUDDY_BENCH_PROFILE").unwrap_or_else(|_| "fast".into())
    );
    runtime.block_on(async {
        let single = start_cluster(1);
        case(
            "1 node, shards=3 rf=1",
            &single,
            "CREATE TABLE t (id bigint, title text) shards='3' rf='1'",
            "DROP TABLE t",
            rounds,
        )
        .await;
        drop(single);

        let three = start_cluster(3);
        let mut c = conn(&three[0]).await;
        exec(&mut c, "CREATE CLUSTER c").await;
        for node in &three[1..] {
            let mut other = conn(node).await;
            exec(
                &mut other,
                &format!("JOIN CLUSTER c AT '{}'", three[0].node_id()),
            )
            .await;
        }
        case(
            "3 nodes, shards=3 rf=2",
            &three,
            "CREATE TABLE c:t (id bigint, title text) shards='3' rf='2'",
            "DROP TABLE c:t",
            rounds,
        )
        .await;
        case(
            "3 nodes, shards=300 rf=2",
            &three,
            "CREATE TABLE c:mid (id bigint, title text) shards='300' rf='2' timeout='600'",
            "DROP TABLE c:mid",
            rounds.min(3),
        )
        .await;
        case(
            "3 nodes, shards=3000 rf=3",
            &three,
            "CREATE TABLE c:big (id bigint, title text) shards='3000' rf='3' timeout='600'",
            "DROP TABLE c:big",
            rounds.min(3),
        )
        .await;
    });
}
