//! Point INSERT and point SELECT throughput of one node over the MySQL protocol.
//!
//! `cargo bench -p manticore-sim --bench mysql_throughput` (build the binary in release first:
//! `cargo build --release -p manticore-sim --bins`). Environment: `BENCH_OPS` operations per phase
//! (default 20000), `BENCH_CLIENTS` concurrent connections (default 4).

use std::time::{Duration, Instant};

mod common;

use common::{connect, env_or, report};
use manticore_sim::testkit::{NodeOptions, SimNode};
use mysql_async::prelude::Queryable;

/// Runs `ops` statements split over `clients` connections; returns the elapsed time.
async fn phase(node: &SimNode, clients: u64, ops: u64, make: fn(u64) -> String) -> Duration {
    let per = ops / clients;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut conn = connect(node).await;
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let sql = make(c * per + i + 1);
                conn.query_drop(sql).await.expect("statement");
            }
        }));
    }
    for t in tasks {
        t.await.expect("client task");
    }
    started.elapsed()
}

fn main() {
    let ops = env_or("BENCH_OPS", 20_000);
    let clients = env_or("BENCH_CLIENTS", 4).max(1);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let node = SimNode::start(1, NodeOptions::default()).expect("start node");
        let mut c = connect(&node).await;
        c.query_drop("CREATE TABLE bench (title text, n int, s string)")
            .await
            .expect("create");
        let insert = phase(&node, clients, ops, |id| {
            format!(
                "INSERT INTO bench (id, title, n, s) VALUES ({id}, 'document {id}', {id}, 'tag{}')",
                id % 10
            )
        })
        .await;
        report(&format!("point INSERT ({clients} clients)"), ops, insert);
        let select = phase(&node, clients, ops, |id| {
            format!("SELECT * FROM bench WHERE id = {id}")
        })
        .await;
        report(
            &format!("point SELECT by id ({clients} clients)"),
            ops,
            select,
        );
    });
}
