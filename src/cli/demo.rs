//! `shardbuddy demo [--nodes N] [--smoke]`: a local Manticore-compatible
//! cluster with shardbuddy attached, in the spirit of `cockroach demo`.
//!
//! It starts N `manticore-sim` nodes on free loopback ports, each with this
//! very binary as its `buddy_path`, joins them into the replication cluster
//! `c`, prints how to connect, and runs until Ctrl-C; then it stops every
//! process and removes its temporary data. `--smoke` instead runs the
//! statements it suggests, checks their results, and exits (used by tests).

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use crate::client::{ClientConfig, DaemonClient};

struct Options {
    nodes: usize,
    smoke: bool,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        nodes: 3,
        smoke: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) => (f, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        match flag {
            "--nodes" => {
                let v = inline
                    .or_else(|| it.next().cloned())
                    .ok_or("--nodes needs a value")?;
                opts.nodes = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=16).contains(n))
                    .ok_or_else(|| format!("--nodes must be between 1 and 16, got '{v}'"))?;
            }
            "--smoke" => opts.smoke = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown option '{other}'")),
        }
    }
    Ok(opts)
}

const USAGE: &str = "usage: shardbuddy demo [--nodes N] [--smoke]";

pub fn run(args: Vec<String>) -> ExitCode {
    let opts = match parse_args(&args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("shardbuddy demo: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shardbuddy demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo(opts)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardbuddy demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One simulated node.
struct Node {
    mysql: u16,
    http: u16,
    api: u16,
    dir: PathBuf,
    child: Child,
}

impl Node {
    fn client(&self) -> DaemonClient {
        DaemonClient::new(ClientConfig {
            base_url: format!("http://127.0.0.1:{}", self.http),
            token: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(2),
        })
        .as_plain_client()
    }

    /// The last lines the node wrote to its log and to stdout/stderr.
    fn log_tail(&self) -> String {
        let mut lines = Vec::new();
        for file in ["searchd.log", "stdout.log"] {
            let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            lines.extend(
                all[all.len().saturating_sub(10)..]
                    .iter()
                    .map(|l| format!("  {l}")),
            );
        }
        lines.join("\n")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        // Reaped already: its pid may belong to another process by now.
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(0));
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ports handed out by this demo, so two nodes never get the same one (the
/// OS may offer a just-released port again).
static TAKEN: std::sync::Mutex<BTreeSet<u16>> = std::sync::Mutex::new(BTreeSet::new());

fn free_port() -> std::io::Result<u16> {
    for _ in 0..100 {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if TAKEN.lock().unwrap_or_else(|p| p.into_inner()).insert(port) {
            return Ok(port);
        }
    }
    Err(std::io::Error::other("no free port found"))
}

fn sim_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("MANTICORE_SIM_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe
        .parent()
        .ok_or("cannot locate this executable's directory")?;
    for candidate in [
        dir.join("manticore-sim"),
        dir.join("..").join("manticore-sim"),
    ] {
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    Err(format!(
        "manticore-sim not found next to {} (build the workspace: cargo build --release), or set MANTICORE_SIM_BIN",
        exe.display()
    ))
}

/// How long a node may take to serve before the demo gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Fresh ports to try when another process took a chosen port first.
const START_ATTEMPTS: usize = 3;

/// Starts node `index` and waits until it serves.
async fn start_ready_node(
    sim: &Path,
    buddy: &Path,
    root: &Path,
    index: usize,
) -> Result<Node, String> {
    let mut attempt = 1;
    loop {
        let mut node = start_node(sim, buddy, root, index)?;
        match wait_ready(&mut node).await {
            Ok(()) => return Ok(node),
            Err(Failure::PortTaken(_)) if attempt < START_ATTEMPTS => attempt += 1,
            Err(Failure::PortTaken(e) | Failure::Other(e)) => return Err(e),
        }
    }
}

fn start_node(sim: &Path, buddy: &Path, root: &Path, index: usize) -> Result<Node, String> {
    let io = |e: std::io::Error| e.to_string();
    let dir = root.join(format!("node{}", index + 1));
    std::fs::create_dir_all(dir.join("data")).map_err(io)?;
    let (mysql, http, api, repl) = (
        free_port().map_err(io)?,
        free_port().map_err(io)?,
        free_port().map_err(io)?,
        free_port().map_err(io)?,
    );
    let config = format!(
        "searchd {{\n    listen = 127.0.0.1:{mysql}:mysql41\n    listen = 127.0.0.1:{http}:http\n    listen = 127.0.0.1:{api}\n    \
         listen = 127.0.0.1:{repl}-{}:replication\n    data_dir = {data}\n    log = {log}\n    query_log = {qlog}\n    \
         pid_file = {pid}\n    buddy_path = {buddy}\n}}\n",
        repl + 2,
        data = dir.join("data").display(),
        log = dir.join("searchd.log").display(),
        qlog = dir.join("query.log").display(),
        pid = dir.join("searchd.pid").display(),
        buddy = buddy.display(),
    );
    let conf = dir.join("searchd.conf");
    std::fs::write(&conf, config).map_err(io)?;
    let out = std::fs::File::create(dir.join("stdout.log")).map_err(io)?;
    let err = out.try_clone().map_err(io)?;
    let child = Command::new(sim)
        .arg("-c")
        .arg(&conf)
        .arg("--nodetach")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", sim.display()))?;
    Ok(Node {
        mysql,
        http,
        api,
        dir,
        child,
    })
}

enum Failure {
    /// Another process bound one of the node's ports first.
    PortTaken(String),
    Other(String),
}

async fn wait_ready(node: &mut Node) -> Result<(), Failure> {
    let client = node.client();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if client.query("SHOW STATUS LIKE 'uptime'").await.is_ok() {
            return Ok(());
        }
        let exited = matches!(node.child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() > deadline {
            // The temporary directory goes away with the demo: show the log now.
            let log = node.log_tail();
            let what = if exited { "exited" } else { "did not start" };
            let message = format!("node {} {what}; its log ends:\n{log}", node.dir.display());
            return Err(if exited && log.contains("failed to listen") {
                Failure::PortTaken(message)
            } else {
                Failure::Other(message)
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn sql(node: &Node, statement: &str) -> Result<crate::protocol::ResultSet, String> {
    node.client()
        .query_one(statement)
        .await
        .map_err(|e| format!("{statement}: {e}"))
}

async fn demo(opts: Options) -> Result<(), String> {
    // Installed first, so a stop request is never lost once the user has
    // been told how to stop.
    let stop =
        StopSignals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let sim = sim_binary()?;
    let buddy = std::env::current_exe().map_err(|e| e.to_string())?;
    let root = tempfile::Builder::new()
        .prefix("shardbuddy-demo-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let mut nodes = Vec::with_capacity(opts.nodes);
    for i in 0..opts.nodes {
        nodes.push(start_ready_node(&sim, &buddy, root.path(), i).await?);
    }
    if nodes.len() > 1 {
        sql(&nodes[0], "CREATE CLUSTER c").await?;
        for node in &nodes[1..] {
            sql(
                node,
                &format!("JOIN CLUSTER c AT '127.0.0.1:{}'", nodes[0].api),
            )
            .await?;
        }
    }
    let (prefix, rf) = if nodes.len() > 1 { ("c:", 2) } else { ("", 1) };
    let create = format!("CREATE TABLE {prefix}t (title text) shards='4' rf='{rf}'");
    if opts.smoke {
        return smoke(&nodes, &create, prefix).await;
    }
    println!(
        "shardbuddy demo: {} manticore-sim node(s) with shardbuddy attached",
        nodes.len()
    );
    for (i, n) in nodes.iter().enumerate() {
        println!(
            "  node {}: mysql -h127.0.0.1 -P{}   (http {}, api {})",
            i + 1,
            n.mysql,
            n.http,
            n.api
        );
    }
    println!("\nTry:\n  mysql -h127.0.0.1 -P{}", nodes[0].mysql);
    println!("  {create};");
    println!("  INSERT INTO t (id, title) VALUES (1, 'hello'), (2, 'world');");
    println!("  SELECT COUNT(*) FROM t;");
    println!("  SHOW SHARDING STATUS;");
    println!("  SHOW SHARDING MASTER;");
    println!("  DROP TABLE {prefix}t;");
    println!(
        "\nData and logs: {}\nPress Ctrl-C to stop.",
        root.path().display()
    );
    stop.wait().await;
    println!("\nstopping…");
    drop(nodes);
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM.
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn wait(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Runs the suggested statements and checks what they return.
async fn smoke(nodes: &[Node], create: &str, prefix: &str) -> Result<(), String> {
    sql(&nodes[0], create).await?;
    let values: Vec<String> = (1..=100).map(|i| format!("({i}, 'doc {i}')")).collect();
    sql(
        &nodes[0],
        &format!("INSERT INTO t (id, title) VALUES {}", values.join(", ")),
    )
    .await?;
    for (i, node) in nodes.iter().enumerate() {
        let count = sql(node, "SELECT COUNT(*) AS c FROM t").await?.text(0, "c");
        if count.as_deref() != Some("100") {
            return Err(format!(
                "node {} counts {count:?} rows instead of 100",
                i + 1
            ));
        }
    }
    sql(&nodes[0], &format!("DROP TABLE {prefix}t")).await?;
    println!("smoke test passed on {} node(s)", nodes.len());
    Ok(())
}
