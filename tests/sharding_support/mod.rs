//! Helpers for the sharding integration tests: sim nodes with this very
//! shardbuddy binary as their helper, MySQL access, and an independent
//! implementation of the daemon's shard routing.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use manticore_sim::testkit::{NodeOptions, SimNode};

pub mod proxy;
pub mod scrape;
pub mod traffic;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row, Value};

/// Timings that keep the tests quick; production defaults are slower.
pub const FAST: &[(&str, &str)] = &[
    ("SHARDBUDDY_POLL_MS", "20"),
    ("SHARDBUDDY_HEARTBEAT_MS", "200"),
    ("SHARDBUDDY_LEASE_TIMEOUT_MS", "1500"),
    ("SHARDBUDDY_RETRY_BASE_MS", "100"),
    ("SHARDBUDDY_RETRY_MAX_MS", "500"),
];

pub fn options(extra_env: &[(&str, &str)]) -> NodeOptions {
    let mut env: Vec<(String, String)> = FAST
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    env.extend(
        extra_env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string())),
    );
    NodeOptions {
        buddy_path: Some(env!("CARGO_BIN_EXE_shardbuddy").to_string()),
        env,
        ..NodeOptions::default()
    }
}

/// Starts node `index` and waits until its helper has announced itself.
pub fn start(index: usize, extra_env: &[(&str, &str)]) -> SimNode {
    let node = SimNode::start(index, options(extra_env)).expect("sim node starts");
    wait_for_log(&node, "[BUDDY] started", Duration::from_secs(10));
    node
}

pub fn wait_for_log(node: &SimNode, needle: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while !node.log_text().contains(needle) {
        assert!(
            Instant::now() < deadline,
            "node {} did not log '{needle}' within {timeout:?}; log:\n{}",
            node.index(),
            node.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub async fn conn(node: &SimNode) -> Conn {
    let opts = Opts::from_url(&node.mysql_url()).expect("valid url");
    Conn::new(opts).await.expect("mysql connection")
}

fn text(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// Rows as text; panics with the server's error.
pub async fn rows(c: &mut Conn, sql: &str) -> Vec<Vec<String>> {
    let result: Vec<Row> = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    result
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| text(&r.as_ref(i).cloned().unwrap_or(Value::NULL)))
                .collect()
        })
        .collect()
}

/// The first column of every row.
pub async fn column(c: &mut Conn, sql: &str) -> Vec<String> {
    rows(c, sql)
        .await
        .into_iter()
        .map(|mut r| r.swap_remove(0))
        .collect()
}

pub async fn count(c: &mut Conn, sql: &str) -> u64 {
    let v = column(c, sql).await;
    v.first()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{sql}: no count in {v:?}"))
}

pub async fn exec(c: &mut Conn, sql: &str) {
    c.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// The error message the server answers `sql` with (panics on success).
pub async fn error(c: &mut Conn, sql: &str) -> String {
    match c.query_drop(sql).await {
        Ok(()) => panic!("{sql}: expected an error, got success"),
        Err(mysql_async::Error::Server(e)) => e.message,
        Err(e) => panic!("{sql}: expected a server error, got {e}"),
    }
}

/// Inserts `ids` through `table` in batches.
pub async fn insert_docs(c: &mut Conn, table: &str, ids: impl IntoIterator<Item = u64>) {
    let ids: Vec<u64> = ids.into_iter().collect();
    for batch in ids.chunks(500) {
        let values: Vec<String> = batch.iter().map(|i| format!("({i}, 'doc {i}')")).collect();
        exec(
            c,
            &format!(
                "INSERT INTO {table} (id, title) VALUES {}",
                values.join(", ")
            ),
        )
        .await;
    }
}

/// The daemon's shard routing (Lamping & Veach jump consistent hash of the
/// CRC-32 of the decimal id), written independently of the simulator.
pub fn shard_of(id: u64, targets: u32) -> u32 {
    let mut key = u64::from(crc32fast::hash(id.to_string().as_bytes()));
    let (mut b, mut j): (i64, i64) = (-1, 0);
    while j < i64::from(targets) {
        b = j;
        key = key.wrapping_mul(2862933555777941757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

/// For a failure message: which shard tables of `table`, on which running
/// node, hold each of `ids` (a lost write found on one copy only points at
/// a copy that diverged; on none, at a write that never landed).
pub async fn where_ids_are(nodes: &mut [SimNode], table: &str, ids: &[u64]) -> String {
    if ids.is_empty() {
        return String::new();
    }
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    let mut out = Vec::new();
    for node in nodes.iter_mut() {
        if !node.is_running() {
            continue;
        }
        let Ok(mut c) = Conn::new(Opts::from_url(&node.mysql_url()).expect("url")).await else {
            continue;
        };
        let Ok(tables) = c.query::<String, _>("SHOW TABLES FROM system").await else {
            continue;
        };
        for shard in tables
            .iter()
            .filter(|t| t.starts_with(&format!("system.{table}_s")))
        {
            let sql = format!("SELECT id FROM {shard} WHERE id IN ({})", list.join(","));
            let found: Vec<u64> = c.query(&sql).await.unwrap_or_default();
            out.push(format!("node {} {shard}: {found:?}", node.index()));
        }
    }
    format!("ids {ids:?} by copy: {}", out.join("; "))
}

/// Everything about `table` that sharding metadata and the queue hold on the
/// node behind `c`: an empty list means "no trace".
pub async fn traces_of(c: &mut Conn, table: &str) -> Vec<String> {
    let mut found = Vec::new();
    let system = column(c, "SHOW TABLES FROM system").await;
    found.extend(
        system
            .iter()
            .filter(|t| t.starts_with(&format!("system.{table}_s")))
            .cloned(),
    );
    // A helper killed while it set the metadata up may leave some of its
    // tables missing until the next statement makes them: a missing table
    // holds no trace.
    let has = |t: &str| system.iter().any(|s| s == t);
    if has("system.sharding_state") && has("system.sharding_queue") && has("system.sharding_table")
    {
        let keys = column(
            c,
            &format!(
                "SELECT key FROM system.sharding_state WHERE REGEX(key, '(^table:{table}$)|(^group:shard_(create|drop)_{table}_)') LIMIT 1000"
            ),
        )
        .await;
        found.extend(keys);
        let queue = column(
            c,
            &format!(
                "SELECT query FROM system.sharding_queue WHERE REGEX(operation_group, '^shard_(create|drop)_{table}_') LIMIT 1000"
            ),
        )
        .await;
        found.extend(queue);
        let placement = column(
            c,
            &format!("SELECT node FROM system.sharding_table WHERE table = '{table}' LIMIT 1000"),
        )
        .await;
        found.extend(
            placement
                .into_iter()
                .map(|n| format!("placement row on {n}")),
        );
    }
    found
}

/// Waits until no node holds a trace of `tables` (see [`traces_of`]). A DROP
/// answers once the table is gone; the deletion of its clusters, and the
/// queue rows doing it, go on after the answer.
pub async fn wait_for_no_traces(nodes: &[SimNode], tables: &[&str]) {
    wait_until(
        &format!("no trace of {tables:?} on any node"),
        Duration::from_secs(30),
        async || {
            for node in nodes {
                let mut c = conn(node).await;
                for table in tables {
                    if !traces_of(&mut c, table).await.is_empty() {
                        return false;
                    }
                }
            }
            true
        },
    )
    .await;
}

/// Nodes of one test. When the test fails, their logs are printed, since the
/// temporary directories holding them go away with the nodes.
pub struct Nodes(pub Vec<SimNode>);

impl std::ops::Deref for Nodes {
    type Target = Vec<SimNode>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Nodes {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Nodes {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for node in &self.0 {
                eprintln!(
                    "===== log of node {} ({}) =====\n{}",
                    node.index(),
                    node.node_id(),
                    node.log_text()
                );
            }
        }
    }
}

/// `n` nodes joined into cluster `c` (node 1 created it), each with the
/// extra helper environment `env`.
pub async fn cluster_of(n: usize, env: &[(&str, &str)]) -> Nodes {
    let nodes = Nodes((1..=n).map(|i| start(i, env)).collect());
    let mut first = conn(&nodes[0]).await;
    exec(&mut first, "CREATE CLUSTER c").await;
    for node in &nodes[1..] {
        join(node, &nodes[0]).await;
    }
    nodes
}

/// `node` joins cluster `c` through `seed`.
pub async fn join(node: &SimNode, seed: &SimNode) {
    let mut c = conn(node).await;
    exec(&mut c, &format!("JOIN CLUSTER c AT '{}'", seed.node_id())).await;
}

/// One row of SHOW SHARDING STATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copy {
    pub shard: u32,
    pub node: String,
    pub status: String,
    pub rf_status: String,
}

/// SHOW SHARDING STATUS of `table`, through `c`.
pub async fn copies(c: &mut Conn, table: &str) -> Vec<Copy> {
    rows(c, &format!("SHOW SHARDING STATUS {table}"))
        .await
        .into_iter()
        .map(|r| Copy {
            shard: r[1].parse().expect("shard number"),
            node: r[2].clone(),
            status: r[3].clone(),
            rf_status: r[7].clone(),
        })
        .collect()
}

/// Each shard has `rf` active copies, on `nodes` distinct nodes in all, none
/// pending or inactive.
pub fn settled(copies: &[Copy], shards: u32, rf: usize, nodes: usize) -> bool {
    let active = copies.iter().filter(|c| c.status == "active").count();
    let holders: std::collections::BTreeSet<&str> =
        copies.iter().map(|c| c.node.as_str()).collect();
    active == copies.len()
        && copies.len() == shards as usize * rf
        && holders.len() == nodes
        && copies.iter().all(|c| c.rf_status == "ok")
}

/// The pid of the shardbuddy process `node` runs as its helper.
pub fn helper_pid(node: &SimNode) -> Option<i32> {
    let parent = node.pid()?;
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: i32 = entry.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            // `pid (comm) state ppid …`; comm may hold spaces, so split after ')'.
            let (comm, rest) = stat.split_once(" (")?.1.rsplit_once(") ")?;
            let ppid: u32 = rest.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent && comm == "shardbuddy").then_some(pid)
        })
}

/// `kill -9 pid`.
pub fn kill_9(pid: i32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill -9");
}

/// Waits until `node`'s log holds `needle` at least `times` times.
pub fn wait_for_log_count(node: &SimNode, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while node.log_text().matches(needle).count() < times {
        assert!(
            Instant::now() < deadline,
            "node {} did not log '{needle}' {times} times",
            node.index()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` until it holds (hang protection only: what is waited for is
/// a condition, not a time).
pub async fn wait_until<F>(what: &str, timeout: Duration, mut check: F)
where
    F: AsyncFnMut() -> bool,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs `sql` on a fresh connection to the node at `url`; the server's error
/// text on failure.
pub async fn run_on(url: String, sql: String) -> Result<(), String> {
    use mysql_async::prelude::Queryable;
    let opts = mysql_async::Opts::from_url(&url).map_err(|e| e.to_string())?;
    let mut c = mysql_async::Conn::new(opts)
        .await
        .map_err(|e| e.to_string())?;
    c.query_drop(sql).await.map_err(|e| match e {
        mysql_async::Error::Server(e) => e.message,
        other => other.to_string(),
    })
}
