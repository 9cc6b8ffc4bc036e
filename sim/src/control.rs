//! searchd's command line around the daemon: starting it in the background (the default
//! without `--nodetach`), `--stop`/`--stopwait`, and `--status`.
//!
//! Daemonizing re-executes this binary with `--nodetach` as a child in its own process group
//! (no `fork` in a process that may already run threads): the child tells the parent on its
//! standard output that every listener accepts connections (or why it could not start), the
//! parent relays searchd's console lines and returns 0, or 1 with the reason. The daemon keeps
//! the pid file locked while it runs (`flock`, as searchd), which is how `--stopwait` knows when
//! it is gone and `--status`/`--stop` know whether it runs.
//!
//! Exit codes follow searchd's manual: `--stopwait` 0 on success, 1 when the daemon could not be
//! reached (no pid file, no such process), 3 when it did not finish its shutdown within
//! `shutdown_timeout` (searchd: "3 if server crashed during shutdown"); `--status` 0 when the
//! daemon answered, 1 when it did not (searchd's `sphFatal`).

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config::{parse_time, Config, Proto};

/// Set in the environment of a daemon started in the background: it then reports its start on
/// standard output.
pub const CHILD_ENV: &str = "MANTICORE_SIM_DAEMON_CHILD";
/// The line a background daemon prints once it accepts connections.
pub const READY_LINE: &str = "manticore-sim: accepting connections";
/// Prefix of the line a background daemon prints when it cannot start.
pub const FATAL_PREFIX: &str = "FATAL: ";
/// How long the parent waits for the daemon to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// searchd's default `shutdown_timeout` (how long `--stopwait` waits).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
const POLL: Duration = Duration::from_millis(20);

/// The lines searchd prints on its console when it starts.
fn banner(config: &Config) -> Vec<String> {
    let mut lines = vec![
        format!(
            "Manticore {} (manticore-sim {})",
            config.sim.version,
            env!("CARGO_PKG_VERSION")
        ),
        format!(
            "using config file '{}' ({} chars)...",
            config.path.display(),
            std::fs::metadata(&config.path)
                .map(|m| m.len())
                .unwrap_or(0)
        ),
        format!("starting daemon version '{}' ...", config.sim.version),
    ];
    for l in &config.listeners {
        let what = match l.proto {
            Proto::Mysql => "mysql",
            Proto::Http => "http",
            Proto::Sphinx => "sphinx and http(s)",
            Proto::Replication => continue,
        };
        lines.push(format!("listening on {} for {what}", l.addr()));
    }
    lines
}

/// Starts the daemon in the background (`args` are the daemon's own arguments, `-c` and
/// `--new-cluster` …); returns once it accepts connections.
pub fn daemonize(config: &Config, args: &[String]) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("FATAL: cannot find this executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut cmd = Command::new(exe);
    cmd.args(args)
        .arg("--nodetach")
        .env(CHILD_ENV, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("FATAL: failed to start the daemon: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Some(out) = child.stdout.take() else {
        return ExitCode::FAILURE;
    };
    // The child's report arrives on a pipe; a reader thread keeps the wait bounded.
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line == READY_LINE => {
                let mut out = std::io::stdout().lock();
                for l in banner(config) {
                    let _ = writeln!(out, "{l}");
                }
                return ExitCode::SUCCESS;
            }
            Ok(line) => {
                if line.starts_with(FATAL_PREFIX) {
                    eprintln!("{line}");
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                eprintln!(
                    "FATAL: the daemon did not accept connections within {} s",
                    START_TIMEOUT.as_secs()
                );
                return ExitCode::FAILURE;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
                eprintln!("FATAL: the daemon exited at start ({status})");
                return ExitCode::FAILURE;
            }
        }
    }
}

/// Why a daemon cannot be signalled.
fn read_pid(config: &Config) -> Result<(i32, std::fs::File), String> {
    let path = config.pid_file.as_deref().ok_or_else(|| {
        format!(
            "stop: option 'pid_file' not found in '{}' section 'searchd'",
            config.path.display()
        )
    })?;
    let bad = || format!("stop: failed to read valid pid from '{}'", path.display());
    let text = std::fs::read_to_string(path).map_err(|_| bad())?;
    let pid: i32 = text.trim().parse().map_err(|_| bad())?;
    if pid <= 0 {
        return Err(bad());
    }
    let file = OpenOptions::new()
        .read(true)
        .open(path)
        .map_err(|_| bad())?;
    Ok((pid, file))
}

/// Whether the daemon still holds the lock of its pid file (an open handle of it).
fn locked(file: std::fs::File) -> (bool, Option<std::fs::File>) {
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(lock) => (false, lock.unlock().ok()),
        Err((file, _)) => (true, Some(file)),
    }
}

/// `--stop` (`wait`: `--stopwait`): SIGTERM to the daemon named by the pid file.
pub fn stop(config: &Config, wait: bool) -> ExitCode {
    let (pid, file) = match read_pid(config) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("FATAL: {e}");
            return ExitCode::from(1);
        }
    };
    let (running, file) = locked(file);
    if !running {
        eprintln!("FATAL: stop: failed to stop daemon: No such process");
        return ExitCode::from(1);
    }
    if let Err(e) = kill(Pid::from_raw(pid), Signal::SIGTERM) {
        eprintln!("FATAL: stop: failed to stop daemon: {}", e.desc());
        return ExitCode::from(1);
    }
    let _ = writeln!(
        std::io::stdout(),
        "stop: successfully sent SIGTERM to pid {pid}"
    );
    if !wait {
        return ExitCode::SUCCESS;
    }
    let timeout = config
        .searchd_value("shutdown_timeout")
        .and_then(parse_time)
        .unwrap_or(SHUTDOWN_TIMEOUT);
    let deadline = Instant::now() + timeout;
    let mut file = file;
    loop {
        let Some(f) = file.take() else {
            return ExitCode::SUCCESS;
        };
        let (still, f) = locked(f);
        if !still {
            return ExitCode::SUCCESS;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "WARNING: stopwait: pid {pid} did not exit within {} s",
                timeout.as_secs()
            );
            return ExitCode::from(3);
        }
        file = f;
        std::thread::sleep(POLL);
    }
}

/// `--status`: the running daemon's status counters, from its first binary-API listener.
pub fn status(config: &Config) -> ExitCode {
    let Some(api) = config.api_listener() else {
        eprintln!("FATAL: failed to connect to daemon: please specify listen with sphinx protocol in your config file");
        return ExitCode::from(1);
    };
    let addr = api.addr();
    let body = "query=SHOW%20STATUS";
    let request = format!(
        "POST /sql?mode=raw HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let reply = (|| -> std::io::Result<String> {
        let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(request.as_bytes())?;
        // The reply of one SHOW STATUS; a bound keeps a wrong listener from feeding us forever.
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(s, 16 << 20), &mut out)?;
        Ok(String::from_utf8_lossy(&out).to_string())
    })();
    let text = match reply {
        Ok(t) => t,
        Err(e) => {
            eprintln!("WARNING: failed to connect to {addr}: {e}");
            eprintln!("FATAL: failed to connect to daemon: please specify listen with sphinx protocol in your config file");
            return ExitCode::from(1);
        }
    };
    let json = text
        .split_once("\r\n\r\n")
        .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(body).ok());
    let Some(rows) = json.as_ref().and_then(|j| j[0]["data"].as_array()) else {
        eprintln!("FATAL: status command failed");
        return ExitCode::from(1);
    };
    // Written without println!: a closed pipe (`--status | head`) is not worth a panic.
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "\nsearchd status\n--------------");
    for row in rows {
        let name = row["Counter"].as_str().unwrap_or("");
        let value = match &row["Value"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(out, "{name}: {value} ");
    }
    ExitCode::SUCCESS
}

/// Whether a pid file is held by a running daemon (tests, `--status` of a node without API).
pub fn pid_file_locked(path: &Path) -> bool {
    match OpenOptions::new().read(true).open(path) {
        Ok(f) => locked(f).0,
        Err(_) => false,
    }
}
