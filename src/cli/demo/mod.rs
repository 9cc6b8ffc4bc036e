//! `shardbuddy demo`: a local Manticore-compatible cluster with shardbuddy
//! attached, in the spirit of `cockroach demo`.
//!
//! It starts N nodes — `manticore-sim` by default, a real `searchd` with
//! `--engine searchd` — on free loopback ports, each with this very binary as
//! its `buddy_path`, joins them into the replication cluster `c`, prints how
//! to connect, and then narrates: it reports a node that dies, and its
//! console (`\help`) kills, restarts and adds nodes, so failover can be
//! watched without leaving it. Ctrl-C, SIGTERM, a hang-up (the terminal
//! closing) or `\quit` stop every node and remove the temporary data.
//! `--smoke` instead runs the suggested statements, checks their results,
//! and exits (for scripts and tests).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

mod console;
mod error;
mod node;

use console::Command;
use error::{ConsoleError, DemoError};
use node::{Down, Engine, Node};

/// Start a local cluster of Manticore-compatible nodes with shardbuddy attached
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Start a local cluster with shardbuddy attached: N nodes on free loopback ports, \
                  each running this shardbuddy as its helper, joined into the replication cluster \
                  `c`. The demo prints how to connect, reports nodes that die, and takes commands \
                  on its console (\\help): \\kill N, \\restart N, \\add, \\nodes, \\quit. Ctrl-C, \
                  SIGTERM or closing the terminal stop every node and remove the data.",
    after_help = "Examples:\n  shardbuddy demo\n  shardbuddy demo --nodes 5\n  \
                  shardbuddy demo --engine searchd --searchd /usr/bin/searchd\n  \
                  shardbuddy demo --smoke"
)]
pub(in crate::cli) struct Args {
    /// Number of nodes to start
    #[arg(long, value_name = "N", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=16))]
    nodes: u8,
    /// Run the suggested statements, check their results and exit
    #[arg(long)]
    smoke: bool,
    /// What runs the nodes: the project's simulator, or a real searchd
    /// [default: sim, or searchd when --searchd is given]
    #[arg(long, value_enum, value_name = "ENGINE")]
    engine: Option<EngineKind>,
    /// The searchd binary for --engine searchd [default: searchd on PATH]
    #[arg(long, value_name = "PATH")]
    searchd: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum EngineKind {
    Sim,
    Searchd,
}

pub(in crate::cli) fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("shardbuddy demo: {}", DemoError::io("start the runtime", e));
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(demo(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shardbuddy demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to the terminal, ignoring failures: after a hang-up the terminal
/// is gone, and the demo must still stop its nodes and remove its data.
fn say(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
    let _ = out.flush();
}

fn prompt() {
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{}", console::PROMPT);
    let _ = out.flush();
}

/// SIGINT (Ctrl-C), SIGTERM and SIGHUP (the terminal closing).
struct StopSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    async fn wait(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}

async fn choose_engine(args: &Args) -> Result<Engine, DemoError> {
    let kind = args.engine.unwrap_or(if args.searchd.is_some() {
        EngineKind::Searchd
    } else {
        EngineKind::Sim
    });
    match kind {
        EngineKind::Sim => Ok(Engine::Sim {
            binary: node::sim_binary()?,
        }),
        EngineKind::Searchd => {
            let binary = args
                .searchd
                .clone()
                .or_else(|| node::find_on_path("searchd"))
                .ok_or(DemoError::SearchdNotFound)?;
            let version = node::searchd_version(&binary).await;
            Ok(Engine::Searchd { binary, version })
        }
    }
}

/// The demo's nodes and how to start more.
struct Demo {
    engine: Engine,
    buddy: PathBuf,
    root: PathBuf,
    nodes: Vec<Node>,
}

impl Demo {
    fn clustered(&self) -> bool {
        self.nodes.len() > 1
    }

    async fn sql(
        &self,
        index: usize,
        statement: &str,
    ) -> Result<crate::protocol::ResultSet, DemoError> {
        self.nodes[index]
            .client()
            .query_one(statement)
            .await
            .map_err(|e| DemoError::Statement {
                node: index + 1,
                sql: statement.to_string(),
                error: e.to_string(),
            })
    }

    async fn start(&mut self, count: usize) -> Result<(), DemoError> {
        for number in 1..=count {
            let node = node::start_new(&self.engine, &self.buddy, &self.root, number).await?;
            self.nodes.push(node);
        }
        if self.clustered() {
            self.sql(0, "CREATE CLUSTER c").await?;
            for i in 1..self.nodes.len() {
                self.join(i).await?;
            }
        }
        Ok(())
    }

    /// Joins node `index` to cluster `c` through the first other running node.
    async fn join(&self, index: usize) -> Result<(), DemoError> {
        let seed = self
            .nodes
            .iter()
            .enumerate()
            .find(|(i, n)| *i != index && n.is_running())
            .map_or_else(|| self.nodes[0].id(), |(_, n)| n.id());
        self.sql(index, &format!("JOIN CLUSTER c AT '{seed}'"))
            .await
            .map(|_| ())
    }

    fn create_statement(&self) -> String {
        let (prefix, rf) = self.prefix_and_rf();
        format!("CREATE TABLE {prefix}t (title text) shards='4' rf='{rf}'")
    }

    fn prefix_and_rf(&self) -> (&'static str, u32) {
        if self.clustered() {
            ("c:", 2)
        } else {
            ("", 1)
        }
    }

    fn banner(&self) -> String {
        let mut out = String::new();
        let first = &self.nodes[0];
        let (prefix, _) = self.prefix_and_rf();
        out.push_str(&format!(
            "shardbuddy demo: {} node(s) running {}, each with this shardbuddy as its helper{}.\n",
            self.nodes.len(),
            self.engine.describe(),
            if self.clustered() {
                ", joined in replication cluster c"
            } else {
                ""
            }
        ));
        if let (Engine::Sim { .. }, Some(searchd)) = (&self.engine, node::find_on_path("searchd")) {
            out.push_str(&format!(
                "A real searchd is installed ({}): `shardbuddy demo --engine searchd` runs the demo on it.\n",
                searchd.display()
            ));
        }
        out.push('\n');
        for n in &self.nodes {
            out.push_str(&format!(
                "  node {}: {}   (http 127.0.0.1:{}, node id {})\n",
                n.number,
                n.mysql_command(),
                n.ports.http,
                n.id()
            ));
        }
        out.push_str(&format!(
            "\nConnect:   {}\nOver HTTP: curl -s 127.0.0.1:{}/cli -d 'SHOW SHARDING STATUS'\n",
            first.mysql_command(),
            first.ports.http
        ));
        out.push_str("\nTry:\n");
        out.push_str(&format!("  {};\n", self.create_statement()));
        out.push_str("  INSERT INTO t (id, title) VALUES (1, 'hello'), (2, 'world');\n");
        out.push_str("  SELECT COUNT(*) FROM t;\n");
        out.push_str("  SHOW SHARDING STATUS t;\n");
        if self.clustered() {
            out.push_str(
                "then kill a node here with \\kill 2, watch SHOW SHARDING STATUS t, bring it back with \\restart 2,\n",
            );
        }
        out.push_str(&format!("and  DROP TABLE {prefix}t;\n"));
        out.push_str(&format!(
            "\nData and logs: {}\nType \\help for the demo's commands. Press Ctrl-C or type \\quit to stop every node and remove the data.",
            self.root.display()
        ));
        out
    }

    fn nodes_table(&self) -> String {
        let mut out =
            String::from("node  state                 mysql  http   node id          pid\n");
        for n in &self.nodes {
            let state = match (&n.down, n.is_running()) {
                (_, true) => "running".to_string(),
                (Some(Down::Killed), false) => "killed".to_string(),
                (Some(Down::Exited(how)), false) => format!("exited ({how})"),
                (None, false) => "stopped".to_string(),
            };
            out.push_str(&format!(
                "{:<5} {:<21} {:<6} {:<6} {:<16} {}\n",
                n.number,
                state,
                n.ports.mysql,
                n.ports.http,
                n.id(),
                n.pid().map_or_else(|| "-".to_string(), |p| p.to_string())
            ));
        }
        out.trim_end().to_string()
    }

    /// Runs one console line; `false` means quit.
    async fn handle(&mut self, line: &str) -> bool {
        let outcome = match console::parse(line, self.nodes.len()) {
            Ok(command) => self.run(command).await,
            Err(e) => Err(e.to_string()),
        };
        match outcome {
            Ok(Some(text)) => say(&text),
            Ok(None) => return false,
            Err(text) => say(&format!("error: {text}")),
        }
        true
    }

    /// `Ok(None)` quits; `Ok(Some(text))` and `Err(text)` are printed.
    async fn run(&mut self, command: Command) -> Result<Option<String>, String> {
        let text = match command {
            Command::Nothing => String::new(),
            Command::Help => console::HELP.to_string(),
            Command::Nodes => self.nodes_table(),
            Command::Quit => return Ok(None),
            Command::Kill(n) => {
                let node = &mut self.nodes[n - 1];
                if !node.is_running() {
                    return Err(ConsoleError::NotRunning(n).to_string());
                }
                node.kill();
                format!(
                    "node {n} killed: kill -9 of its {} process and its shardbuddy.\n\
                     Each shard with a replica on it has one replica less now. With rf='2' such a shard \
                     still answers reads but accepts no writes until the node is back (\\restart {n});\n\
                     SHOW SHARDING STATUS shows those shards as degraded.",
                    self.engine.process_name()
                )
            }
            Command::Restart(n) => {
                say(&format!("starting node {n} again…"));
                let engine = self.engine.clone();
                let node = &mut self.nodes[n - 1];
                node::restart(node, &engine)
                    .await
                    .map_err(|e| e.to_string())?;
                format!(
                    "node {n} is running again ({}). It rejoins cluster c by itself; SHOW SHARDING STATUS \
                     shows rf_status ok once its shards have caught up.",
                    node.mysql_command()
                )
            }
            Command::Add => {
                if !self.clustered() {
                    return Err(ConsoleError::NoCluster.to_string());
                }
                let number = self.nodes.len() + 1;
                say(&format!("starting node {number}…"));
                let node = node::start_new(&self.engine, &self.buddy, &self.root, number)
                    .await
                    .map_err(|e| e.to_string())?;
                let command = node.mysql_command();
                self.nodes.push(node);
                self.join(number - 1).await.map_err(|e| e.to_string())?;
                format!(
                    "node {number} started ({command}) and joined cluster c. Tables created from now on \
                     are placed on it too; existing tables keep their placement (shardbuddy does not \
                     rebalance yet)."
                )
            }
            Command::Sql(statement) => {
                let node = self
                    .nodes
                    .iter()
                    .find(|n| n.is_running())
                    .ok_or_else(|| ConsoleError::NoNodeRunning.to_string())?;
                let started = Instant::now();
                match node.client().query(&statement).await {
                    Ok(sets) => crate::console::render(&sets, started.elapsed())
                        .trim_end()
                        .to_string(),
                    Err(e) => format!("ERROR: {e}"),
                }
            }
        };
        Ok(Some(text))
    }

    /// Reports nodes that went away by themselves (and reaps them).
    fn check_nodes(&mut self) -> bool {
        let mut reported = false;
        for node in &mut self.nodes {
            if let Some(how) = node.check_exited() {
                say(&format!(
                    "\nnode {} ({}) stopped by itself ({how}); its log is {}. \\restart {} starts it again.",
                    node.number,
                    node.id(),
                    node.log_path().display(),
                    node.number
                ));
                reported = true;
            }
        }
        reported
    }
}

/// Lines typed on the console, read on a thread of their own (a read of a
/// terminal cannot be cancelled; the thread simply ends with the process).
/// `None` when there is no console: stdin is a terminal this process does
/// not own (the demo runs in the background, where reading would stop it).
fn console_lines() -> Option<mpsc::UnboundedReceiver<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() && !owns_terminal(&stdin) {
        return None;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Some(rx)
}

/// Whether this process is in the terminal's foreground process group.
fn owns_terminal(stdin: &std::io::Stdin) -> bool {
    use std::os::fd::AsFd;
    nix::unistd::tcgetpgrp(stdin.as_fd()).is_ok_and(|pgrp| pgrp == nix::unistd::getpgrp())
}

async fn demo(args: Args) -> Result<(), DemoError> {
    // Installed first, so a stop request is never lost once the user has
    // been told how to stop.
    let mut stop =
        StopSignals::install().map_err(|e| DemoError::io("install the signal handlers", e))?;
    let engine = choose_engine(&args).await?;
    let buddy = std::env::current_exe().map_err(|e| DemoError::io("locate this executable", e))?;
    let root = tempfile::Builder::new()
        .prefix("shardbuddy-demo-")
        .tempdir()
        .map_err(|e| DemoError::io("create the temporary directory", e))?;
    let mut demo = Demo {
        engine,
        buddy,
        root: root.path().to_path_buf(),
        nodes: Vec::new(),
    };
    let started = Instant::now();
    let interrupted = tokio::select! {
        started = demo.start(usize::from(args.nodes)) => { started?; false }
        _ = stop.wait() => true,
    };
    if !interrupted {
        if args.smoke {
            let result = smoke(&demo).await;
            node::stop_all(&mut demo.nodes).await;
            return result;
        }
        say(&demo.banner());
        say(&format!(
            "(started in {:.1} s)",
            started.elapsed().as_secs_f64()
        ));
        interact(&mut demo, &mut stop).await;
        say("\nstopping every node…");
    }
    node::stop_all(&mut demo.nodes).await;
    let shown = root.path().display().to_string();
    drop(demo);
    match root.close() {
        Ok(()) => say(&format!("stopped; removed {shown}")),
        Err(e) => say(&format!("stopped; could not remove {shown}: {e}")),
    }
    Ok(())
}

/// The console and the node watch, until a stop signal or `\quit`.
async fn interact(demo: &mut Demo, stop: &mut StopSignals) {
    let terminal = std::io::stdin().is_terminal();
    let mut lines = console_lines();
    if lines.is_some() {
        prompt();
    } else {
        say("(the demo runs in the background, so its console is off; stop it with kill -TERM)");
    }
    let mut watch = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = stop.wait() => return,
            line = next_line(&mut lines) => match line {
                Some(line) => {
                    let go_on = tokio::select! {
                        go_on = demo.handle(&line) => go_on,
                        _ = stop.wait() => false,
                    };
                    if !go_on {
                        return;
                    }
                    prompt();
                }
                // Ctrl-D on a terminal quits; a script's input may simply end.
                None if terminal => return,
                None => lines = None,
            },
            _ = watch.tick() => {
                if demo.check_nodes() && lines.is_some() {
                    prompt();
                }
            }
        }
    }
}

async fn next_line(lines: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    match lines {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs the suggested statements and checks what they return.
async fn smoke(demo: &Demo) -> Result<(), DemoError> {
    let (prefix, _) = demo.prefix_and_rf();
    demo.sql(0, &demo.create_statement()).await?;
    let values: Vec<String> = (1..=100).map(|i| format!("({i}, 'doc {i}')")).collect();
    demo.sql(
        0,
        &format!("INSERT INTO t (id, title) VALUES {}", values.join(", ")),
    )
    .await?;
    for i in 0..demo.nodes.len() {
        let count = demo
            .sql(i, "SELECT COUNT(*) AS c FROM t")
            .await?
            .text(0, "c");
        if count.as_deref() != Some("100") {
            return Err(DemoError::Smoke(format!(
                "node {} counts {count:?} rows of t instead of 100",
                i + 1
            )));
        }
    }
    demo.sql(0, &format!("DROP TABLE {prefix}t")).await?;
    say(&format!(
        "smoke test passed on {} node(s) of {}",
        demo.nodes.len(),
        demo.engine.describe()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::path::Path;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: Args,
    }

    fn args(line: &[&str]) -> Result<Args, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("demo").chain(line.iter().copied())).map(|w| w.args)
    }

    #[test]
    fn options() {
        let a = args(&[]).unwrap();
        assert_eq!((a.nodes, a.smoke, a.engine), (3, false, None));
        let a = args(&["--nodes=5", "--smoke", "--engine", "searchd"]).unwrap();
        assert_eq!(
            (a.nodes, a.smoke, a.engine),
            (5, true, Some(EngineKind::Searchd))
        );
        for bad in [
            &["--nodes", "0"][..],
            &["--nodes=17"],
            &["--engine=docker"],
            &["--frob"],
        ] {
            assert!(args(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn searchd_given_explicitly_selects_the_searchd_engine() {
        let a = args(&["--searchd", "/nonexistent/searchd"]).unwrap();
        match choose_engine(&a).await.unwrap() {
            Engine::Searchd { binary, version } => {
                assert_eq!(binary, Path::new("/nonexistent/searchd"));
                assert_eq!(version, "searchd");
            }
            other => panic!("{other:?}"),
        }
    }
}
