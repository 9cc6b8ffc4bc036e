//! What can stop the demo, and what its console answers to a command it
//! cannot carry out. Each text is one sentence that names the object and
//! says what to do next; `docs/messages.md` lists them all.

use std::path::PathBuf;

/// Why the demo could not start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("cannot {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error(
        "manticore-sim was not found in {}; build the whole workspace (cargo build --release) or set MANTICORE_SIM_BIN",
        dir.display()
    )]
    SimNotFound { dir: PathBuf },
    #[error("no searchd was found on PATH; install Manticore Search, give its path with --searchd PATH, or use --engine sim")]
    SearchdNotFound,
    #[error("node {node} {what}; its log ends:\n{log}")]
    NodeFailed {
        node: usize,
        what: &'static str,
        log: String,
    },
    #[error("node {node} could not run `{sql}`: {error}")]
    Statement {
        node: usize,
        sql: String,
        error: String,
    },
    #[error("smoke test failed: {0}")]
    Smoke(String),
}

impl DemoError {
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            what: what.into(),
            source,
        }
    }
}

/// What the console answers to a command it cannot carry out; the demo
/// keeps running.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConsoleError {
    #[error("unknown command '{0}'; \\help lists the demo's commands")]
    UnknownCommand(String),
    #[error("\\{0} needs a node number, for example \\{0} 2")]
    MissingNode(&'static str),
    #[error("there is no node '{given}'; the nodes are 1 to {count} (\\nodes lists them)")]
    NoSuchNode { given: String, count: usize },
    #[error("node {0} is not running; \\restart {0} starts it again")]
    NotRunning(usize),
    #[error(
        "this demo has a single node and no cluster to add one to; start it with --nodes 2 or more"
    )]
    NoCluster,
    #[error("no node is running to send the statement to; \\restart a node first")]
    NoNodeRunning,
}
