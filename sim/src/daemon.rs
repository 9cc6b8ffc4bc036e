//! Running a node: listeners, helper hosting, signals and shutdown.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use nix::fcntl::{Flock, FlockArg};

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::buddy::process::supervise;
use crate::config::{Config, ConfigError, Proto};
use crate::logfile::DaemonLog;
use crate::net::{http, mysql};
use crate::node::{HelperInfo, Node, NodeError};

#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Node(#[from] NodeError),
    #[error("log file: {0}")]
    Log(std::io::Error),
    #[error("failed to listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("failed to lock pid file '{path}': {reason} (searchd already running?)")]
    PidLocked { path: String, reason: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Opens and locks the pid file and writes this process's pid into it. The lock lasts as long
/// as the daemon (the kernel drops it when the process ends, also on `kill -9`): it is how
/// `--stopwait` and `--status` tell that the daemon still runs, as searchd does.
pub fn lock_pid_file(path: &Path) -> Result<Flock<File>, DaemonError> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let mut lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, errno)| {
        // strerror(3)'s text, as searchd prints it.
        let text = std::io::Error::from_raw_os_error(errno as i32).to_string();
        DaemonError::PidLocked {
            path: path.display().to_string(),
            reason: text.split(" (os error").next().unwrap_or(&text).to_string(),
        }
    })?;
    lock.set_len(0)?;
    lock.write_all(format!("{}\n", std::process::id()).as_bytes())?;
    lock.flush()?;
    Ok(lock)
}

/// Peers (node ids, comma-separated) whose traffic a node drops from its start: the testkit
/// sets it so that a cut link holds across a restart from the first moment.
pub const BLOCKED_PEERS_ENV: &str = "MANTICORE_SIM_BLOCKED_PEERS";
/// Statement faults (a JSON array of rules in their text form, see [`crate::faults`]) a node
/// applies from its start, after those of its configuration: the testkit sets it so that the
/// faults set at run time hold across a restart (their counts start again).
pub const STATEMENT_FAULTS_ENV: &str = "MANTICORE_SIM_STATEMENT_FAULTS";

/// How the daemon was asked to start (searchd's command line).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// `--new-cluster`: bootstrap every saved cluster here as its primary component.
    pub new_cluster: bool,
}

pub async fn run(config: Config) -> Result<(), DaemonError> {
    run_with(config, StartOptions::default(), || {}).await
}

/// Runs the node until SIGTERM/SIGINT; `ready` is called once every listener accepts
/// connections (a daemonizing parent is told then).
pub async fn run_with(
    config: Config,
    options: StartOptions,
    ready: impl FnOnce(),
) -> Result<(), DaemonError> {
    // A second daemon with the same pid file stops here, before it touches the log.
    let pid_lock = match &config.pid_file {
        Some(pid_file) => Some(lock_pid_file(pid_file)?),
        None => None,
    };
    let log = DaemonLog::open(config.log.as_deref()).map_err(DaemonError::Log)?;
    log.line(&format!(
        "starting daemon version '{}' ...",
        config.sim.version
    ));
    for key in &config.unknown_keys {
        log.line(&format!("WARNING: key '{key}' is unknown, ignored"));
    }
    let node = Arc::new(Node::open(config, log)?);
    // Test tooling: links cut before a restart are cut from the first moment (see testkit).
    if let Ok(peers) = std::env::var(BLOCKED_PEERS_ENV) {
        let peers: Vec<String> = peers
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect();
        crate::cluster::set_blocked(&node, peers);
    }
    if let Ok(text) = std::env::var(STATEMENT_FAULTS_ENV) {
        match serde_json::from_str::<Vec<crate::faults::StatementFault>>(&text) {
            Ok(rules) => rules.into_iter().for_each(|r| node.statement_faults.add(r)),
            Err(e) => node.log.line(&format!(
                "WARNING: {STATEMENT_FAULTS_ENV}: {e}; no statement faults taken from it"
            )),
        }
    }
    // Clusters are known (as disconnected) before the first client can ask about them.
    crate::cluster::start(&node);
    let mut servers = Vec::new();
    for l in &node.config.listeners {
        let listener = match l.proto {
            Proto::Replication => continue,
            _ => TcpListener::bind(l.addr())
                .await
                .map_err(|source| DaemonError::Bind {
                    addr: l.addr().to_string(),
                    source,
                })?,
        };
        let what = match l.proto {
            Proto::Mysql => "mysql",
            Proto::Http => "http",
            _ => "sphinx and http(s)",
        };
        node.log
            .line(&format!("listening on {} for {what}", l.addr()));
        let n = node.clone();
        servers.push(match l.proto {
            Proto::Mysql => tokio::spawn(mysql::serve(n, listener)),
            Proto::Sphinx => tokio::spawn(http::serve(n, listener, http::Port::Api)),
            _ => tokio::spawn(http::serve(n, listener, http::Port::Http)),
        });
    }
    tokio::spawn(crate::cluster::supervise(node.clone(), options.new_cluster));
    let (stop_tx, stop_rx) = watch::channel(false);
    let helper = start_helper(&node, stop_rx);
    node.log.line("accepting connections");
    ready();
    wait_for_signal().await?;
    node.log
        .line(&format!("shutdown daemon version '{}' ...", node.version()));
    let _ = stop_tx.send(true);
    if let Some(h) = helper {
        let _ = h.await;
    }
    for s in servers {
        s.abort();
    }
    if let Some(pid_file) = &node.config.pid_file {
        let _ = std::fs::remove_file(pid_file);
    }
    node.log.line("shutdown complete");
    // The lock goes with the process (the kernel drops it at exit), not before: `--stopwait`
    // returns when it is free, and the daemon must then be gone.
    std::mem::forget(pid_lock);
    Ok(())
}

fn start_helper(
    node: &Arc<Node>,
    stop: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if let Ok(url) = std::env::var("MANTICORE_HELPER_URL") {
        node.log.line(&format!("[BUDDY] attached to {url}"));
        node.set_helper(Some(HelperInfo {
            url,
            version: String::new(),
        }));
        return None;
    }
    match node.config.buddy_path.as_deref() {
        Some("") => None,
        Some(path) => Some(tokio::spawn(supervise(
            node.clone(),
            path.to_string(),
            node.helper_token.clone(),
            stop,
        ))),
        None => {
            node.log
                .line("WARNING: [BUDDY] no buddy_path configured, disabled");
            None
        }
    }
}

async fn wait_for_signal() -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
