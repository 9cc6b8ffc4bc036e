//! The helper's Prometheus metrics on a 3-node sim cluster: queue,
//! operation, rebalance and liveness figures follow a CREATE, the loss of a
//! node and the rebalance that heals it.

mod sharding_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sharding_support::scrape::{get, metrics_addr, scrape, Metrics};
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

    // The page in a browser now, while the rebalance waits for the lost
    // node: its progress bar and the map's cells are drawn.
    if let Some(browser) = browser() {
        let dom = dump_dom(browser, &addrs[0]);
        assert!(
            dom.contains("<div class=\"bar\"><div style=\"width:"),
            "{dom}"
        );
        assert!(dom.contains("waiting for a node"), "{dom}");
        assert!(dom.contains("rebalance rebalance_t_"), "{dom}");
        assert!(dom.contains("class=\"copy live\""), "{dom}");
    }

    // STATUS_PAGE_SCREENSHOT=<file.png> keeps a picture of the page now.
    if let (Ok(path), Some(browser)) = (std::env::var("STATUS_PAGE_SCREENSHOT"), browser()) {
        let shot = std::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
            ])
            .args(["--virtual-time-budget=3000", "--window-size=1100,640"])
            .arg(format!("--screenshot={path}"))
            .arg(format!("http://{}/", addrs[0]))
            .output()
            .expect("the browser runs");
        assert!(
            shot.status.success(),
            "{}",
            String::from_utf8_lossy(&shot.stderr)
        );
    }
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
    status_page_draws_the_cluster(&addrs[0], &nodes);
}

/// The DOM of the status page at `addr` once `browser` has run its script.
fn dump_dom(browser: &str, addr: &str) -> String {
    let out = std::process::Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu"])
        .args(["--virtual-time-budget=3000", "--dump-dom"])
        .arg(format!("http://{addr}/"))
        .output()
        .expect("the browser runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A headless-capable browser, when one is installed.
fn browser() -> Option<&'static str> {
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok()
        })
}

/// The status page and its data: plain HTTP, then (where a headless
/// browser is installed) the page as the browser draws it.
fn status_page_draws_the_cluster(addr: &str, nodes: &Nodes) {
    let (status, content_type, page) = get(addr, "/");
    assert_eq!(status, 200);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    for part in [
        "<table id=\"nodes\">",
        "<table id=\"copies\">",
        "<table id=\"running\">",
    ] {
        assert!(page.contains(part), "{part} missing");
    }
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page loads nothing from elsewhere"
    );
    let (_, _, json) = get(addr, "/status.json");
    let view: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(view["master"], view["me"]);
    let table = &view["tables"][0];
    assert_eq!(table["name"], "t");
    assert_eq!(table["rf_status"], "ok");
    let live = table["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .flat_map(|s| s["copies"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["state"] == "live")
        .count();
    assert_eq!(live, 8, "{json}");

    let Some(browser) = browser() else {
        eprintln!(
            "no headless browser installed: the status page was checked over plain HTTP only"
        );
        return;
    };
    let dom = dump_dom(browser, addr);
    assert!(dom.contains("data-table=\"t\""), "{dom}");
    for node in nodes.iter() {
        assert!(
            dom.contains(&format!("data-node=\"{}\"", node.node_id())),
            "{dom}"
        );
    }
    // Eight live copies, and the legend's sample.
    assert_eq!(dom.matches("class=\"copy live\"").count(), 8 + 1, "{dom}");
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
