//! Starting, watching and restarting the helper process, as searchd's `BuddyStart`,
//! `BuddyWorkLoop` and `BuddyTryRestart` do.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};

use crate::node::{HelperInfo, Node};

/// searchd gives up after this many failed starts in a row.
const RESTART_MAX: u32 = 3;
/// searchd's helper poll period.
const TICK: Duration = Duration::from_millis(15);
/// How long a stopping helper may take after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// Start timeout from `MANTICORE_BUDDY_TIMEOUT` (seconds), default 3.
pub fn start_timeout() -> u64 {
    std::env::var("MANTICORE_BUDDY_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(3)
}

/// `--log-level=…` for a daemon log level, or nothing for `info`.
fn log_level_arg(level: &str) -> &'static str {
    match level {
        "debug" | "rpl_debug" => "--log-level=debug",
        "debugv" => "--log-level=debugv",
        "debugvv" => "--log-level=debugvv",
        _ => "",
    }
}

/// The command line searchd builds (`<path> --listen=<url> <bind> <telemetry> --threads=<N> <log-level>`),
/// kept verbatim for the log, and its words for `exec` (no shell is involved).
pub fn command_line(
    buddy_path: &str,
    listen_url: &str,
    telemetry: bool,
    threads: usize,
    log_level: &str,
) -> (String, Vec<String>) {
    let telemetry = if telemetry { "" } else { "--disable-telemetry" };
    let line = format!(
        "{buddy_path} --listen={listen_url} {} {telemetry} --threads={threads} {}",
        "",
        log_level_arg(log_level)
    );
    let words = split_words(&line);
    (line, words)
}

/// Splits on whitespace, keeping double-quoted parts together.
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut any = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    words.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        words.push(cur);
    }
    words
}

/// Parses `Buddy <ver> started <host:port>`; returns (version, url).
pub fn parse_handshake(chunk: &str) -> Option<(String, String)> {
    let first = chunk.lines().next()?;
    let words: Vec<&str> = first
        .split([' ', '\r', '\n'])
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() < 4 || words[0] != "Buddy" || words[2] != "started" {
        return None;
    }
    let (host, port) = words[3].rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = if host == "localhost" {
        "127.0.0.1"
    } else {
        host
    };
    host.parse::<std::net::IpAddr>().ok()?;
    Some((words[1].to_string(), format!("http://{host}:{port}")))
}

enum PipeEvent {
    Line(String),
    Closed,
}

struct Running {
    child: Child,
    lines: mpsc::UnboundedReceiver<PipeEvent>,
}

fn spawn(words: &[String], node: &Node, token: Option<&str>) -> std::io::Result<Running> {
    let (reader, writer) = std::io::pipe()?;
    let mut cmd = Command::new(&words[0]);
    cmd.args(&words[1..])
        .current_dir(&node.config.data_dir)
        .stdin(Stdio::null())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    if let Some(t) = token {
        cmd.env("BUDDY_TOKEN", t);
    }
    let child = cmd.spawn()?;
    // `cmd` still holds the write end; drop it so the pipe closes when the child exits.
    drop(cmd);
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(reader);
        let mut line = String::new();
        loop {
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) | Err(_) => {
                    let _ = tx.send(PipeEvent::Closed);
                    return;
                }
                Ok(_) => {
                    if tx
                        .send(PipeEvent::Line(
                            line.trim_end_matches(['\r', '\n']).to_string(),
                        ))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    });
    Ok(Running { child, lines: rx })
}

fn exit_code(child: &mut Child) -> Option<i32> {
    match child.try_wait() {
        Ok(Some(status)) => Some(status.code().unwrap_or(-1)),
        Ok(None) => None,
        Err(_) => Some(-1),
    }
}

async fn stop(running: &mut Running) {
    if let Ok(pid) = i32::try_from(running.child.id()) {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + STOP_GRACE;
    while exit_code(&mut running.child).is_none() {
        if Instant::now() > deadline {
            let _ = running.child.kill();
            let _ = running.child.wait();
            return;
        }
        tokio::time::sleep(TICK).await;
    }
}

enum Outcome {
    /// The helper stopped or misbehaved: try again.
    Failed,
    /// Start timeout or shutdown: no more attempts.
    Done,
}

/// Runs the helper until shutdown, restarting it like searchd.
pub async fn supervise(
    node: Arc<Node>,
    buddy_path: String,
    token: Option<String>,
    mut shutdown: watch::Receiver<bool>,
) {
    let Some(listen) = node.config.helper_listen_url() else {
        node.log
            .line("WARNING: [BUDDY] no SPHINX or HTTP listeners found, disabled");
        return;
    };
    let mut failures = 0;
    loop {
        let (line, words) = command_line(
            &buddy_path,
            &listen,
            node.config.telemetry,
            node.config.sim.threads,
            &node.log_level(),
        );
        let outcome = match spawn(&words, &node, token.as_deref()) {
            Ok(mut running) => {
                let outcome =
                    run_once(&node, &line, &mut running, &mut shutdown, &mut failures).await;
                stop(&mut running).await;
                node.set_helper(None);
                outcome
            }
            Err(e) => {
                node.log
                    .line(&format!("WARNING: [BUDDY] failed to start: {e}"));
                Outcome::Failed
            }
        };
        if matches!(outcome, Outcome::Done) || *shutdown.borrow() {
            return;
        }
        failures += 1;
        if failures >= RESTART_MAX {
            node.log.line(&format!(
                "[BUDDY] restart amount of attempts ({RESTART_MAX}) has been exceeded"
            ));
            return;
        }
        node.log.line("[BUDDY] restarting");
    }
}

async fn run_once(
    node: &Node,
    line: &str,
    running: &mut Running,
    shutdown: &mut watch::Receiver<bool>,
    failures: &mut u32,
) -> Outcome {
    let timeout = start_timeout();
    let handshake = tokio::time::timeout(Duration::from_secs(timeout), running.lines.recv()).await;
    match handshake {
        Err(_) => {
            node.log.line(&format!(
                "WARNING: [BUDDY] failed to start after {timeout} sec"
            ));
            return Outcome::Done;
        }
        Ok(Some(PipeEvent::Line(first))) => match parse_handshake(&first) {
            Some((version, url)) => {
                *failures = 0;
                node.log
                    .line(&format!("[BUDDY] started {version} '{line}' at {url}"));
                node.set_helper(Some(HelperInfo { url, version }));
            }
            None => {
                node.log.line(&format!("WARNING: [BUDDY] invalid output, should be 'Buddy ver, started address:port', got '{first}'"));
                return Outcome::Failed;
            }
        },
        Ok(_) => {
            let code = wait_exit(&mut running.child).await;
            node.log
                .line(&format!("WARNING: [BUDDY] terminated, exit code {code}"));
            return Outcome::Failed;
        }
    }
    let mut level = node.log_level();
    let mut pipe_open = true;
    loop {
        if *shutdown.borrow() {
            return Outcome::Done;
        }
        if let Some(code) = exit_code(&mut running.child) {
            // Relay what the helper printed before it went away.
            while let Ok(PipeEvent::Line(l)) = running.lines.try_recv() {
                node.log.line(&format!("[BUDDY] {l}"));
            }
            node.log
                .line(&format!("WARNING: [BUDDY] terminated, exit code {code}"));
            return Outcome::Failed;
        }
        let now_level = node.log_level();
        if now_level != level {
            level = now_level;
            super::post_log_level(node, &level).await;
        }
        tokio::select! {
            ev = running.lines.recv(), if pipe_open => match ev {
                Some(PipeEvent::Line(l)) => node.log.line(&format!("[BUDDY] {l}")),
                Some(PipeEvent::Closed) | None => pipe_open = false,
            },
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

async fn wait_exit(child: &mut Child) -> i32 {
    loop {
        if let Some(code) = exit_code(child) {
            return code;
        }
        tokio::time::sleep(TICK).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_like_searchd() {
        let (line, words) = command_line(
            "/opt/helper --skip=x",
            "http://127.0.0.1:9308",
            true,
            2,
            "info",
        );
        assert_eq!(
            line,
            "/opt/helper --skip=x --listen=http://127.0.0.1:9308   --threads=2 "
        );
        assert_eq!(
            words,
            vec![
                "/opt/helper",
                "--skip=x",
                "--listen=http://127.0.0.1:9308",
                "--threads=2"
            ]
        );
        let (_, words) = command_line("h", "http://x", false, 4, "debugv");
        assert_eq!(
            words,
            vec![
                "h",
                "--listen=http://x",
                "--disable-telemetry",
                "--threads=4",
                "--log-level=debugv"
            ]
        );
        assert_eq!(split_words(r#"a "b c" d"#), vec!["a", "b c", "d"]);
    }

    #[test]
    fn handshake_lines() {
        assert_eq!(
            parse_handshake("Buddy v0.0.1 started 127.0.0.1:4242\n"),
            Some(("v0.0.1".into(), "http://127.0.0.1:4242".into()))
        );
        assert_eq!(
            parse_handshake("Buddy v1 started localhost:1"),
            Some(("v1".into(), "http://127.0.0.1:1".into()))
        );
        for bad in [
            "",
            "hello",
            "Buddy v1 running 127.0.0.1:1",
            "Buddy v1 started nowhere",
            "Buddy v1 started",
        ] {
            assert_eq!(parse_handshake(bad), None, "{bad}");
        }
    }
}
