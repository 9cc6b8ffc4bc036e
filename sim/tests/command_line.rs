//! searchd's command line: `manticore-sim -c CONF` detaches once the node accepts connections
//! (pid file written), `--status` reports on it, `--stopwait` stops it and waits, and
//! `--new-cluster` bootstraps the saved clusters.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{conn, exec, rows};
use manticore_sim::testkit::{binary, NodeOptions, SimNode};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

fn run(config: &Path, args: &[&str]) -> Output {
    Command::new(binary().unwrap())
        .arg("-c")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

/// Whether a process is gone (or a zombie nobody reaped: the daemon's parent, the command that
/// started it, has exited long ago).
fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A node configured by the testkit but started by the command line; killed on drop if a
/// test fails half-way.
struct Daemon {
    node: SimNode,
}

impl Daemon {
    fn new(index: usize) -> Daemon {
        Daemon {
            node: SimNode::configure(index, NodeOptions::default()).unwrap(),
        }
    }

    fn pid_file(&self) -> PathBuf {
        self.node.dir().join("searchd.pid")
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn start(&self, args: &[&str]) {
        let out = run(&self.node.config_path(), args);
        assert!(out.status.success(), "start failed: {}", text(&out));
        assert!(
            text(&out).contains("accepting connections") || text(&out).contains("listening on"),
            "{}",
            text(&out)
        );
    }

    fn stopwait(&self) -> Output {
        run(&self.node.config_path(), &["--stopwait"])
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            if manticore_sim::control::pid_file_locked(&self.pid_file()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_form_a_cluster_and_stop_on_request() {
    let (a, b) = (Daemon::new(1), Daemon::new(2));
    // Not running yet: --status and --stopwait fail with searchd's code 1.
    let status = run(&a.node.config_path(), &["--status"]);
    assert_eq!(status.status.code(), Some(1), "{}", text(&status));
    assert_eq!(a.stopwait().status.code(), Some(1));

    a.start(&[]);
    b.start(&[]);
    // The command returned; the daemons run on (the pid file names a live, locked process).
    for d in [&a, &b] {
        let pid = d.pid().expect("pid file written");
        assert!(!gone(pid), "daemon {pid} is gone");
        assert!(manticore_sim::control::pid_file_locked(&d.pid_file()));
        assert!(d.node.log_text().contains("accepting connections"));
    }
    let status = run(&a.node.config_path(), &["--status"]);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    assert!(text(&status).contains("searchd status\n--------------\nuptime: "));
    // A second daemon on the same pid file refuses to start.
    let again = run(&a.node.config_path(), &[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        text(&again).contains("(searchd already running?)"),
        "{}",
        text(&again)
    );

    let mut ca = conn(&a.node).await;
    let mut cb = conn(&b.node).await;
    exec(&mut ca, "CREATE TABLE t (title text)").await;
    exec(&mut ca, "CREATE CLUSTER c").await;
    exec(&mut ca, "ALTER CLUSTER c ADD t").await;
    exec(
        &mut cb,
        &format!("JOIN CLUSTER c AT '{}'", a.node.node_id()),
    )
    .await;
    exec(&mut cb, "INSERT INTO c:t (id, title) VALUES (1, 'one')").await;
    assert_eq!(
        rows(&mut ca, "SELECT id, title FROM t").await,
        vec![vec!["1".to_string(), "one".to_string()]]
    );
    drop((ca, cb));

    for d in [&b, &a] {
        let pid = d.pid().unwrap();
        let out = d.stopwait();
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(text(&out).contains(&format!("successfully sent SIGTERM to pid {pid}")));
        // --stopwait returned after the daemon exited.
        assert!(gone(pid), "{pid} still runs");
        assert!(d.node.log_text().contains("shutdown complete"));
    }

    // Both stopped: b alone cannot reach a for the remote version check ...
    b.start(&[]);
    let mut cb = conn(&b.node).await;
    assert_eq!(
        rows(&mut cb, "SHOW STATUS LIKE 'cluster_c_status'").await,
        vec![vec![
            "cluster_c_status".to_string(),
            "recovery-required".to_string()
        ]]
    );
    drop(cb);
    assert_eq!(b.stopwait().status.code(), Some(0));
    // ... unless it is told to bootstrap the saved cluster.
    b.start(&["--new-cluster"]);
    let mut cb = conn(&b.node).await;
    let status: Vec<Vec<String>> = rows(&mut cb, "SHOW STATUS LIKE 'cluster_c_%'").await;
    let value = |k: &str| {
        status
            .iter()
            .find(|r| r[0] == format!("cluster_c_{k}"))
            .map(|r| r[1].clone())
    };
    assert_eq!(value("status").as_deref(), Some("primary"));
    assert_eq!(value("size").as_deref(), Some("1"));
    exec(&mut cb, "INSERT INTO c:t (id, title) VALUES (2, 'two')").await;
    assert_eq!(
        rows(&mut cb, "SELECT COUNT(*) FROM t").await,
        vec![vec!["2".to_string()]]
    );
    drop(cb);
    assert_eq!(b.stopwait().status.code(), Some(0));
}
