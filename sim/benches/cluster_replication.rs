//! Replicated writes and failover of a 3-node replication cluster over the MySQL protocol.
//!
//! `cargo bench -p manticore-sim --bench cluster_replication` (build the binary in release
//! first: `cargo build --release -p manticore-sim --bins`). Environment: `BENCH_OPS` inserts per
//! phase (default 5000), `BENCH_CLIENTS` concurrent connections (default 4), `BENCH_KILLS`
//! node losses measured (default 3).
//!
//! Reports point INSERT throughput through `c:t` issued on the leader and spread over all three
//! members, the time a killed member takes to leave the survivors' `nodes_view`, and the time a
//! restarted member takes to report `synced` again.

use std::time::{Duration, Instant};

mod common;

use common::{connect, env_or, report};
use manticore_sim::testkit::{start_nodes, NodeOptions, SimNode};
use mysql_async::prelude::Queryable;
use mysql_async::Row;

/// `ops` single-row replicated INSERTs split over `clients` connections, connection `k` on
/// `nodes[k % nodes.len()]`; ids start after `first`.
async fn insert_phase(nodes: &[&SimNode], clients: u64, ops: u64, first: u64) -> Duration {
    let per = ops / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut conn = connect(nodes[(c as usize) % nodes.len()]).await;
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let id = first + c * per + i + 1;
                conn.query_drop(format!(
                    "INSERT INTO c:t (id, title, n) VALUES ({id}, 'document {id}', {id})"
                ))
                .await
                .expect("replicated insert");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    started.elapsed()
}

async fn status(node: &SimNode, counter: &str) -> String {
    let mut c = connect(node).await;
    let rows: Vec<Row> = c
        .query(format!("SHOW STATUS LIKE 'cluster_c_{counter}'"))
        .await
        .expect("status");
    rows.first()
        .and_then(|r| r.get::<String, _>(1))
        .unwrap_or_default()
}

/// Polls every 10 ms until `cond` holds; returns the time it took.
async fn time_until(mut cond: impl AsyncFnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !cond().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "never happened"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    started.elapsed()
}

fn spread(label: &str, samples: &[Duration]) {
    let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    let min = ms.iter().cloned().fold(f64::MAX, f64::min);
    let max = ms.iter().cloned().fold(0.0, f64::max);
    let avg = ms.iter().sum::<f64>() / ms.len().max(1) as f64;
    println!(
        "{label}: min {min:.0} ms, avg {avg:.0} ms, max {max:.0} ms ({} runs)",
        ms.len()
    );
}

fn main() {
    let ops = env_or("BENCH_OPS", 5000);
    let clients = env_or("BENCH_CLIENTS", 4).max(1);
    let kills = env_or("BENCH_KILLS", 3);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let mut nodes = start_nodes(3, &NodeOptions::default()).expect("start nodes");
        let seed = nodes[0].node_id();
        let mut c1 = connect(&nodes[0]).await;
        for sql in ["CREATE TABLE t (title text, n int)", "CREATE CLUSTER c"] {
            c1.query_drop(sql).await.expect(sql);
        }
        for n in &nodes[1..] {
            connect(n)
                .await
                .query_drop(format!("JOIN CLUSTER c AT '{seed}'"))
                .await
                .expect("join");
        }
        c1.query_drop("ALTER CLUSTER c ADD t").await.expect("add");

        let on_leader = insert_phase(&[&nodes[0]], clients, ops, 0).await;
        report(
            &format!("replicated point INSERT on the leader, 3 nodes ({clients} clients)"),
            ops,
            on_leader,
        );
        let everywhere = insert_phase(&[&nodes[0], &nodes[1], &nodes[2]], clients, ops, ops).await;
        report(
            &format!("replicated point INSERT spread over 3 nodes ({clients} clients)"),
            ops,
            everywhere,
        );

        let victim_id = nodes[2].node_id();
        let mut left = Vec::new();
        let mut synced = Vec::new();
        for _ in 0..kills {
            nodes[2].kill();
            let observer = &nodes[0];
            left.push(
                time_until(async || !status(observer, "nodes_view").await.contains(&victim_id))
                    .await,
            );
            let restarted = Instant::now();
            nodes[2].launch().expect("restart");
            let victim = &nodes[2];
            time_until(async || {
                status(victim, "node_state").await == "synced"
                    && status(victim, "status").await == "primary"
            })
            .await;
            synced.push(restarted.elapsed());
        }
        spread(
            "kill -9 of 1 of 3: gone from the survivor's nodes_view",
            &left,
        );
        spread(
            "restart of the killed node: synced again (incl. process start)",
            &synced,
        );
    });
}
