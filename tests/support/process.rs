//! Running the real `shardbuddy` binary the way searchd does: stdout and
//! stderr merged into one pipe, the handshake read from its first bytes.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::HANG_TIMEOUT;

pub const BINARY: &str = env!("CARGO_BIN_EXE_shardbuddy");

/// A shell script that runs `$0 "$@"` with stderr merged into stdout, as
/// searchd runs its helper.
const MERGED_OUTPUT: &str = r#"exec "$0" "$@" 2>&1"#;

/// Collects a process's output line by line in the background.
pub struct OutputWatcher {
    first_line: Vec<u8>,
    lines: Arc<Mutex<Vec<String>>>,
    closed: Arc<AtomicBool>,
}

impl OutputWatcher {
    /// Starts reading and waits for the first line (the handshake).
    pub fn start(output: impl Read + Send + 'static) -> Self {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let closed = Arc::new(AtomicBool::new(false));
        let (first_tx, first_rx) = mpsc::channel();
        let (lines_bg, closed_bg) = (Arc::clone(&lines), Arc::clone(&closed));
        std::thread::spawn(move || {
            let mut reader = BufReader::new(output);
            let mut first = Vec::new();
            let _ = reader.read_until(b'\n', &mut first);
            let _ = first_tx.send(first);
            for line in reader.lines() {
                match line {
                    Ok(line) => lines_bg.lock().unwrap().push(line),
                    Err(_) => break,
                }
            }
            closed_bg.store(true, Ordering::SeqCst);
        });
        let first_line = first_rx
            .recv_timeout(HANG_TIMEOUT)
            .expect("the process printed no first line");
        Self {
            first_line,
            lines,
            closed,
        }
    }

    /// The first line exactly as it arrived, newline included.
    pub fn first_line(&self) -> &[u8] {
        &self.first_line
    }

    /// Lines after the first one.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Waits until a line contains `needle`.
    pub fn wait_for(&self, needle: &str) -> bool {
        poll(HANG_TIMEOUT, || {
            self.lines().iter().any(|l| l.contains(needle))
        })
    }

    /// Waits until every writer of the pipe has gone.
    pub fn wait_closed(&self, limit: Duration) -> bool {
        poll(limit, || self.closed.load(Ordering::SeqCst))
    }
}

pub fn poll(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running `shardbuddy`; killed on drop if still running.
pub struct Shardbuddy {
    child: Child,
    pub addr: SocketAddr,
    pub output: OutputWatcher,
}

impl Shardbuddy {
    pub fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(MERGED_OUTPUT)
            .arg(BINARY)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn shardbuddy");
        let output = OutputWatcher::start(child.stdout.take().expect("stdout"));
        let addr = handshake_addr(output.first_line()).unwrap_or_else(|| {
            panic!(
                "bad handshake: {:?}",
                String::from_utf8_lossy(output.first_line())
            )
        });
        Self {
            child,
            addr,
            output,
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("send signal");
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let mut status = None;
        poll(limit, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status
    }

    /// A memory figure of `/proc/<pid>/status` in KiB: `VmRSS` (resident
    /// now) or `VmHWM` (the peak since start or [`Self::reset_peak_memory`]).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read /proc/<pid>/status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// Resets `VmHWM` to the current resident size (Linux 4.0 and later).
    pub fn reset_peak_memory(&self) {
        std::fs::write(format!("/proc/{}/clear_refs", self.child.id()), "5")
            .expect("write /proc/<pid>/clear_refs");
    }

    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }
}

impl Drop for Shardbuddy {
    fn drop(&mut self) {
        if self.is_running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The address in `Buddy v<version> started <ip>:<port>\n`, if the line has
/// exactly that shape.
pub fn handshake_addr(line: &[u8]) -> Option<SocketAddr> {
    let line = std::str::from_utf8(line).ok()?.strip_suffix('\n')?;
    let words: Vec<&str> = line.split(' ').collect();
    match words.as_slice() {
        ["Buddy", version, "started", addr] if version.starts_with('v') && version.len() > 1 => {
            addr.parse().ok()
        }
        _ => None,
    }
}
