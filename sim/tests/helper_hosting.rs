//! Hosting the helper like searchd: start, handshake, forwarding with the v3 envelope,
//! replies, restarts, start timeout, log-level changes and shutdown.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{conn, error, exec, rows, s};
use manticore_sim::testkit::{http_post, NodeOptions, SimNode};
use serde_json::Value;

const FAKE: &str = env!("CARGO_BIN_EXE_sim-fake-buddy");

/// A node hosting the fake helper; the returned directory holds the helper's record file.
fn helper_node(
    mode: &str,
    reply: &str,
    extra_env: &[(&str, &str)],
) -> (SimNode, PathBuf, tempfile::TempDir) {
    let record_dir = tempfile::tempdir().unwrap();
    let record = record_dir.path().join("record.jsonl");
    let mut env = vec![
        ("FAKE_BUDDY_MODE".to_string(), mode.to_string()),
        ("FAKE_BUDDY_REPLY".to_string(), reply.to_string()),
        (
            "FAKE_BUDDY_RECORD".to_string(),
            record.display().to_string(),
        ),
    ];
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    let options = NodeOptions {
        buddy_path: Some(FAKE.to_string()),
        env,
        ..NodeOptions::default()
    };
    (SimNode::start(1, options).unwrap(), record, record_dir)
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

fn requests(path: &Path) -> Vec<Value> {
    records(path)
        .into_iter()
        .filter(|r| r.get("method").is_some())
        .collect()
}

/// Polls until `cond` holds (hang protection only; the check itself is exact).
fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn handshake_envelopes_and_replies() {
    let (mut node, record, _dir) = helper_node("ok", "not_mine", &[]);
    wait_for("handshake", || node.log_text().contains("[BUDDY] started"));
    let log = node.log_text();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let expected = format!("[BUDDY] started v0.0.1 '{FAKE} --listen=http://127.0.0.1:{}   --threads={threads} ' at http://127.0.0.1:", node.ports().http);
    assert!(log.contains(&expected), "{log}");
    wait_for("relayed line", || {
        node.log_text().contains("[BUDDY] fake buddy ready")
    });
    let start = &records(&record)[0];
    assert_eq!(
        start["start"],
        serde_json::json!([
            FAKE,
            format!("--listen=http://127.0.0.1:{}", node.ports().http),
            format!("--threads={threads}")
        ])
    );
    assert_eq!(
        start["cwd"].as_str().map(PathBuf::from),
        Some(node.data_dir())
    );

    let mut c = conn(&node).await;
    assert_eq!(
        rows(&mut c, "SHOW STATUS LIKE 'version'").await,
        vec![s(&[
            "version",
            &format!("{} (buddy v0.0.1)", manticore_sim::node::VERSION)
        ])]
    );
    // "Not mine": the client sees the daemon's own error, the helper saw the exact envelope.
    assert_eq!(
        error(&mut c, "SELEC 1").await.1,
        "P02: syntax error, unexpected identifier near 'SELEC 1'"
    );
    let req = requests(&record).pop().unwrap();
    assert_eq!(req["method"], "POST");
    assert_eq!(req["path"], "/");
    let names: Vec<&str> = req["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Host",
            "Accept",
            "Request-ID",
            "Content-Type",
            "Content-Length"
        ]
    );
    assert_eq!(req["headers"][3][1], "application/json; charset=UTF-8");
    assert_eq!(
        req["body"],
        r#"{"type":"unknown sql request","error":{"message":"P02: syntax error, unexpected identifier near 'SELEC 1'","body":null},"version":3,"user":"root","message":{"path_query":"","body":"SELEC 1","http_method":""}}"#
    );
    // Successful statements never reach the helper.
    let before = requests(&record).len();
    rows(&mut c, "SHOW TABLES").await;
    assert_eq!(requests(&record).len(), before);

    // HTTP raw mode: the error body travels along; the Buddy User-Agent is never forwarded.
    let http = node.ports().http;
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    assert_eq!(
        http_post(http, "/sql?mode=raw", &form, "query=SELEC%201")
            .unwrap()
            .0,
        500
    );
    let req = requests(&record).pop().unwrap();
    assert_eq!(
        req["body"],
        r#"{"type":"unknown sql request","error":{"message":"P02: syntax error, unexpected identifier near 'SELEC 1'","body":{"error":"P02: syntax error, unexpected identifier near 'SELEC 1'"}},"version":3,"user":"","message":{"path_query":"/sql?mode=raw","body":"SELEC 1","http_method":""}}"#
    );
    let before = requests(&record).len();
    let buddy_ua = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("User-Agent", "Manticore Buddy/0.0.1"),
    ];
    assert_eq!(
        http_post(http, "/sql?mode=raw", &buddy_ua, "query=SELEC%201")
            .unwrap()
            .0,
        500
    );
    assert_eq!(requests(&record).len(), before);
    assert_eq!(
        http_post(
            http,
            "/cli",
            &[("User-Agent", "Manticore Buddy/0.0.1")],
            "SHOW TABLES"
        )
        .unwrap(),
        (
            501,
            "{\"error\":\"can not process /cli endpoint with User-Agent:Manticore Buddy\"}"
                .to_string()
        )
    );
    // /cli always goes to the helper.
    assert_eq!(
        http_post(http, "/cli", &[], "SHOW TABLES").unwrap(),
        (200, "{\"error\":\"\"}".to_string())
    );
    let req = requests(&record).pop().unwrap();
    assert_eq!(
        req["body"],
        r#"{"type":"unknown json request","error":{"message":"","body":null},"version":3,"user":"","message":{"path_query":"/cli","body":"SHOW TABLES","http_method":"POST"}}"#
    );
    // Log-level changes are posted to /config.
    exec(&mut c, "SET GLOBAL log_level = debug").await;
    wait_for("config post", || {
        requests(&record).iter().any(|r| r["path"] == "/config")
    });
    let cfg = requests(&record)
        .into_iter()
        .find(|r| r["path"] == "/config")
        .unwrap();
    assert_eq!(cfg["body"], "{\"log_level\":\"debug\"}");

    // Shutdown: the helper gets SIGTERM.
    node.stop();
    assert!(
        records(&record).iter().any(|r| r["signal"] == 15),
        "the helper saw no SIGTERM"
    );
    let log = node.log_text();
    assert!(
        log.contains(&format!(
            "shutdown daemon version '{} (buddy v0.0.1)' ...",
            manticore_sim::node::VERSION
        )),
        "{log}"
    );
}

#[tokio::test]
async fn helper_replies_reach_the_client() {
    let (node, _record, _dir) = helper_node("ok", "rows", &[]);
    wait_for("handshake", || node.log_text().contains("[BUDDY] started"));
    let mut c = conn(&node).await;
    assert_eq!(
        rows(&mut c, "SHOW SHARDING STATUS").await,
        vec![s(&["from helper"])]
    );
    assert_eq!(
        http_post(node.ports().http, "/cli", &[], "SHOW TABLES").unwrap(),
        (200, "answer from helper\n".to_string())
    );
}

#[tokio::test]
async fn crashing_helper_is_restarted_then_given_up() {
    let (node, record, _dir) = helper_node("crash", "not_mine", &[]);
    wait_for("give-up line", || {
        node.log_text()
            .contains("[BUDDY] restart amount of attempts (3) has been exceeded")
    });
    let log = node.log_text();
    assert_eq!(
        log.matches("[BUDDY] terminated, exit code").count(),
        3,
        "{log}"
    );
    assert_eq!(log.matches("[BUDDY] restarting").count(), 2, "{log}");
    assert_eq!(
        records(&record)
            .iter()
            .filter(|r| r.get("start").is_some())
            .count(),
        3
    );
    // Without a helper, failures are answered by the daemon alone.
    let mut c = conn(&node).await;
    assert_eq!(
        error(&mut c, "SELEC 1").await.1,
        "P02: syntax error, unexpected identifier near 'SELEC 1'"
    );
}

#[tokio::test]
async fn silent_helper_is_reported_after_the_timeout() {
    let (node, _record, _dir) =
        helper_node("silent", "not_mine", &[("MANTICORE_BUDDY_TIMEOUT", "1")]);
    wait_for("timeout line", || {
        node.log_text()
            .contains("[BUDDY] failed to start after 1 sec")
    });
    assert!(!node.log_text().contains("[BUDDY] restarting"));
}

#[tokio::test]
async fn invalid_handshake_counts_as_a_failure() {
    let (node, _record, _dir) = helper_node("invalid", "not_mine", &[]);
    wait_for("invalid output", || {
        node.log_text().contains("[BUDDY] invalid output, should be 'Buddy ver, started address:port', got 'hello from a confused helper'")
    });
}

#[tokio::test]
async fn auth_gives_the_helper_a_token_and_blocks_users_without_rights() {
    let record_dir = tempfile::tempdir().unwrap();
    let record = record_dir.path().join("record.jsonl");
    let options = NodeOptions {
        buddy_path: Some(FAKE.to_string()),
        sim_lines: vec![
            "user = alice:secret:read".to_string(),
            "user = root:pw:all".to_string(),
        ],
        env: vec![(
            "FAKE_BUDDY_RECORD".to_string(),
            record.display().to_string(),
        )],
        ..NodeOptions::default()
    };
    let node = SimNode::start(1, options).unwrap();
    wait_for("handshake", || node.log_text().contains("[BUDDY] started"));
    let token = records(&record)[0]["token"].as_str().unwrap().to_string();
    assert!(!token.is_empty());
    let mut root = conn(&node).await;
    exec(&mut root, "CREATE TABLE t (title text)").await;
    let opts =
        mysql_async::Opts::from_url(&format!("mysql://alice@127.0.0.1:{}", node.ports().mysql))
            .unwrap();
    let mut alice = mysql_async::Conn::new(opts).await.unwrap();
    assert_eq!(
        error(&mut alice, "ALTER TABLE t").await,
        (1045, "Permission denied for user 'alice'".to_string())
    );
    assert!(rows(&mut alice, "SELECT * FROM t").await.is_empty());
    // The helper's token works over HTTP, and it may act for a user with its User-Agent.
    let bearer = format!("Bearer {token}");
    let form = |extra: &[(&'static str, &'static str)]| {
        let mut h = vec![
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", bearer.as_str()),
        ];
        h.extend_from_slice(extra);
        h
    };
    let http = node.ports().http;
    assert_eq!(
        http_post(http, "/sql?mode=raw", &form(&[]), "query=ALTER%20TABLE%20t")
            .unwrap()
            .0,
        200
    );
    let as_alice = form(&[
        ("User-Agent", "Manticore Buddy/1.0"),
        ("X-Manticore-User", "alice"),
    ]);
    let (status, body) =
        http_post(http, "/sql?mode=raw", &as_alice, "query=ALTER%20TABLE%20t").unwrap();
    assert_eq!(
        (status, body.as_str()),
        (500, "{\"error\":\"Permission denied for user 'alice'\"}")
    );
    assert_eq!(
        http_post(http, "/sql?mode=raw", &[], "query=SHOW%20TABLES")
            .unwrap()
            .0,
        401
    );
}

#[tokio::test]
async fn attaches_to_a_running_helper() {
    use std::io::BufRead;
    let record_dir = tempfile::tempdir().unwrap();
    let record = record_dir.path().join("record.jsonl");
    let mut helper = std::process::Command::new(FAKE)
        .env("FAKE_BUDDY_RECORD", &record)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    // Keep the pipe open while the helper runs: it prints more after the handshake.
    let mut out = std::io::BufReader::new(helper.stdout.take().unwrap());
    out.read_line(&mut first).unwrap();
    let addr = first.split_whitespace().nth(3).unwrap().to_string();
    let options = NodeOptions {
        env: vec![("MANTICORE_HELPER_URL".to_string(), format!("http://{addr}"))],
        ..NodeOptions::default()
    };
    let node = SimNode::start(1, options).unwrap();
    let mut c = conn(&node).await;
    assert_eq!(
        error(&mut c, "SHOW VERSION").await.1,
        "P01: syntax error, unexpected identifier, expecting VARIABLES near 'VERSION'"
    );
    let _ = helper.kill();
    let _ = helper.wait();
    drop(out);
    let req = requests(&record)
        .pop()
        .expect("the attached helper got the failure");
    assert!(req["body"]
        .as_str()
        .unwrap()
        .contains(r#""body":"SHOW VERSION""#));
}

#[tokio::test]
async fn agent_queries_never_reach_the_helper() {
    let (node, record, _dir) = helper_node("ok", "not_mine", &[]);
    wait_for("handshake", || node.log_text().contains("[BUDDY] started"));
    let mut c = conn(&node).await;
    let me = node.node_id();
    exec(
        &mut c,
        &format!("CREATE TABLE d type='distributed' agent='{me}:nope'"),
    )
    .await;
    let before = requests(&record).len();
    assert_eq!(
        error(&mut c, "SELECT * FROM d").await.1,
        format!("table d: agent {me}: remote query error: unknown local table(s) 'nope' in search request")
    );
    // Only the client's failed statement went to the helper, not the node-to-node query.
    let sent = requests(&record);
    assert_eq!(sent.len(), before + 1);
    assert!(sent[before]["body"]
        .as_str()
        .unwrap()
        .contains(r#""body":"SELECT * FROM d""#));
}
