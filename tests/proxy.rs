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
        async || {
            let copies = copies(&mut c, "t").await;
            let holders: std::collections::BTreeSet<&str> =
                copies.iter().map(|c| c.node.as_str()).collect();
            copies.len() == 8 && holders.len() == 2 && copies.iter().all(|c| c.status == "active")
        },
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
    assert!(lost.contains("inside a transaction"), "{lost}");
    // …and the connection works again afterwards, on a live node.
    assert_eq!(
        count(&mut tx, "SELECT COUNT(*) FROM t WHERE id = 1001").await,
        1
    );
}
