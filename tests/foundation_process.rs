//! The process lifecycle searchd relies on (spec §1): the handshake as the
//! very first output, lenient flags, clean exits on signals and on the
//! parent's death, and a bounded drain of in-flight requests.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::fake_http::{FakeHttp, FakeReply};
use support::http;
use support::process::{handshake_addr, OutputWatcher, Shardbuddy, BINARY};

/// The example envelope of spec §2.3.
/// A statement shardbuddy does not handle (golden `buddy` case).
const UNKNOWN_ENVELOPE: &str = r#"{"type":"unknown sql request","error":{"message":"P01: syntax error, unexpected identifier, expecting VARIABLES near 'VERSION'","body":null},"version":3,"user":"root","message":{"path_query":"","body":"SHOW VERSION","http_method":""}}"#;

/// How long searchd is willing to wait before it declares its helper hung.
const EXIT_LIMIT: Duration = Duration::from_secs(5);

fn assert_handshake_shape(first_line: &[u8]) {
    let text = String::from_utf8_lossy(first_line);
    let addr = handshake_addr(first_line)
        .unwrap_or_else(|| panic!("first output is not the handshake: {text:?}"));
    assert_eq!(addr.ip().to_string(), "127.0.0.1", "{text:?}");
    assert_ne!(addr.port(), 0);
    assert!(
        text.starts_with(&format!("Buddy v{} started ", env!("CARGO_PKG_VERSION"))),
        "{text:?}"
    );
}

#[test]
fn handshake_comes_first_then_serves_then_exits_on_sigterm() {
    let started = Instant::now();
    let mut buddy = Shardbuddy::start(&["--listen=http://127.0.0.1:9308", "--threads=2"]);
    let handshake_after = started.elapsed();
    assert_handshake_shape(buddy.output.first_line());
    eprintln!("handshake after {handshake_after:?} (debug build, includes process start)");

    let reply = http::post(buddy.addr, UNKNOWN_ENVELOPE.as_bytes());
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        r#"{"version":3,"type":"sql response","message":{"error":"P01: syntax error, unexpected identifier, expecting VARIABLES near 'VERSION'"},"meta":null,"error_code":0}"#
    );

    buddy.signal(Signal::SIGTERM);
    let status = buddy
        .wait_exit(EXIT_LIMIT)
        .expect("exits within 5 s of SIGTERM");
    assert_eq!(status.code(), Some(0));
    assert!(
        buddy.output.wait_for("received SIGTERM"),
        "{:?}",
        buddy.output.lines()
    );
}

#[test]
fn sigint_exits_cleanly() {
    let mut buddy = Shardbuddy::start(&[]);
    buddy.signal(Signal::SIGINT);
    let status = buddy
        .wait_exit(EXIT_LIMIT)
        .expect("exits within 5 s of SIGINT");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn unknown_flags_are_logged_and_ignored() {
    let mut buddy = Shardbuddy::start(&[
        "--listen=127.0.0.1:9312",
        "--frobnicate",
        "--threads=1",
        "--threads=64",
        "--skip=manticoresoftware/buddy-plugin-empty-string",
        "--enable-plugin=x",
        "--telemetry-period=10",
        "--disable-telemetry",
        "stray",
        "--log-level=info",
    ]);
    assert_handshake_shape(buddy.output.first_line());
    for ignored in ["--frobnicate", "stray", "--threads=64"] {
        assert!(
            buddy.output.wait_for(&format!("argument={ignored}")),
            "no warning for {ignored}: {:?}",
            buddy.output.lines()
        );
    }
    assert!(
        buddy.output.wait_for("threads=1"),
        "{:?}",
        buddy.output.lines()
    );
    assert_eq!(
        http::post(buddy.addr, UNKNOWN_ENVELOPE.as_bytes()).status,
        200
    );
    assert!(buddy.is_running());
}

#[test]
fn bad_values_of_known_flags_stop_before_the_handshake() {
    let output = Command::new(BINARY)
        .arg("--listen=https://127.0.0.1:9308")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("only http:// is supported"), "{stderr}");
}

#[test]
fn version_and_help_answer_and_exit() {
    let version = Command::new(BINARY).arg("--version").output().expect("run");
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout),
        format!("shardbuddy {}\n", env!("CARGO_PKG_VERSION"))
    );
    let help = Command::new(BINARY).arg("--help").output().expect("run");
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--listen",
        "--bind",
        "--threads",
        "--log-level",
        "--fallback-url",
        "--max-body-size",
    ] {
        assert!(text.contains(flag), "help lacks {flag}: {text}");
    }
}

#[test]
fn exits_when_the_parent_process_dies() {
    // sh starts shardbuddy in the background and exits once its stdin
    // closes; shardbuddy is then re-parented and must notice.
    let mut parent = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" </dev/null 2>&1 & read _ ; exit 0"#)
        .arg(BINARY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh");
    let output = OutputWatcher::start(parent.stdout.take().expect("stdout"));
    assert_handshake_shape(output.first_line());

    drop(parent.stdin.take());
    assert!(parent.wait().expect("sh exits").success());
    assert!(
        output.wait_closed(EXIT_LIMIT),
        "shardbuddy still running 5 s after its parent died: {:?}",
        output.lines()
    );
    let lines = output.lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("parent process") && l.contains("exited")),
        "{lines:?}"
    );
    assert!(lines.iter().any(|l| l.contains("stopped")), "{lines:?}");
}

#[test]
fn sigterm_lets_an_in_flight_request_finish() {
    let other = FakeHttp::replying(
        FakeReply::new(200, r#"{"relayed":true}"#).delayed(Duration::from_millis(1500)),
    );
    let mut buddy = Shardbuddy::start(&[&format!("--fallback-url={}", other.url())]);
    let addr = buddy.addr;
    let in_flight = std::thread::spawn(move || http::post(addr, UNKNOWN_ENVELOPE.as_bytes()));
    assert!(support::process::poll(support::HANG_TIMEOUT, || !other
        .requests()
        .is_empty()));

    buddy.signal(Signal::SIGTERM);
    let reply = in_flight.join().expect("request thread");
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (200, r#"{"relayed":true}"#)
    );
    assert_eq!(buddy.wait_exit(EXIT_LIMIT).expect("exits").code(), Some(0));
}

#[test]
fn shutdown_grace_bounds_the_wait_for_slow_requests() {
    let other = FakeHttp::replying(FakeReply::new(200, "{}").delayed(Duration::from_secs(60)));
    let mut buddy = Shardbuddy::start(&[
        &format!("--fallback-url={}", other.url()),
        "--shutdown-grace=0.5",
    ]);
    let addr = buddy.addr;
    std::thread::spawn(move || {
        let _ = http::try_request(addr, "POST", "/", &[], UNKNOWN_ENVELOPE.as_bytes());
    });
    assert!(support::process::poll(support::HANG_TIMEOUT, || !other
        .requests()
        .is_empty()));

    buddy.signal(Signal::SIGTERM);
    assert_eq!(
        buddy
            .wait_exit(EXIT_LIMIT)
            .expect("exits despite the slow request")
            .code(),
        Some(0)
    );
    assert!(
        buddy.output.wait_for("abandoning"),
        "{:?}",
        buddy.output.lines()
    );
}

#[test]
fn nothing_reaches_stderr_before_the_handshake() {
    // Without the merging shell: stderr must stay silent at start-up.
    let mut child = Command::new(BINARY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let output = OutputWatcher::start(child.stdout.take().expect("stdout"));
    assert_handshake_shape(output.first_line());
    child.kill().expect("kill");
    child.wait().expect("wait");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read");
    assert_eq!(stderr, "");
}
