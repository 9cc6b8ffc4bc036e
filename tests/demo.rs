//! `shardbuddy demo`, the README's first command: it must bring up a working
//! cluster, tell the user how to connect, and clean up after itself.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

#[test]
fn smoke_runs_the_suggested_statements_on_three_nodes() {
    let output = Command::new(env!("CARGO_BIN_EXE_shardbuddy"))
        .args(["demo", "--nodes", "3", "--smoke"])
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("smoke test passed on 3 node(s)"),
        "{stdout}"
    );
}

#[test]
fn interactive_demo_prints_how_to_connect_and_cleans_up_on_sigterm() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardbuddy"))
        .args(["demo", "--nodes", "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("demo starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let mut data_dir = None;
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(dir) = line.strip_prefix("Data and logs: ") {
            data_dir = Some(dir.to_string());
        }
        let done = line.contains("Press Ctrl-C");
        seen.push(line);
        if done {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(text.contains("mysql -h127.0.0.1 -P"), "{text}");
    assert!(
        text.contains("CREATE TABLE c:t (title text) shards='4' rf='2'"),
        "{text}"
    );
    let data_dir = data_dir.unwrap_or_else(|| panic!("no data directory in:\n{text}"));
    assert!(std::path::Path::new(&data_dir).is_dir());

    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).expect("signal");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "demo did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        !std::path::Path::new(&data_dir).exists(),
        "{data_dir} was not removed"
    );
}

/// A running interactive demo with its output collected line by line.
struct Demo {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    stdin: Option<std::process::ChildStdin>,
}

impl Demo {
    fn start(nodes: &str) -> Demo {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shardbuddy"))
            .args(["demo", "--nodes", nodes])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("demo starts");
        let out = child.stdout.take().expect("stdout");
        let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = std::sync::Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let stdin = child.stdin.take();
        let demo = Demo {
            child,
            lines,
            stdin,
        };
        demo.wait_for("Press Ctrl-C");
        demo
    }

    fn text(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn wait_for(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = self.text();
            if text.contains(needle) {
                return text;
            }
            assert!(Instant::now() < deadline, "no {needle:?} in:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to the demo");
        stdin.flush().expect("flush");
    }

    fn data_dir(&self) -> String {
        let text = self.text();
        text.lines()
            .find_map(|l| l.strip_prefix("Data and logs: "))
            .unwrap_or_else(|| panic!("no data directory in:\n{text}"))
            .to_string()
    }

    fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "demo did not stop:\n{}",
                self.text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM);
            let _ = self.wait_exit();
        }
    }
}

/// Pids of live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc") {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(raw) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&raw).replace('\0', " ");
        if cmdline.contains(needle) && pid != std::process::id() {
            found.push((pid, cmdline));
        }
    }
    found
}

/// The HTTP ports of the nodes, from the banner: each node's helper is
/// started with `--listen=http://127.0.0.1:<http port>`.
fn helper_listen_args(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.split("(http 127.0.0.1:").nth(1))
        .filter_map(|rest| rest.split(',').next())
        .map(|port| format!("--listen=http://127.0.0.1:{port}"))
        .collect()
}

#[test]
fn sighup_stops_every_node_and_removes_the_data() {
    let demo = Demo::start("2");
    let dir = demo.data_dir();
    let helpers = helper_listen_args(&demo.text());
    assert_eq!(helpers.len(), 2, "{}", demo.text());
    assert!(processes_mentioning(&dir).len() >= 2, "the nodes run");
    for helper in &helpers {
        assert_eq!(processes_mentioning(helper).len(), 1, "{helper} runs");
    }

    let mut demo = demo;
    kill(Pid::from_raw(demo.child.id() as i32), Signal::SIGHUP).expect("signal");
    let status = demo.wait_exit();
    assert!(status.success(), "{status:?}\n{}", demo.text());
    assert!(
        !std::path::Path::new(&dir).exists(),
        "{dir} was not removed"
    );
    assert!(
        processes_mentioning(&dir).is_empty(),
        "nodes left behind: {:?}",
        processes_mentioning(&dir)
    );
    for helper in &helpers {
        assert!(
            processes_mentioning(helper).is_empty(),
            "helper left behind: {helper}"
        );
    }
}

#[test]
fn the_console_kills_restarts_and_reports_nodes() {
    let mut demo = Demo::start("2");
    let dir = demo.data_dir();

    demo.send("\\kill 2");
    demo.wait_for("node 2 killed");
    demo.send("\\nodes");
    let text = demo.wait_for("killed ");
    assert!(text.contains("2     killed"), "{text}");
    demo.send("\\kill 2");
    demo.wait_for("error: node 2 is not running; \\restart 2 starts it again");
    demo.send("\\restart 2");
    demo.wait_for("node 2 is running again");

    // A node that dies on its own is reported and reaped.
    let node1: u32 = processes_mentioning(&format!("{dir}/node1/searchd.conf"))
        .first()
        .map(|(pid, _)| *pid)
        .expect("node 1 runs");
    kill(Pid::from_raw(node1 as i32), Signal::SIGKILL).expect("signal");
    let text = demo.wait_for("node 1 (127.0.0.1:");
    assert!(
        text.contains("stopped by itself (signal 9 (SIGKILL))"),
        "{text}"
    );
    assert!(
        std::fs::read_to_string(format!("/proc/{node1}/stat")).is_err(),
        "node 1 was not reaped"
    );

    demo.send("SHOW TABLES");
    demo.wait_for("Empty set");
    demo.send("\\frob");
    demo.wait_for("unknown command '\\frob'; \\help lists the demo's commands");
    demo.send("\\quit");
    let status = demo.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(!std::path::Path::new(&dir).exists());
}

#[test]
fn a_single_node_demo_explains_why_it_cannot_add_a_node() {
    let mut demo = Demo::start("1");
    demo.send("\\add");
    demo.wait_for(
        "error: this demo has a single node and no cluster to add one to; start it with --nodes 2 or more",
    );
    demo.send("\\kill 1");
    demo.wait_for("node 1 killed");
    demo.send("SHOW TABLES");
    demo.wait_for("error: no node is running to send the statement to; \\restart a node first");
    demo.send("\\quit");
    assert!(demo.wait_exit().success());
}
