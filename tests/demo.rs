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
