//! One demo node: a `manticore-sim` (or real `searchd`) process in a process
//! group of its own, with this binary as its helper. Killing the group kills
//! the node and its shardbuddy together; the demo reaps what it starts.

use std::collections::HashSet;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use super::error::DemoError;
use crate::client::{ClientConfig, DaemonClient};

/// How long a node may take to serve before the demo gives up on it.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Fresh ports to try when another process took a chosen port first.
const START_ATTEMPTS: usize = 3;
/// How long a node may take to stop after SIGTERM before it is killed.
pub const STOP_GRACE: Duration = Duration::from_secs(10);

/// What runs a node.
#[derive(Debug, Clone)]
pub enum Engine {
    /// The project's simulator; it binds no replication ports.
    Sim { binary: PathBuf },
    /// A real searchd; Galera binds ports of the replication range.
    Searchd { binary: PathBuf, version: String },
}

impl Engine {
    pub fn binary(&self) -> &Path {
        match self {
            Self::Sim { binary } | Self::Searchd { binary, .. } => binary,
        }
    }

    /// How the banner names the engine.
    pub fn describe(&self) -> String {
        match self {
            Self::Sim { .. } => {
                "manticore-sim (the project's Manticore-compatible simulator)".to_string()
            }
            Self::Searchd { binary, version } => format!("{version} ({})", binary.display()),
        }
    }

    /// The process name shown in narration.
    pub fn process_name(&self) -> &'static str {
        match self {
            Self::Sim { .. } => "manticore-sim",
            Self::Searchd { .. } => "searchd",
        }
    }

    /// Ports in the replication range of one node.
    fn replication_ports(&self) -> u16 {
        match self {
            Self::Sim { .. } => 3,
            // One pair per replication cluster, and sharding makes several.
            Self::Searchd { .. } => 20,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub mysql: u16,
    pub http: u16,
    pub api: u16,
    pub replication: (u16, u16),
}

/// Why a node is not running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    /// `\kill` (or the demo stopping it).
    Killed,
    /// It went away by itself (or someone outside the demo killed it).
    Exited(String),
}

pub struct Node {
    /// 1-based, as the user names it.
    pub number: usize,
    pub ports: Ports,
    pub dir: PathBuf,
    child: Option<Child>,
    pub down: Option<Down>,
}

impl Node {
    /// The node id other nodes see: the binary-API listener.
    pub fn id(&self) -> String {
        format!("127.0.0.1:{}", self.ports.api)
    }

    pub fn mysql_command(&self) -> String {
        format!("mysql -h127.0.0.1 -P{}", self.ports.mysql)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// A client for the node's HTTP listener that looks like a user (no
    /// Buddy `User-Agent`), so sharding statements reach its helper.
    pub fn client(&self) -> DaemonClient {
        DaemonClient::new(ClientConfig {
            base_url: format!("http://127.0.0.1:{}", self.ports.http),
            token: None,
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(2),
        })
        .as_plain_client()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("searchd.log")
    }

    /// Reaps the process if it has exited on its own, and kills what is
    /// left of its group (its helper). Returns how it ended.
    pub fn check_exited(&mut self) -> Option<String> {
        let child = self.child.as_mut()?;
        let status = child.try_wait().ok()??;
        self.kill_group(Signal::SIGKILL);
        self.child = None;
        let how = describe_status(status);
        self.down = Some(Down::Exited(how.clone()));
        Some(how)
    }

    /// `kill -9` of the node's whole process group, then reaps it.
    pub fn kill(&mut self) {
        self.kill_group(Signal::SIGKILL);
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        self.down = Some(Down::Killed);
    }

    /// Asks the node to stop (SIGTERM to its group); [`Node::finish_stop`]
    /// waits for it.
    pub fn request_stop(&mut self) {
        self.kill_group(Signal::SIGTERM);
    }

    /// Whether the node has exited after [`Node::request_stop`]; kills and
    /// reaps it once `deadline` has passed.
    pub fn finish_stop(&mut self, deadline: Instant) -> bool {
        let Some(child) = self.child.as_mut() else {
            return true;
        };
        let exited = matches!(child.try_wait(), Ok(Some(_)));
        if exited || Instant::now() >= deadline {
            self.kill();
            return true;
        }
        false
    }

    fn kill_group(&self, signal: Signal) {
        if let Some(pid) = self.pid().and_then(|p| i32::try_from(p).ok()) {
            // The node leads its own group: this reaches its helper too.
            let _ = killpg(Pid::from_raw(pid), signal);
        }
    }

    /// The last lines of the node's log and output, for a failure report.
    pub fn log_tail(&self) -> String {
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
        // Safety net for early returns and panics; the demo stops nodes
        // gracefully itself.
        if self.child.is_some() {
            self.kill();
        }
    }
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(s) => format!("signal {signal} ({})", s.as_str()),
            Err(_) => format!("signal {signal}"),
        },
        _ => "an unknown status".to_string(),
    }
}

/// Ports handed out by this demo, so two nodes never get the same one.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

fn free_port() -> std::io::Result<u16> {
    free_range(1)
}

/// The kernel's ephemeral port range (`ip_local_port_range`).
fn ephemeral_ports() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// The first of `count` consecutive free ports, below the ephemeral range:
/// a port in that range may be taken by an outgoing connection between this
/// check and the node's bind, and one an outgoing connection left in
/// TIME-WAIT cannot be bound for a minute, so on a busy machine a run of
/// free ones is hard to find there. (The simulator's test kit picks its
/// ports the same way; the demo does not depend on the simulator's crate.)
fn free_range(count: u16) -> std::io::Result<u16> {
    let (low, _) = ephemeral_ports();
    let first = 10_000u16.min(low.saturating_sub(count));
    let slots = (low.saturating_sub(first) / count).max(1);
    // Start somewhere that differs between processes (demos started together
    // have neighbouring pids, hence the hash), then walk the slots.
    let spread = u64::from(std::process::id()).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    let start = (spread % u64::from(slots)) as u16;
    for step in 0..slots {
        let base = first + ((start + step) % slots) * count;
        let mut taken = TAKEN.lock().unwrap_or_else(|p| p.into_inner());
        let set = taken.get_or_insert_with(HashSet::new);
        if (0..count).any(|i| set.contains(&(base + i))) {
            continue;
        }
        if (0..count).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            set.extend((0..count).map(|i| base + i));
            return Ok(base);
        }
    }
    Err(std::io::Error::other("no free range of ports found"))
}

fn allocate(engine: &Engine) -> Result<Ports, DemoError> {
    let io = |e| DemoError::io("find free ports", e);
    Ok(Ports {
        mysql: free_port().map_err(io)?,
        http: free_port().map_err(io)?,
        api: free_port().map_err(io)?,
        replication: {
            let len = engine.replication_ports();
            let first = free_range(len).map_err(io)?;
            (first, first + len - 1)
        },
    })
}

/// Writes node `number`'s configuration and starts it; retries with fresh
/// ports when another process took one of them first.
pub async fn start_new(
    engine: &Engine,
    buddy: &Path,
    root: &Path,
    number: usize,
) -> Result<Node, DemoError> {
    let mut attempt = 1;
    loop {
        let dir = root.join(format!("node{number}"));
        let mut node = Node {
            number,
            ports: allocate(engine)?,
            dir,
            child: None,
            down: None,
        };
        write_config(&node, buddy)?;
        match launch(&mut node, engine).await {
            Ok(()) => return Ok(node),
            Err(StartFailure::PortTaken(_)) if attempt < START_ATTEMPTS => attempt += 1,
            Err(StartFailure::PortTaken(e) | StartFailure::Other(e)) => return Err(e),
        }
    }
}

/// Starts a node that is down again, with its ports and data.
pub async fn restart(node: &mut Node, engine: &Engine) -> Result<(), DemoError> {
    if node.is_running() {
        node.request_stop();
        let deadline = Instant::now() + STOP_GRACE;
        while !node.finish_stop(deadline) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    launch(node, engine).await.map_err(|e| match e {
        StartFailure::PortTaken(e) | StartFailure::Other(e) => e,
    })
}

fn write_config(node: &Node, buddy: &Path) -> Result<(), DemoError> {
    let io = |e| DemoError::io("write the node's configuration", e);
    std::fs::create_dir_all(node.dir.join("data")).map_err(io)?;
    let p = node.ports;
    let config = format!(
        "searchd {{\n    listen = 127.0.0.1:{mysql}:mysql41\n    listen = 127.0.0.1:{http}:http\n    \
         listen = 127.0.0.1:{api}\n    listen = 127.0.0.1:{r0}-{r1}:replication\n    data_dir = {data}\n    \
         log = {log}\n    query_log = {qlog}\n    pid_file = {pid}\n    buddy_path = {buddy}\n}}\n",
        mysql = p.mysql,
        http = p.http,
        api = p.api,
        r0 = p.replication.0,
        r1 = p.replication.1,
        data = node.dir.join("data").display(),
        log = node.dir.join("searchd.log").display(),
        qlog = node.dir.join("query.log").display(),
        pid = node.dir.join("searchd.pid").display(),
        buddy = buddy.display(),
    );
    std::fs::write(node.dir.join("searchd.conf"), config).map_err(io)
}

enum StartFailure {
    /// Another process bound one of the node's ports first.
    PortTaken(DemoError),
    Other(DemoError),
}

async fn launch(node: &mut Node, engine: &Engine) -> Result<(), StartFailure> {
    let spawned = (|| {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.dir.join("stdout.log"))?;
        let err = out.try_clone()?;
        Command::new(engine.binary())
            .arg("-c")
            .arg(node.dir.join("searchd.conf"))
            .arg("--nodetach")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            // A group of its own: `\kill` reaches the node and its helper,
            // and the terminal's Ctrl-C and hang-up reach only the demo,
            // which stops the nodes in order.
            .process_group(0)
            .spawn()
    })();
    let child = spawned.map_err(|e| {
        StartFailure::Other(DemoError::io(
            format!("start {}", engine.binary().display()),
            e,
        ))
    })?;
    node.child = Some(child);
    node.down = None;
    wait_ready(node).await
}

async fn wait_ready(node: &mut Node) -> Result<(), StartFailure> {
    let client = node.client();
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if client.query("SHOW STATUS LIKE 'uptime'").await.is_ok() {
            return Ok(());
        }
        let exited = node.check_exited().is_some();
        if exited || Instant::now() > deadline {
            // The temporary directory goes away with the demo: show the log now.
            let log = node.log_tail();
            node.kill();
            let port_taken = exited && (log.contains("failed to listen") || log.contains("in use"));
            let err = DemoError::NodeFailed {
                node: node.number,
                what: if exited {
                    "exited while starting"
                } else {
                    "did not start serving within 30 s"
                },
                log,
            };
            return Err(if port_taken {
                StartFailure::PortTaken(err)
            } else {
                StartFailure::Other(err)
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks every running node to stop, waits for them together, and kills the
/// ones that take longer than [`STOP_GRACE`].
pub async fn stop_all(nodes: &mut [Node]) {
    for node in nodes.iter_mut() {
        node.request_stop();
    }
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        let mut all = true;
        for node in nodes.iter_mut() {
            all &= node.finish_stop(deadline);
        }
        if all {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first executable file called `name` in `PATH`.
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The simulator next to this executable (the workspace's target directory
/// holds both), or `MANTICORE_SIM_BIN`.
pub fn sim_binary() -> Result<PathBuf, DemoError> {
    if let Some(p) = std::env::var_os("MANTICORE_SIM_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().map_err(|e| DemoError::io("locate this executable", e))?;
    let dir = exe.parent().unwrap_or(Path::new("."));
    [
        dir.join("manticore-sim"),
        dir.join("..").join("manticore-sim"),
    ]
    .into_iter()
    .find(|c| c.is_file())
    .ok_or_else(|| DemoError::SimNotFound {
        dir: dir.to_path_buf(),
    })
}

/// The first line `searchd --version` prints, or a plain name when it
/// prints nothing useful within a few seconds.
pub async fn searchd_version(binary: &Path) -> String {
    let run = tokio::process::Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(5), run).await {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout)
            .lines()
            .find(|l| !l.trim().is_empty())
            .map(|l| l.trim().to_string())
            .unwrap_or_else(|| "searchd".to_string()),
        _ => "searchd".to_string(),
    }
}
