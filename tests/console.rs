//! HTTP `/cli` through a sim node with this shardbuddy as its helper: searchd
//! hands every `/cli` request to the helper, which must run it and print the
//! outcome as a text table — daemon statements and sharding statements alike.

mod sharding_support;

use manticore_sim::testkit::http_post;
use manticore_sim::testkit::SimNode;
use sharding_support::*;

fn cli(node: &SimNode, sql: &str) -> (u16, String) {
    http_post(node.ports().http, "/cli", &[], sql).expect("POST /cli")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_prints_daemon_and_sharding_statements_as_tables() {
    let node = start(1, &[]);
    let mut c = conn(&node).await;

    let (status, text) = cli(&node, "SHOW TABLES");
    assert_eq!(status, 200, "{text}");
    assert!(text.starts_with("Empty set ("), "{text}");

    exec(&mut c, "CREATE TABLE plain (title text)").await;
    exec(&mut c, "INSERT INTO plain (id, title) VALUES (7, 'seven')").await;
    let (status, text) = cli(&node, "SELECT id, title FROM plain");
    assert_eq!(status, 200, "{text}");
    assert!(
        text.starts_with(
            "+----+-------+\n| id | title |\n+----+-------+\n| 7  | seven |\n+----+-------+\n1 row in set ("
        ),
        "{text}"
    );

    let (status, text) = cli(
        &node,
        "CREATE TABLE t (id bigint, title text) shards='2' rf='1'",
    );
    assert_eq!(status, 200, "{text}");
    assert!(text.starts_with("Query OK, 0 rows affected ("), "{text}");
    let tables = rows(&mut c, "SHOW TABLES").await;
    assert!(
        tables.contains(&vec!["t".to_string(), "shard".to_string()]),
        "{tables:?}"
    );

    let (status, text) = cli(&node, "SHOW SHARDING STATUS t");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("| table | shard |"), "{text}");
    assert!(text.contains("2 rows in set ("), "{text}");

    // Buddy-origin errors and daemon errors both come back as JSON errors.
    let (_, text) = cli(&node, "CREATE TABLE t2 (id bigint) shards='0' rf='1'");
    assert!(text.starts_with(r#"{"error":"#), "{text}");
    assert!(!text.contains(r#""error":"""#), "{text}");
    let (_, text) = cli(&node, "SELEC 1");
    assert_eq!(
        text,
        r#"{"error":"P02: syntax error, unexpected identifier near 'SELEC 1'"}"#
    );

    let (status, text) = cli(&node, "DROP TABLE t");
    assert_eq!(status, 200, "{text}");
    assert!(text.starts_with("Query OK"), "{text}");
    assert_eq!(
        column(&mut c, "SHOW TABLES").await,
        vec!["plain".to_string()]
    );
}
