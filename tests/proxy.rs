//! `shardbuddy proxy` on a 3-node sim cluster, driven by mysql_async, the
//! `mysql` command-line client and Python's pymysql.

mod sharding_support;

use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts};
use sharding_support::proxy::Proxy;
use sharding_support::scrape::scrape;
use sharding_support::*;

async fn via(proxy: &Proxy) -> Conn {
    Conn::new(Opts::from_url(&proxy.url()).expect("url"))
        .await
        .expect("a connection through the proxy")
}

/// The node a connection runs on, by the MySQL port in its settings.
async fn node_of(c: &mut Conn, nodes: &Nodes) -> usize {
    let rows = rows(c, "SHOW SETTINGS").await;
    let mysql: Vec<String> = rows
        .iter()
        .filter(|r| r[0] == "searchd.listen" && r[1].ends_with(":mysql41"))
        .map(|r| r[1].clone())
        .collect();
    nodes
        .iter()
        .position(|n| {
            mysql
                .iter()
                .any(|l| l.contains(&format!(":{}:", n.ports().mysql)))
        })
        .expect("the connection runs on one of the nodes")
}

/// The `mysql` client's batch output for `sql` at `port`.
fn mysql_cli(port: &str, sql: &str) -> String {
    let out = Command::new("mysql")
        .args([
            "-h127.0.0.1",
            &format!("-P{port}"),
            "-uroot",
            "--batch",
            "-e",
            sql,
        ])
        .output()
        .expect("the mysql client runs");
    assert!(
        out.status.success(),
        "mysql -e {sql:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statements_reach_the_cluster_and_move_off_a_dead_node() {
    let mut nodes = cluster_of(3, &[]).await;
    let proxy = Proxy::start(&[&nodes[0]], &[]);
    let mut c = via(&proxy).await;
    exec(
        &mut c,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='2'",
    )
    .await;
    insert_docs(&mut c, "t", 1..=100).await;
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM t").await, 100);
    assert_eq!(copies(&mut c, "t").await.len(), 8);

    // BI and CLI probes answer as the node does.
    let mut direct = conn(&nodes[0]).await;
    for probe in [
        "SELECT @@version_comment",
        "SELECT @@session.auto_increment_increment",
        "SHOW DATABASES",
        "SHOW FULL TABLES",
        "SET NAMES utf8",
    ] {
        let through: Result<Vec<mysql_async::Row>, _> = c.query(probe).await;
        let at_node: Result<Vec<mysql_async::Row>, _> = direct.query(probe).await;
        assert_eq!(
            format!("{:?}", through.map(|r| r.len())),
            format!("{:?}", at_node.map(|r| r.len())),
            "{probe}"
        );
    }
    assert_eq!(
        mysql_cli(&proxy.port(), "SELECT COUNT(*) FROM t"),
        mysql_cli(
            &nodes[0].ports().mysql.to_string(),
            "SELECT COUNT(*) FROM t"
        )
    );

    // The proxy found the other members from the cluster's node list.
    wait_until(
        "every node known to the proxy",
        Duration::from_secs(10),
        async || scrape(&proxy.metrics).sum("shardbuddy_proxy_backend_up", &[]) == 3.0,
    )
    .await;

    // Kill the node this connection runs on: its next statement runs elsewhere.
    exec(&mut c, "SET NAMES utf8").await;
    let at = node_of(&mut c, &nodes).await;
    nodes[at].kill();
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM t").await, 100);
    assert_ne!(node_of(&mut c, &nodes).await, at);
    // Writes to the replica sets that lost a member wait for the heal.
    wait_until(
        "the survivors hold every shard",
        Duration::from_secs(30),
        async || settled(&copies(&mut c, "t").await, 4, 2, 2),
    )
    .await;
    exec(
        &mut c,
        "INSERT INTO t (id, title) VALUES (1001, 'after the kill')",
    )
    .await;
    let m = scrape(&proxy.metrics);
    assert!(
        m.sum("shardbuddy_proxy_failovers_total", &[]) >= 1.0,
        "{}",
        m.text
    );
    assert!(m.sum("shardbuddy_proxy_statements_total", &[("outcome", "ok")]) > 0.0);

    // A transaction does not survive its node.
    let mut tx = via(&proxy).await;
    exec(&mut tx, "BEGIN").await;
    let tx_at = node_of(&mut tx, &nodes).await;
    nodes[tx_at].kill();
    let lost = error(&mut tx, "SELECT COUNT(*) FROM t").await;
    assert!(
        lost.contains("went away inside a transaction, which is lost; start the transaction again"),
        "{lost}"
    );
    // …and the connection works again afterwards, on a live node.
    assert_eq!(
        count(&mut tx, "SELECT COUNT(*) FROM t WHERE id = 1001").await,
        1
    );
}

/// pymysql, installed on demand; `None` when it cannot be had here.
fn python_with_pymysql() -> Option<&'static str> {
    let has = || {
        Command::new("python3")
            .args(["-c", "import pymysql"])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has() {
        let _ = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "pymysql"])
            .status();
    }
    has().then_some("python3")
}

/// Runs `statements` through pymysql (user `root`, password `secret`, sent
/// in clear text as the proxy asks) and returns the rows of the last one.
fn pymysql(python: &str, port: &str, statements: &[&str]) -> String {
    let script = format!(
        "import pymysql\n\
         c = pymysql.connect(host='127.0.0.1', port={port}, user='root', password='secret', autocommit=True)\n\
         cur = c.cursor()\n\
         for s in {statements:?}:\n    cur.execute(s)\n\
         print(cur.fetchall())\n"
    );
    let out = Command::new(python)
        .args(["-c", &script])
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "pymysql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_without_a_helper_get_sharding_from_the_proxy() {
    let options = || manticore_sim::testkit::NodeOptions {
        buddy_path: None,
        ..Default::default()
    };
    let nodes = Nodes(
        (1..=3)
            .map(|i| manticore_sim::testkit::SimNode::start(i, options()).expect("node starts"))
            .collect(),
    );
    let mut first = conn(&nodes[0]).await;
    exec(&mut first, "CREATE CLUSTER c").await;
    for node in &nodes[1..] {
        join(node, &nodes[0]).await;
    }
    // Without a helper the node itself cannot parse the statement.
    let refused = error(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='3' rf='2'",
    )
    .await;
    assert!(refused.contains("syntax error"), "{refused}");

    let proxy = Proxy::start(&[&nodes[0]], sharding_support::FAST);
    wait_until(
        "every node known to the proxy",
        Duration::from_secs(10),
        async || scrape(&proxy.metrics).sum("shardbuddy_proxy_backend_up", &[]) == 3.0,
    )
    .await;
    let mut c = via(&proxy).await;
    exec(
        &mut c,
        "CREATE TABLE c:t (id bigint, title text) shards='3' rf='2'",
    )
    .await;
    insert_docs(&mut c, "t", 1..=30).await;
    let copies = copies(&mut c, "t").await;
    assert_eq!(copies.len(), 6, "{copies:?}");
    assert!(copies.iter().all(|c| c.status == "active"), "{copies:?}");
    // Every node has the wrapper and reads every row through it.
    for node in nodes.iter() {
        let mut direct = conn(node).await;
        assert_eq!(count(&mut direct, "SELECT COUNT(*) FROM t").await, 30);
    }
    assert!(proxy.output().contains(
        "the node runs no helper: the proxy answers its sharding statements and runs its queue"
    ));

    match python_with_pymysql() {
        Some(python) => {
            let answer = pymysql(
                python,
                &proxy.port(),
                &["SET NAMES utf8", "SELECT COUNT(*) FROM t"],
            );
            assert_eq!(answer, "((30,),)");
        }
        None => eprintln!("pymysql cannot be installed here: its part of this test did not run"),
    }
    exec(&mut c, "DROP TABLE c:t").await;
    assert!(!column(&mut c, "SHOW TABLES")
        .await
        .contains(&"t".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reads_through_the_proxy_ride_out_wrapper_swaps() {
    let mut nodes = cluster_of(3, &[]).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='2'",
    )
    .await;
    insert_docs(&mut first, "t", 1..=2_000).await;
    // Seeded with the node that stays up, so the traffic's connections
    // start there and keep reading while the others' wrappers are swapped.
    let proxy = Proxy::start(&[&nodes[0]], &[]);
    let traffic = sharding_support::traffic::Traffic::start(&proxy.url(), "t", 2_000).await;
    traffic.wait_for_writes(20, Duration::from_secs(10)).await;
    nodes[2].kill();
    wait_until(
        "every shard on the survivors",
        Duration::from_secs(30),
        async || settled(&copies(&mut first, "t").await, 4, 2, 2),
    )
    .await;
    nodes[2].restart().expect("restart");
    wait_until(
        "copies on all three nodes again",
        Duration::from_secs(30),
        async || settled(&copies(&mut first, "t").await, 4, 2, 3),
    )
    .await;
    traffic.wait_for_writes(20, Duration::from_secs(10)).await;
    let record = traffic.stop().await;
    let held = scrape(&proxy.metrics).sum("shardbuddy_proxy_held_total", &[]);
    println!(
        "{} reads through the proxy, {} tries held during wrapper swaps",
        record.reads,
        held.abs()
    );
    assert!(record.reads > 0);
    assert!(record.read_errors.is_empty(), "{:?}", record.read_errors);
    if !record.short_reads.is_empty() {
        let lost = sharding_support::traffic::lost_writes(&mut first, &[&record]).await;
        panic!(
            "short reads {:?}; {}",
            record.short_reads.first(),
            sharding_support::where_ids_are(&mut nodes, "t", &lost).await
        );
    }
}
