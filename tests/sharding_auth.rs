//! Authentication and permissions (spec §1.3, §1.8, §4.3): the permission
//! probe runs as the requesting user, background work as `system.buddy`
//! with the helper's bearer token.

mod sharding_support;

use manticore_sim::testkit::SimNode;
use mysql_async::{Conn, Opts};
use sharding_support::*;

fn node_with_users() -> SimNode {
    let mut options = options(&[]);
    options.sim_lines = vec![
        "user = root:rootpw:all".into(),
        "user = alice:alicepw:read,write".into(),
        "user = bob:bobpw:write".into(),
    ];
    let node = SimNode::start(1, options).expect("node starts");
    wait_for_log(&node, "[BUDDY] started", std::time::Duration::from_secs(10));
    node
}

async fn login(node: &SimNode, user: &str, password: &str) -> Conn {
    let url = format!("mysql://{user}:{password}@127.0.0.1:{}", node.ports().mysql);
    Conn::new(Opts::from_url(&url).expect("url"))
        .await
        .expect("login")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_permission_is_checked_as_the_requesting_user() {
    let node = node_with_users();
    let mut alice = login(&node, "alice", "alicepw").await;
    // Unprefixed: the daemon checks the user itself (ERROR 1045, never forwarded).
    assert_eq!(
        error(
            &mut alice,
            "CREATE TABLE atbl (id bigint) shards='2' rf='1'"
        )
        .await,
        "Permission denied for user 'alice'"
    );
    // Prefixed: the daemon cannot parse it, so shardbuddy's probe answers.
    assert_eq!(
        error(
            &mut alice,
            "CREATE TABLE c:atbl (id bigint) shards='2' rf='2'"
        )
        .await,
        "Permission denied for user 'alice': requires schema permission on table 'atbl'"
    );
    assert_eq!(
        error(&mut alice, "DROP TABLE c:ghost").await,
        "Permission denied for user 'alice': requires schema permission on table 'ghost'"
    );

    // root may; the background work (as system.buddy, with the token) succeeds.
    let mut root = login(&node, "root", "rootpw").await;
    exec(
        &mut root,
        "CREATE TABLE t (id bigint, title text) shards='2' rf='1'",
    )
    .await;
    insert_docs(&mut root, "t", 1..=10).await;
    assert_eq!(count(&mut alice, "SELECT COUNT(*) FROM t").await, 10);
    assert_eq!(rows(&mut root, "SHOW SHARDING STATUS").await.len(), 2);
    exec(&mut root, "DROP TABLE t").await;
    assert_eq!(traces_of(&mut root, "t").await, Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_runs_statements_as_the_requesting_user() {
    use manticore_sim::testkit::http_post;
    let node = node_with_users();
    // `alice:alicepw`, as an HTTP client sends it.
    let alice = [("Authorization", "Basic YWxpY2U6YWxpY2Vwdw==")];
    let cli = |sql: &str| http_post(node.ports().http, "/cli", &alice, sql).expect("POST /cli");

    let (status, text) = cli("SHOW TABLES");
    assert_eq!(status, 200, "{text}");
    assert!(text.starts_with("Empty set ("), "{text}");
    // The helper's token must not lend alice its own rights.
    let (_, text) = cli("CREATE TABLE plain (id bigint)");
    assert!(text.contains("Permission denied"), "{text}");
    let (_, text) = cli("CREATE TABLE c:atbl (id bigint) shards='2' rf='2'");
    assert!(
        text.contains("Permission denied for user 'alice'"),
        "{text}"
    );
    let mut root = login(&node, "root", "rootpw").await;
    assert!(rows(&mut root, "SHOW TABLES").await.is_empty());
}

/// A user the daemon refuses `SHOW TABLES` (no read grant) sees no sharded
/// table: SHOW SHARDING STATUS and MASTER answer an empty result, not an
/// error, as Manticore's do; a user with read rights sees the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_without_read_rights_see_an_empty_sharding_status() {
    let node = node_with_users();
    let mut root = login(&node, "root", "rootpw").await;
    exec(
        &mut root,
        "CREATE TABLE t (id bigint, title text) shards='2' rf='1'",
    )
    .await;
    let mut bob = login(&node, "bob", "bobpw").await;
    assert_eq!(
        error(&mut bob, "SHOW TABLES").await,
        "Permission denied for user 'bob'"
    );
    assert!(rows(&mut bob, "SHOW SHARDING STATUS").await.is_empty());
    assert!(rows(&mut bob, "SHOW SHARDING STATUS t").await.is_empty());
    assert!(rows(&mut bob, "SHOW SHARDING MASTER").await.is_empty());
    let mut alice = login(&node, "alice", "alicepw").await;
    assert_eq!(rows(&mut alice, "SHOW SHARDING STATUS").await.len(), 2);
    assert_eq!(rows(&mut alice, "SHOW SHARDING MASTER").await.len(), 1);
}
