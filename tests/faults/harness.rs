//! The fault suite's machinery: a three-node cluster, failpoints set on a
//! node's helper through its `/config`, the consistency checker polled until
//! it finds nothing, and a seeded generator whose seed every run prints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use manticore_sim::testkit::{http_post, SimNode};
use mysql_async::prelude::Queryable;
use shardbuddy::check::{self, Report};
use shardbuddy::client::{ClientConfig, DaemonClient};

use crate::sharding_support::*;

/// How long the cluster may take to be consistent again after a fault:
/// a master failover (1.5 s lease in the tests) plus a rollback.
pub const SETTLE_BOUND: Duration = Duration::from_secs(45);

/// `SHARDBUDDY_SEED`, or one made from the clock; printed so a failing run
/// can be replayed with it.
pub fn seed(test: &str) -> u64 {
    let seed = std::env::var("SHARDBUDDY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    eprintln!("{test}: seed {seed} (replay with SHARDBUDDY_SEED={seed})");
    seed
}

/// splitmix64: small, seedable, and the same everywhere.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The helper's HTTP port, from the node's last `[BUDDY] started … at
/// <host:port>` line.
pub fn helper_port(node: &SimNode) -> u16 {
    let log = node.log_text();
    let line = log
        .lines()
        .rev()
        .find(|l| l.contains("[BUDDY] started "))
        .expect("the helper has started");
    line.rsplit(':')
        .next()
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"))
}

/// How many times the node's helper has started.
pub fn helper_starts(node: &SimNode) -> usize {
    node.log_text().matches("[BUDDY] started ").count()
}

/// Sets the failpoints of `node`'s helper (`""` clears them).
pub fn set_failpoints(node: &SimNode, spec: &str) {
    let body = serde_json::json!({ "failpoints": spec }).to_string();
    let (status, reply) = http_post(
        helper_port(node),
        "/config",
        &[("Content-Type", "application/json")],
        &body,
    )
    .expect("POST /config");
    assert_eq!(status, 200, "failpoints {spec:?}: {reply}");
}

/// The failpoints set on `node`'s helper now (`""`: none), or `None` when
/// the helper cannot be asked (it is restarting).
pub fn failpoints_of(node: &SimNode) -> Option<String> {
    let port = helper_port(node);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    use std::io::{Read, Write};
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request =
        format!("GET /config HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = String::new();
    stream.read_to_string(&mut raw).ok()?;
    let body = raw.split_once("\r\n\r\n")?.1;
    let start = body.find('{')?;
    let value: serde_json::Value = serde_json::from_str(&body[start..body.rfind('}')? + 1]).ok()?;
    Some(value["failpoints"].as_str().unwrap_or_default().to_string())
}

/// Runs the consistency checker through `node`.
pub async fn check_through(node: &SimNode) -> Result<Report, String> {
    let client = DaemonClient::new(ClientConfig {
        base_url: format!("http://127.0.0.1:{}", node.ports().http),
        token: None,
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(3),
    })
    .as_system();
    check::check(Arc::new(client))
        .await
        .map_err(|e| e.to_string())
}

/// Polls the checker (through `via`) until it finds the cluster
/// consistent; how long that took. Panics with the last discrepancies after
/// `bound`.
pub async fn wait_consistent(via: &SimNode, bound: Duration, what: &str) -> Duration {
    let started = Instant::now();
    loop {
        let last: Vec<String> = match check_through(via).await {
            Ok(report) if report.is_consistent() => return started.elapsed(),
            Ok(report) => report.discrepancies.iter().map(|d| d.to_string()).collect(),
            Err(e) => vec![e],
        };
        assert!(
            started.elapsed() < bound,
            "{what}: not consistent after {bound:?}:\n{}",
            last.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a client was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Ok,
    /// searchd's own error, given when its helper is gone: it says nothing
    /// about the outcome (README, "When shardbuddy stops in the middle of a
    /// statement").
    HelperGone(String),
    /// shardbuddy's error.
    Error(String),
}

impl Answer {
    pub fn of(result: Result<(), String>) -> Self {
        match result {
            Ok(()) => Answer::Ok,
            Err(e) if e.starts_with("P03:") || e.contains("syntax error") => Answer::HelperGone(e),
            Err(e) => Answer::Error(e),
        }
    }

    /// An error that says the outcome is not known (and how to learn it).
    pub fn says_outcome_unknown(&self) -> bool {
        matches!(self, Answer::Error(e) if e.contains("outcome") || e.contains("SHOW SHARDING STATUS"))
    }
}

/// Runs `sql` on `c`; the server's error text on failure, within a bound
/// (hang protection only).
pub async fn run(c: &mut mysql_async::Conn, sql: &str) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(120), c.query_drop(sql)).await {
        Err(_) => Err(format!("{sql}: no answer in 120 s")),
        Ok(Ok(())) => Ok(()),
        Ok(Err(mysql_async::Error::Server(e))) => Err(e.message),
        Ok(Err(e)) => Err(e.to_string()),
    }
}

/// The node that holds the master lease (`SHOW SHARDING MASTER`, which
/// answers once a sharded table exists).
pub async fn master_index(nodes: &[SimNode]) -> usize {
    let mut found = None;
    wait_until("a master", Duration::from_secs(30), async || {
        let mut c = conn(&nodes[0]).await;
        let rows = rows(&mut c, "SHOW SHARDING MASTER").await;
        found = rows
            .first()
            .and_then(|r| nodes.iter().position(|n| n.node_id() == r[0]));
        found.is_some()
    })
    .await;
    found.expect("a master")
}

/// Whether `table` is placed (the metadata lists copies of it).
pub async fn placed(via: &SimNode, table: &str) -> bool {
    let mut c = conn(via).await;
    !copies(&mut c, table).await.is_empty()
}

/// Whether `table` is placed, as any node's SHOW SHARDING STATUS says: a
/// node lists only the tables it has a `type='shard'` table of, and one that
/// was down when the table was made gets it only from the rebalance that
/// follows its return.
pub async fn placed_anywhere(nodes: &[SimNode], table: &str) -> bool {
    for node in nodes {
        if placed(node, table).await {
            return true;
        }
    }
    false
}

/// Waits until every node serves `table` (lists it in SHOW SHARDING STATUS)
/// and the cluster is consistent again.
pub async fn wait_served_everywhere(nodes: &[SimNode], table: &str, what: &str) {
    wait_until(
        &format!("{table} served by every node ({what})"),
        SETTLE_BOUND,
        async || {
            for node in nodes {
                if !placed(node, table).await {
                    return false;
                }
            }
            true
        },
    )
    .await;
    wait_consistent(&nodes[0], SETTLE_BOUND, what).await;
}

/// Waits until every helper answers (after an abort, searchd restarts it).
pub async fn wait_helpers(nodes: &[SimNode]) {
    for node in nodes {
        wait_until(
            &format!("the helper of node {}", node.index()),
            Duration::from_secs(30),
            async || failpoints_of(node).is_some(),
        )
        .await;
    }
}

/// SHOW SHARDING STATUS of `table` through `node`, or `None` while the
/// node's helper cannot answer it (it is being restarted).
pub async fn try_copies(node: &SimNode, table: &str) -> Option<Vec<Copy>> {
    let mut c = conn(node).await;
    let result: Result<Vec<mysql_async::Row>, _> =
        c.query(format!("SHOW SHARDING STATUS {table}")).await;
    let rows = result.ok()?;
    Some(
        rows.iter()
            .map(|r| {
                let text = |i: usize| -> String {
                    match r.as_ref(i) {
                        Some(mysql_async::Value::Bytes(b)) => String::from_utf8_lossy(b).into(),
                        Some(mysql_async::Value::Int(n)) => n.to_string(),
                        Some(mysql_async::Value::UInt(n)) => n.to_string(),
                        _ => String::new(),
                    }
                };
                Copy {
                    shard: text(1).parse().unwrap_or(u32::MAX),
                    node: text(2),
                    status: text(3),
                    rf_status: text(7),
                }
            })
            .collect(),
    )
}

/// Sets the failpoints of `node`'s helper; `false` when it cannot be
/// reached (it is restarting).
pub fn try_set_failpoints(node: &SimNode, spec: &str) -> bool {
    let body = serde_json::json!({ "failpoints": spec }).to_string();
    matches!(
        http_post(
            helper_port(node),
            "/config",
            &[("Content-Type", "application/json")],
            &body,
        ),
        Ok((200, _))
    )
}

/// `sql` (a CREATE or DROP), again while it is refused because a node is
/// not fully synced yet (one that just came back, or the donor of its state
/// transfer): what the message asks an operator to do.
pub async fn exec_when_synced(c: &mut mysql_async::Conn, sql: &str) {
    let deadline = Instant::now() + SETTLE_BOUND;
    loop {
        match c.query_drop(sql).await {
            Ok(()) => return,
            Err(e)
                if e.to_string()
                    .contains("retry when the cluster is fully synced")
                    && Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }
}
