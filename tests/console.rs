//! HTTP `/cli` through a sim node with this shardbuddy as its helper: searchd
//! hands every `/cli` request to the helper, which must run it and print the
//! outcome as a text table — daemon statements and sharding statements alike.

mod sharding_support;
mod support;

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
            "+------+-------+\n| id   | title |\n+------+-------+\n|    7 | seven |\n+------+-------+\n1 row in set ("
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

/// `GET <path>` on a node's HTTP listener.
fn http_get(node: &SimNode, path: &str) -> (u16, String) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], node.ports().http));
    let reply = support::http::request(addr, "GET", path, &[], b"");
    (reply.status, reply.text())
}

fn raw_sql(node: &SimNode, sql: &str) -> (u16, String) {
    let body = format!(
        "query={}",
        percent_encoding::utf8_percent_encode(sql, percent_encoding::NON_ALPHANUMERIC)
    );
    http_post(
        node.ports().http,
        "/sql?mode=raw",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    )
    .expect("POST /sql?mode=raw")
}

/// searchd's raw-mode layout of one result set with rows: one line for the
/// columns, one per row, then `total`, `error`, `warning` on lines of their own.
fn has_daemon_layout(text: &str) -> bool {
    let layout = regex::Regex::new(
        r#"^\[\{\n"columns":\[[^\n]*\],\n"data":\[\n(\{[^\n]*\},\n)*(\{[^\n]*\})?\n\],\n"total":\d+,\n"error":"",\n"warning":""\n\}\]$"#,
    )
    .unwrap();
    layout.is_match(text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_answers_are_shaped_like_the_daemons() {
    let node = start(1, &[]);
    let mut c = conn(&node).await;
    exec(
        &mut c,
        "CREATE TABLE t (id bigint, title text) shards='2' rf='1'",
    )
    .await;

    // /sql?mode=raw: shardbuddy's result sets in the daemon's own layout.
    let (status, daemon) = raw_sql(&node, "SHOW TABLES");
    assert_eq!(status, 200, "{daemon}");
    assert!(has_daemon_layout(&daemon), "the daemon's own: {daemon}");
    let (status, ours) = raw_sql(&node, "SHOW SHARDING STATUS t");
    assert_eq!(status, 200, "{ours}");
    assert!(has_daemon_layout(&ours), "{ours}");
    assert!(ours.contains("\n\"total\":2,\n"), "{ours}");
    let (status, ok) = raw_sql(&node, "SHOW SHARDING STATUS nosuch");
    assert_eq!(status, 200, "{ok}");
    assert!(
        has_daemon_layout(&ok),
        "an unknown table is an empty result: {ok}"
    );
    assert!(ok.contains("\"data\":[\n\n]"), "{ok}");
    // Errors keep the daemon's status for raw-mode errors.
    let (daemon_status, _) = raw_sql(&node, "SELEC 1");
    let (status, text) = raw_sql(&node, "CREATE TABLE t2 (id bigint) shards='0' rf='1'");
    assert_eq!(status, daemon_status, "{text}");
    assert_eq!(text, r#"{"error":"Invalid shards or rf options are set"}"#);

    // /cli: numbers right-aligned as the mysql client does.
    let (status, text) = cli(&node, "SHOW SHARDING STATUS t");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("| table | shard | node "), "{text}");
    assert!(text.contains("| t     |     0 | 127.0.0.1:"), "{text}");
    let (_, text) = cli(&node, "SHOW SHARDING STATUS nosuch");
    assert!(text.starts_with("Empty set ("), "{text}");

    // GET /cli takes the statement from the query string, as searchd does.
    let (status, text) = http_get(&node, "/cli?SHOW%20TABLES");
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("| t     | shard |"), "{text}");
    let (_, text) = http_get(&node, "/cli");
    assert_eq!(text, r#"{"error":"query missing"}"#);

    exec(&mut c, "DROP TABLE t").await;
}
