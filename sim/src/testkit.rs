//! Test support: run `manticore-sim` nodes as real processes on free loopback ports.
//!
//! ```no_run
//! use manticore_sim::testkit::{NodeOptions, SimNode};
//! let mut node = SimNode::start(1, NodeOptions::default()).unwrap();
//! let (status, body) = node.raw_sql("SHOW TABLES").unwrap();
//! node.kill();      // kill -9 (the node and its helper)
//! node.restart().unwrap();
//! ```
//!
//! Network partitions: [`cut_link`] makes two nodes drop each other's traffic (replication
//! messages and agent queries alike) until [`restore_link`]; [`partition`] cuts every link
//! between groups. The cut is kept across restarts of either node.
//!
//! Statement faults: [`fail_statement`] answers the N-th (or every from the N-th, or every)
//! statement matching a pattern with an error, without running it; [`delay_statement`] runs it
//! later; [`clear_statement_faults`] removes them (see [`crate::faults`] for patterns and
//! counting). They are set on the running node without a restart, and kept across restarts
//! (counting again from 0).
//!
//! Every node runs in its own process group; dropping a [`SimNode`] (also while a test panics)
//! kills the group, so helpers started by the node go with it.
//!
//! The binary is found through `MANTICORE_SIM_BIN`, else next to the running test executable
//! (`target/<profile>/manticore-sim` beside `target/<profile>/deps/`); run
//! `cargo build --bins` first when testing from another package.

use std::collections::{BTreeSet, HashSet};
use std::fs;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

pub use crate::faults::{Action, Hits, StatementFault};

/// How long a node may take to start serving before `start` fails.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// Ports in a node's replication range.
const REPLICATION_PORTS: u16 = 10;

/// Ports handed out in this process, so parallel tests never get the same one.
static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A port the OS reports free, not handed out before by this process (see [`free_range`]).
pub fn free_port() -> io::Result<u16> {
    free_range(1)
}

/// The kernel's ephemeral port range (`ip_local_port_range`).
fn ephemeral_ports() -> (u16, u16) {
    fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// `count` consecutive free ports, taken below the ephemeral range: a port there may be taken by
/// an outgoing connection between this check and the node's bind, and one an outgoing
/// connection left in TIME-WAIT cannot be bound for a minute (tests that open thousands of
/// connections leave many).
fn free_range(count: u16) -> io::Result<u16> {
    let (low, _) = ephemeral_ports();
    let first = 10_000u16.min(low.saturating_sub(count));
    let slots = (low.saturating_sub(first) / count).max(1);
    // Start somewhere that differs between test processes, then walk the slots.
    let start = std::process::id() as u16 % slots;
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
    Err(io::Error::other("no free port range found"))
}

/// Where the `manticore-sim` binary is.
pub fn binary() -> io::Result<PathBuf> {
    if let Ok(p) = std::env::var("MANTICORE_SIM_BIN") {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe()?;
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let candidate = dir.join("manticore-sim");
    if candidate.exists() {
        return Ok(candidate);
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("manticore-sim binary not found at {} (set MANTICORE_SIM_BIN or run `cargo build --bins`)", candidate.display()),
    ))
}

/// A fresh set of free ports for one node.
pub fn free_ports() -> io::Result<Ports> {
    let replication = free_range(REPLICATION_PORTS)?;
    Ok(Ports {
        mysql: free_port()?,
        http: free_port()?,
        api: free_port()?,
        replication,
        replication_last: replication + REPLICATION_PORTS - 1,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports {
    pub mysql: u16,
    pub http: u16,
    pub api: u16,
    pub replication: u16,
    pub replication_last: u16,
}

/// How a node is configured.
#[derive(Debug, Clone, Default)]
pub struct NodeOptions {
    /// `buddy_path` (`None`: helper disabled with `buddy_path =`).
    pub buddy_path: Option<String>,
    /// Extra `key = value` lines for the `searchd` section.
    pub searchd_lines: Vec<String>,
    /// Lines for the `sim` section (simulator-only settings).
    pub sim_lines: Vec<String>,
    /// Extra environment variables for the node process.
    pub env: Vec<(String, String)>,
}

/// One simulated node running as a child process.
pub struct SimNode {
    index: usize,
    ports: Ports,
    dir: tempfile::TempDir,
    options: NodeOptions,
    child: Option<Child>,
    /// Peers (node ids) whose traffic this node drops.
    blocked: Mutex<BTreeSet<String>>,
    /// Statement faults set through the testkit (kept across restarts).
    faults: Mutex<Vec<StatementFault>>,
}

impl SimNode {
    /// Writes the configuration of node `index` on fresh free ports (without starting it).
    pub fn configure(index: usize, options: NodeOptions) -> io::Result<SimNode> {
        SimNode::configure_with_ports(index, free_ports()?, options)
    }

    /// Like [`SimNode::configure`] with ports chosen by the caller (see [`free_ports`]).
    pub fn configure_with_ports(
        index: usize,
        ports: Ports,
        options: NodeOptions,
    ) -> io::Result<SimNode> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("sim-node{index}-"))
            .tempdir()?;
        let node = SimNode {
            index,
            ports,
            dir,
            options,
            child: None,
            blocked: Mutex::new(BTreeSet::new()),
            faults: Mutex::new(Vec::new()),
        };
        fs::create_dir_all(node.data_dir())?;
        fs::write(node.config_path(), node.config_text())?;
        Ok(node)
    }

    /// Configures and starts node `index`, waiting until it serves. A port taken by another
    /// process between choosing and binding it is retried with fresh ports.
    pub fn start(index: usize, options: NodeOptions) -> io::Result<SimNode> {
        let mut attempt = 0;
        loop {
            let mut node = SimNode::configure(index, options.clone())?;
            match node.launch() {
                Ok(()) => return Ok(node),
                Err(e) if attempt < 3 && e.to_string().contains("failed to listen") => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    fn config_text(&self) -> String {
        let p = &self.ports;
        let mut text = format!(
            "searchd {{\nlisten = 127.0.0.1:{}:mysql41\nlisten = 127.0.0.1:{}:http\nlisten = 127.0.0.1:{}\nlisten = 127.0.0.1:{}-{}:replication\ndata_dir = {}\nlog = {}\nquery_log = {}\npid_file = {}\nbuddy_path = {}\n",
            p.mysql,
            p.http,
            p.api,
            p.replication,
            p.replication_last,
            self.data_dir().display(),
            self.log_path().display(),
            self.dir.path().join("query.log").display(),
            self.dir.path().join("searchd.pid").display(),
            self.options.buddy_path.as_deref().unwrap_or(""),
        );
        for line in &self.options.searchd_lines {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("}\n");
        if !self.options.sim_lines.is_empty() {
            text.push_str("sim {\n");
            for line in &self.options.sim_lines {
                text.push_str(line);
                text.push('\n');
            }
            text.push_str("}\n");
        }
        text
    }

    /// Starts the process (after `configure`, `kill` or `stop`) and waits until it serves.
    pub fn launch(&mut self) -> io::Result<()> {
        if self.child.is_some() {
            return Err(io::Error::other(format!(
                "node {} is already running",
                self.index
            )));
        }
        let out = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("stdout.log"))?;
        let mut cmd = Command::new(binary()?);
        cmd.arg("-c")
            .arg(self.config_path())
            .arg("--nodetach")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .process_group(0);
        for (k, v) in &self.options.env {
            cmd.env(k, v);
        }
        // A cut link holds from the node's first moment (a restarted node cannot reach its
        // peers for searchd's remote version check either).
        let blocked: Vec<String> = self.blocked_peers().into_iter().collect();
        if !blocked.is_empty() {
            cmd.env(crate::daemon::BLOCKED_PEERS_ENV, blocked.join(","));
        }
        // So do statement faults, from the first statement on.
        let faults = self.statement_faults();
        if !faults.is_empty() {
            let json = serde_json::to_string(&faults).map_err(io::Error::other)?;
            cmd.env(crate::daemon::STATEMENT_FAULTS_ENV, json);
        }
        self.child = Some(cmd.spawn()?);
        self.wait_ready(START_TIMEOUT)?;
        // A cut link outlives a restart.
        if !self.blocked_peers().is_empty() {
            self.push_links()?;
        }
        Ok(())
    }

    fn blocked_peers(&self) -> BTreeSet<String> {
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Tells the running node which peers' traffic to drop.
    fn push_links(&self) -> io::Result<()> {
        let peers: Vec<String> = self.blocked_peers().into_iter().collect();
        let body = serde_json::json!({ "type": "links", "blocked": peers });
        self.control(&body, "setting links")
    }

    /// Sends a test-tooling message to the node's control endpoint (`POST /_sim/cluster` on the
    /// API port, where replication messages arrive).
    fn control(&self, message: &serde_json::Value, what: &str) -> io::Result<()> {
        let body = message.to_string();
        // With auth configured, node-to-node endpoints want the shared agent secret.
        let secret = self
            .options
            .sim_lines
            .iter()
            .filter_map(|l| l.split_once('='))
            .find(|(k, _)| k.trim() == "agent_secret")
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_else(|| "1".to_string());
        let (status, reply) = http_post(
            self.ports.api,
            crate::cluster::messages::PATH,
            &[
                ("Content-Type", "application/json"),
                (crate::exec::agent::AGENT_HEADER, secret.as_str()),
            ],
            &body,
        )?;
        if status != 200 {
            return Err(io::Error::other(format!(
                "node {}: {what} failed: HTTP {status} {reply}",
                self.index
            )));
        }
        Ok(())
    }

    /// The statement faults set through the testkit (see [`add_statement_fault`]).
    pub fn statement_faults(&self) -> Vec<StatementFault> {
        self.faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set_link(&self, peer: &SimNode, cut: bool) -> io::Result<()> {
        {
            let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
            if cut {
                blocked.insert(peer.node_id());
            } else {
                blocked.remove(&peer.node_id());
            }
        }
        if self.child.is_some() {
            self.push_links()?;
        }
        Ok(())
    }

    /// Waits until the MySQL, HTTP and API ports accept connections.
    pub fn wait_ready(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        for port in [self.ports.mysql, self.ports.http, self.ports.api] {
            loop {
                if TcpStream::connect_timeout(
                    &SocketAddr::from(([127, 0, 0, 1], port)),
                    Duration::from_millis(200),
                )
                .is_ok()
                {
                    break;
                }
                if let Some(child) = self.child.as_mut() {
                    if let Some(status) = child.try_wait()? {
                        self.child = None;
                        return Err(io::Error::other(format!(
                            "node {} exited at start ({status}): {}",
                            self.index,
                            self.stdout_text()
                        )));
                    }
                }
                if Instant::now() > deadline {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("node {} did not start serving", self.index),
                    ));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// `kill -9` of the node and everything in its process group (its helper included).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            if let Ok(pid) = i32::try_from(child.id()) {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            let _ = child.wait();
        }
    }

    /// Graceful stop (SIGTERM); the node stops its helper. Killed after `timeout`.
    pub fn stop_within(&mut self, timeout: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
            let deadline = Instant::now() + timeout;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    // Reap anything the node left behind in its group.
                    let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = child.wait();
    }

    pub fn stop(&mut self) {
        self.stop_within(Duration::from_secs(15));
    }

    /// Starts the node again with the same configuration and data.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.launch()
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn index(&self) -> usize {
        self.index
    }

    pub fn ports(&self) -> Ports {
        self.ports
    }

    /// `127.0.0.1:<api port>`: the node id other nodes and the helper use.
    pub fn node_id(&self) -> String {
        format!("127.0.0.1:{}", self.ports.api)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("searchd.conf")
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("searchd.log")
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn stdout_text(&self) -> String {
        fs::read_to_string(self.dir.path().join("stdout.log")).unwrap_or_default()
    }

    /// `mysql://root@127.0.0.1:<port>` for MySQL clients.
    pub fn mysql_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.ports.mysql)
    }

    /// Sends SQL to `POST /sql?mode=raw` on the HTTP port; returns (status, body).
    pub fn raw_sql(&self, sql: &str) -> io::Result<(u16, String)> {
        let body = format!("query={}", utf8_percent_encode(sql, NON_ALPHANUMERIC));
        http_post(
            self.ports.http,
            "/sql?mode=raw",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            &body,
        )
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A blocking HTTP/1.1 POST to `127.0.0.1:<port>`; returns (status, body).
pub fn http_post(
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut req =
        format!("POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| io::Error::other("bad HTTP reply"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    Ok((status, body))
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Cuts the network between two nodes: both drop each other's traffic until [`restore_link`].
pub fn cut_link(a: &SimNode, b: &SimNode) -> io::Result<()> {
    a.set_link(b, true)?;
    b.set_link(a, true)
}

pub fn restore_link(a: &SimNode, b: &SimNode) -> io::Result<()> {
    a.set_link(b, false)?;
    b.set_link(a, false)
}

/// Cuts every link between nodes of different groups.
pub fn partition(groups: &[&[&SimNode]]) -> io::Result<()> {
    for (i, g) in groups.iter().enumerate() {
        for other in &groups[i + 1..] {
            for a in g.iter() {
                for b in other.iter() {
                    cut_link(a, b)?;
                }
            }
        }
    }
    Ok(())
}

/// Restores every link between the given nodes.
pub fn heal(nodes: &[&SimNode]) -> io::Result<()> {
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            restore_link(a, b)?;
        }
    }
    Ok(())
}

/// Adds a statement fault to `node` (see [`crate::faults`]): on the running node at once, without
/// a restart, and from the first moment of every later start (the counts start again then).
/// Each rule counts its own matches from the moment it is set.
pub fn add_statement_fault(node: &SimNode, rule: StatementFault) -> io::Result<()> {
    node.faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(rule.clone());
    if node.child.is_some() {
        let message = serde_json::json!({ "type": "add_statement_fault", "rule": rule });
        node.control(&message, "setting a statement fault")?;
    }
    Ok(())
}

/// Makes the statements of `node` that match `pattern` (case-insensitive substring, or a glob
/// over the whole statement with `*` and `?`) and that `hits` selects fail with `message`: the
/// client gets searchd's statement error with that text (MySQL `ERROR 1064`, HTTP 500
/// `{"error":…}`), the statement does nothing, and the helper never sees it.
///
/// ```no_run
/// # use manticore_sim::testkit::*;
/// # let node = SimNode::start(1, NodeOptions::default()).unwrap();
/// // The 2nd INSERT into t fails; every CREATE of a shard of t from now on too.
/// fail_statement(&node, "insert into t ", Hits::Nth(2), "disk full").unwrap();
/// fail_statement(&node, "CREATE TABLE IF NOT EXISTS system.t_s*", Hits::Every, "no").unwrap();
/// clear_statement_faults(&node).unwrap();
/// ```
pub fn fail_statement(node: &SimNode, pattern: &str, hits: Hits, message: &str) -> io::Result<()> {
    add_statement_fault(node, StatementFault::fail(pattern, hits, message))
}

/// Makes the statements of `node` that match `pattern` and that `hits` selects run `delay` later
/// (then they answer as usual). Patterns as in [`fail_statement`].
pub fn delay_statement(
    node: &SimNode,
    pattern: &str,
    hits: Hits,
    delay: Duration,
) -> io::Result<()> {
    add_statement_fault(node, StatementFault::delay(pattern, hits, delay))
}

/// Removes every statement fault of `node`, those of its `sim { statement_fault = … }`
/// configuration included (until it restarts).
pub fn clear_statement_faults(node: &SimNode) -> io::Result<()> {
    node.faults
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clear();
    if node.child.is_some() {
        let message = serde_json::json!({ "type": "clear_statement_faults" });
        node.control(&message, "clearing statement faults")?;
    }
    Ok(())
}

/// Starts nodes 1..=count with the same options.
pub fn start_nodes(count: usize, options: &NodeOptions) -> io::Result<Vec<SimNode>> {
    (1..=count)
        .map(|i| SimNode::start(i, options.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_never_handed_out_twice() {
        let mut seen = HashSet::new();
        for _ in 0..20 {
            let p = free_ports().unwrap();
            for port in [p.mysql, p.http, p.api]
                .into_iter()
                .chain(p.replication..=p.replication_last)
            {
                assert!(seen.insert(port), "port {port} handed out twice");
            }
        }
    }

    #[test]
    fn dechunks_bodies() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
