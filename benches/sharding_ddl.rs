//! Wall time of sharded CREATE and DROP on simulated clusters: real
//! `manticore-sim` processes with the real shardbuddy binary as their
//! helper, driven through the MySQL protocol like a user would.
//!
//! `cargo build --release --workspace --bins && cargo bench --bench sharding_ddl`
//! (`SHARDBUDDY_BENCH_ROUNDS` sets the number of CREATE/DROP pairs per case.)

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
    let options = NodeOptions {
        buddy_path: Some(shardbuddy_binary()),
        // Production timings, except the poll interval, which is the knob
        // that trades idle load for latency.
        env: vec![("SHARDBUDDY_POLL_MS".into(), "20".into())],
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

async fn case(name: &str, nodes: &[SimNode], create: &str, drop: &str, rounds: usize) {
    let mut c = conn(&nodes[0]).await;
    let (mut creates, mut drops) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        creates.push(exec(&mut c, create).await);
        drops.push(exec(&mut c, drop).await);
    }
    println!(
        "{name}: CREATE median {:?} (min {:?}, max {:?}), DROP median {:?} (min {:?}, max {:?}), {rounds} rounds",
        median(creates.clone()),
        creates.iter().min().unwrap(),
        creates.iter().max().unwrap(),
        median(drops.clone()),
        drops.iter().min().unwrap(),
        drops.iter().max().unwrap(),
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let rounds: usize = std::env::var("SHARDBUDDY_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(15);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
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
            "3 nodes, shards=3000 rf=3",
            &three,
            "CREATE TABLE c:big (id bigint, title text) shards='3000' rf='3' timeout='600'",
            "DROP TABLE c:big",
            rounds.min(3),
        )
        .await;
    });
}
