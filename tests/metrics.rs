//! The helper's Prometheus metrics on a 3-node sim cluster: queue,
//! operation, rebalance and liveness figures follow a CREATE, the loss of a
//! node and the rebalance that heals it.

mod sharding_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sharding_support::scrape::{metrics_addr, scrape, Metrics};
use sharding_support::*;

const METRICS: &[(&str, &str)] = &[("SHARDBUDDY_METRICS_ADDR", "127.0.0.1:0")];

/// The node's figures once `check` holds for them (polled with a deadline;
/// the last figures are shown when it does not).
async fn until(addr: &str, what: &str, check: impl Fn(&Metrics) -> bool) -> Metrics {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let m = scrape(addr);
        if check(&m) {
            return m;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last figures:\n{}",
            m.text
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn figures_follow_a_create_a_lost_node_and_the_rebalance() {
    let mut nodes = cluster_of(3, METRICS).await;
    let addrs: Vec<String> = nodes.iter().map(metrics_addr).collect();
    for addr in &addrs {
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    }
    let before = scrape(&addrs[0]);
    assert_eq!(before.sum("shardbuddy_view_up", &[]), 1.0);
    assert_eq!(before.sum("shardbuddy_tables", &[]), 0.0);

    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='2'",
    )
    .await;
    let created = scrape(&addrs[0]);
    assert_eq!(
        created.sum(
            "shardbuddy_operations",
            &[("kind", "create"), ("state", "done")]
        ),
        1.0
    );
    assert_eq!(
        created.sum("shardbuddy_tables", &[("rf_status", "ok")]),
        1.0
    );
    assert_eq!(
        created.sum(
            "shardbuddy_table_shards",
            &[("table", "t"), ("rf_status", "ok")]
        ),
        4.0
    );
    let processed = created.sum("shardbuddy_queue_rows", &[("status", "processed")]);
    assert!(processed > 0.0, "no processed queue rows after CREATE");
    for node in nodes.iter() {
        assert_eq!(
            created.sum("shardbuddy_node_up", &[("node", &node.node_id())]),
            1.0,
            "{}",
            node.node_id()
        );
    }
    // The CREATE reached node 1's helper through searchd.
    assert!(
        created.sum(
            "shardbuddy_request_duration_seconds",
            &[("handler", "sharding"), ("outcome", "result")]
        ) >= 1.0
    );
    // Exactly one master, and every node agrees on its epoch.
    let all: Vec<Metrics> = addrs.iter().map(|a| scrape(a)).collect();
    assert_eq!(
        all.iter()
            .map(|m| m.sum("shardbuddy_is_master", &[]))
            .sum::<f64>(),
        1.0
    );
    let epoch = created.sum("shardbuddy_master_epoch", &[]);
    assert!(epoch >= 1.0);
    assert!(all
        .iter()
        .all(|m| m.sum("shardbuddy_master_epoch", &[]) == epoch));
    // Every node's executor ran steps of the CREATE.
    for m in &all {
        assert!(
            m.sum(
                "shardbuddy_queue_step_duration_seconds",
                &[("outcome", "ok")]
            ) > 0.0
        );
    }

    // Watch node 1 through the loss: the rebalance is seen running with its
    // steps counted, then done.
    let watching = Arc::new(AtomicBool::new(true));
    let seen: Arc<Mutex<Vec<(f64, f64)>>> = Arc::default();
    let watcher = {
        let (addr, watching, seen) = (addrs[0].clone(), watching.clone(), seen.clone());
        std::thread::spawn(move || {
            while watching.load(Ordering::Relaxed) {
                let m = scrape(&addr);
                let kind = [("kind", "rebalance")];
                if m.has("shardbuddy_operation_age_seconds", &kind) {
                    let total = m.sum(
                        "shardbuddy_operation_steps",
                        &[kind[0], ("progress", "total")],
                    );
                    let done = m.sum(
                        "shardbuddy_operation_steps",
                        &[kind[0], ("progress", "done")],
                    );
                    seen.lock().unwrap().push((done, total));
                }
            }
        })
    };
    let lost = nodes[2].node_id();
    nodes[2].kill();
    until(&addrs[0], "node 3 seen down", |m| {
        m.sum("shardbuddy_node_up", &[("node", &lost)]) == 0.0
    })
    .await;
    let progress = |m: &Metrics, p: &str| {
        m.sum(
            "shardbuddy_operation_steps",
            &[("kind", "rebalance"), ("progress", p)],
        )
    };
    let settled = until(&addrs[0], "the rebalance settled and every shard ok", |m| {
        let total = progress(m, "total");
        total > 0.0
            && progress(m, "done") + progress(m, "deferred") == total
            && m.sum(
                "shardbuddy_table_shards",
                &[("table", "t"), ("rf_status", "ok")],
            ) == 4.0
    })
    .await;
    watching.store(false, Ordering::Relaxed);
    watcher.join().expect("watcher");
    let seen = seen.lock().unwrap().clone();
    assert!(
        seen.iter().any(|(done, total)| done < total),
        "the rebalance was never seen at work: {seen:?}"
    );
    assert!(
        seen.iter()
            .all(|(done, total)| *total > 0.0 && done <= total),
        "{seen:?}"
    );
    // The lost node's steps wait for it, and hold up nothing else.
    assert!(progress(&settled, "deferred") > 0.0, "{}", settled.text);
    assert_eq!(
        settled.sum("shardbuddy_queue_oldest_pending_seconds", &[]),
        0.0
    );
    assert!(settled.sum("shardbuddy_queue_rows", &[("status", "processed")]) > processed);

    nodes[2].restart().expect("restart");
    let back = until(&addrs[0], "node 3 back and the rebalance done", |m| {
        m.sum("shardbuddy_node_up", &[("node", &lost)]) == 1.0
            && m.sum(
                "shardbuddy_operations",
                &[("kind", "rebalance"), ("state", "done")],
            ) >= 1.0
            && !m.has("shardbuddy_operation_age_seconds", &[])
    })
    .await;
    assert_eq!(back.sum("shardbuddy_node_up", &[]), 3.0);
    assert_eq!(back.sum("shardbuddy_tables", &[("rf_status", "ok")]), 1.0);
    assert_eq!(
        back.sum(
            "shardbuddy_queue_rows",
            &[("node", &lost), ("status", "created")]
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_or_taken_metrics_address_is_logged_and_the_helper_keeps_serving() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let taken_addr = taken.local_addr().expect("address").to_string();
    let cases = [
        (
            taken_addr.as_str(),
            "; choose another address with SHARDBUDDY_METRICS_ADDR",
        ),
        ("[::1", "is not an address to serve metrics on"),
    ];
    for (i, (addr, logged)) in cases.into_iter().enumerate() {
        let node = Nodes(vec![start(i + 1, &[("SHARDBUDDY_METRICS_ADDR", addr)])]);
        wait_for_log(&node[0], logged, Duration::from_secs(10));
        assert!(node[0].log_text().contains("shardbuddy is serving"));
        let mut c = conn(&node[0]).await;
        exec(
            &mut c,
            "CREATE TABLE t (id bigint, title text) shards='2' rf='1'",
        )
        .await;
        assert_eq!(copies(&mut c, "t").await.len(), 2);
    }
}
