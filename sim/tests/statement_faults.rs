//! Statement faults (`manticore_sim::faults`): the N-th statement matching a pattern fails with a
//! given message and has no effect, or runs late; set, counted and cleared at run time over
//! MySQL and HTTP `/sql`, from the configuration, and kept across a restart.

mod common;

use std::time::{Duration, Instant};

use common::*;
use manticore_sim::testkit::{
    clear_statement_faults, delay_statement, fail_statement, http_post, Hits, NodeOptions, SimNode,
};

fn node() -> SimNode {
    SimNode::start(1, NodeOptions::default()).unwrap()
}

/// `POST /sql` (not raw) with a form body.
fn sql_endpoint(node: &SimNode, sql: &str) -> (u16, String) {
    let body = format!(
        "query={}",
        percent_encoding::utf8_percent_encode(sql, percent_encoding::NON_ALPHANUMERIC)
    );
    http_post(
        node.ports().http,
        "/sql",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &body,
    )
    .unwrap()
}

async fn ids(c: &mut mysql_async::Conn) -> Vec<String> {
    rows(c, "SELECT id FROM t ORDER BY id ASC")
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_the_nth_match_fails_with_the_message_and_changes_nothing() {
    let node = node();
    let mut c = conn(&node).await;
    exec(&mut c, "CREATE TABLE t (title text)").await;
    // searchd's own statement error, for the shape of the injected one.
    let (natural_code, _) = error(&mut c, "INSERT INTO nope (id) VALUES (1)").await;

    fail_statement(&node, "insert into t ", Hits::Nth(2), "disk full").unwrap();
    exec(&mut c, "INSERT INTO t (id, title) VALUES (1, 'a')").await;
    exec(&mut c, "SHOW TABLES").await;
    exec(
        &mut c,
        "REPLACE INTO t (id, title) VALUES (9, 'not an insert')",
    )
    .await;
    assert_eq!(
        error(&mut c, "insert into t (id, title) values (2, 'b')").await,
        (natural_code, "disk full".to_string())
    );
    exec(&mut c, "INSERT INTO t (id, title) VALUES (3, 'c')").await;
    assert_eq!(
        ids(&mut c).await,
        s(&["1", "3", "9"]),
        "the 2nd INSERT did nothing"
    );

    // Every match from the 2nd on; another rule counts its own matches.
    fail_statement(&node, "DELETE FROM t*", Hits::From(2), "no more deletes").unwrap();
    fail_statement(&node, "DROP TABLE", Hits::Every, "never").unwrap();
    exec(&mut c, "DELETE FROM t WHERE id = 9").await;
    for id in [1, 3] {
        assert_eq!(
            error(&mut c, &format!("DELETE FROM t WHERE id = {id}"))
                .await
                .1,
            "no more deletes"
        );
    }
    assert_eq!(error(&mut c, "DROP TABLE t").await.1, "never");
    assert_eq!(ids(&mut c).await, s(&["1", "3"]));
    exec(&mut c, "INSERT INTO t (id, title) VALUES (4, 'd')").await;

    clear_statement_faults(&node).unwrap();
    exec(&mut c, "DELETE FROM t WHERE id = 1").await;
    exec(&mut c, "INSERT INTO t (id, title) VALUES (5, 'e')").await;
    assert_eq!(ids(&mut c).await, s(&["3", "4", "5"]));
    exec(&mut c, "DROP TABLE t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_sql_faults_answer_as_searchd_errors_and_stop_the_request() {
    let node = node();
    let mut c = conn(&node).await;
    exec(&mut c, "CREATE TABLE t (title text)").await;
    let (natural_status, natural_body) = node.raw_sql("SELECT * FROM nope").unwrap();
    assert!(natural_body.starts_with("{\"error\":"), "{natural_body}");
    let (natural_search_status, _) = sql_endpoint(&node, "SELECT * FROM nope");

    fail_statement(&node, "insert into t*(2,*", Hits::Every, "injected 'x'").unwrap();
    // Several statements in one request: the failing one stops it, the one after it is not run.
    let (status, body) = node
        .raw_sql("INSERT INTO t (id, title) VALUES (1, 'a'); INSERT INTO t (id, title) VALUES (2, 'b'); INSERT INTO t (id, title) VALUES (3, 'c')")
        .unwrap();
    assert_eq!(
        (status, body.as_str()),
        (natural_status, r#"{"error":"injected 'x'"}"#)
    );
    assert_eq!(ids(&mut c).await, s(&["1"]));
    let (status, body) = node
        .raw_sql("INSERT INTO t (id, title) VALUES (3, 'c')")
        .unwrap();
    assert_eq!(status, 200, "{body}");

    // The `/sql` endpoint (one SELECT) and a rule that hits only the 1st match.
    fail_statement(&node, "select * from t", Hits::Nth(1), "search failed").unwrap();
    assert_eq!(
        sql_endpoint(&node, "SELECT * FROM t"),
        (
            natural_search_status,
            r#"{"error":"search failed"}"#.to_string()
        )
    );
    let (status, body) = sql_endpoint(&node, "SELECT * FROM t");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"total\":2"), "{body}");

    clear_statement_faults(&node).unwrap();
    let (status, body) = node
        .raw_sql("INSERT INTO t (id, title) VALUES (2, 'b')")
        .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(ids(&mut c).await, s(&["1", "2", "3"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delay_holds_the_statement_back_then_it_runs() {
    let node = node();
    let mut c = conn(&node).await;
    exec(&mut c, "CREATE TABLE t (title text)").await;
    let delay = Duration::from_millis(600);

    delay_statement(&node, "insert into t", Hits::Every, delay).unwrap();
    let started = Instant::now();
    exec(&mut c, "INSERT INTO t (id, title) VALUES (1, 'a')").await;
    assert!(
        started.elapsed() >= delay,
        "MySQL answered after {:?}",
        started.elapsed()
    );
    let started = Instant::now();
    let (status, body) = node
        .raw_sql("INSERT INTO t (id, title) VALUES (2, 'b')")
        .unwrap();
    assert!(
        started.elapsed() >= delay,
        "HTTP answered after {:?}",
        started.elapsed()
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ids(&mut c).await,
        s(&["1", "2"]),
        "both ran after their delay"
    );

    // A delay and a failure on the same statement: it waits, then fails. A new rule counts
    // from the moment it is set: the next INSERT is its 1st match.
    fail_statement(&node, "insert into t", Hits::Nth(1), "late failure").unwrap();
    let started = Instant::now();
    assert_eq!(
        error(&mut c, "INSERT INTO t (id, title) VALUES (3, 'c')")
            .await
            .1,
        "late failure"
    );
    assert!(started.elapsed() >= delay);

    clear_statement_faults(&node).unwrap();
    exec(&mut c, "INSERT INTO t (id, title) VALUES (4, 'd')").await;
    assert_eq!(ids(&mut c).await, s(&["1", "2", "4"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_come_from_the_configuration_and_outlive_a_restart() {
    let mut node = SimNode::start(
        1,
        NodeOptions {
            sim_lines: vec!["statement_fault = 1 fail('from the config') show tables".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let mut c = conn(&node).await;
    assert_eq!(error(&mut c, "SHOW TABLES").await.1, "from the config");
    exec(&mut c, "SHOW TABLES").await;

    fail_statement(&node, "create table", Hits::Every, "set at run time").unwrap();
    drop(c);
    node.restart().unwrap();
    let mut c = conn(&node).await;
    // The configuration's rule and the testkit's, each counting from 0 again.
    assert_eq!(error(&mut c, "SHOW TABLES").await.1, "from the config");
    assert_eq!(
        error(&mut c, "CREATE TABLE t (title text)").await.1,
        "set at run time"
    );
    clear_statement_faults(&node).unwrap();
    exec(&mut c, "CREATE TABLE t (title text)").await;

    let bad = SimNode::start(
        2,
        NodeOptions {
            sim_lines: vec!["statement_fault = 1 explode() show tables".into()],
            ..Default::default()
        },
    );
    let why = bad.err().expect("a bad rule is refused").to_string();
    assert!(why.contains("statement_fault"), "{why}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_failure_is_final_and_never_reaches_the_helper() {
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("record.jsonl");
    let node = SimNode::start(
        1,
        NodeOptions {
            buddy_path: Some(env!("CARGO_BIN_EXE_sim-fake-buddy").to_string()),
            env: vec![
                ("FAKE_BUDDY_REPLY".into(), "rows".into()),
                ("FAKE_BUDDY_RECORD".into(), record.display().to_string()),
            ],
            ..Default::default()
        },
    )
    .unwrap();
    let requests = || {
        std::fs::read_to_string(&record)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("\"method\""))
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while !node.log_text().contains("[BUDDY] started") {
        assert!(Instant::now() < deadline, "the helper did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = conn(&node).await;
    // searchd's error for this statement goes to the helper, which answers it.
    let helper_rows = s(&["from helper"]);
    assert_eq!(
        rows(&mut c, "SELECT * FROM nope").await,
        vec![helper_rows.clone()]
    );
    let before = requests();
    assert!(before >= 1);

    fail_statement(&node, "select * from nope", Hits::Every, "injected").unwrap();
    assert_eq!(error(&mut c, "SELECT * FROM nope").await.1, "injected");
    let (status, body) = node.raw_sql("SELECT * FROM nope").unwrap();
    assert_eq!((status, body.as_str()), (500, r#"{"error":"injected"}"#));
    assert_eq!(requests(), before, "the helper saw no injected failure");
    // Other failing statements still go to the helper.
    assert_eq!(rows(&mut c, "SELECT * FROM nope2").await, vec![helper_rows]);
    assert_eq!(requests(), before + 1);
}
