//! Memory the helper endpoint needs per megabyte of request body: starts the
//! real binary, sends bodies of several shapes and sizes, and reads the
//! process's resident set from `/proc` (Linux only): the idle size, the
//! peak while the request was handled (`VmHWM`, reset before each request
//! through `clear_refs`) and the size once the reply has arrived.
//!
//! Run with `cargo bench --bench helper_memory` (release build), or
//! `cargo bench --bench helper_memory -- --max-body-size=134217728` to
//! measure the parser with a raised body limit. Prints one row per body.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BINARY: &str = env!("CARGO_BIN_EXE_shardbuddy");
const MIB: usize = 1024 * 1024;

fn main() {
    // cargo passes `--bench`; everything else goes to the helper.
    let helper_args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.starts_with("--") && a != "--bench")
        .collect();
    let (mut child, addr) = start(&helper_args);
    let pid = child.id();
    settle(pid);
    println!("helper flags: {helper_args:?}");
    println!(
        "{:<34} {:>8} {:>9} {:>9} {:>9} {:>10} {:>7}",
        "body", "MB", "idle MB", "peak MB", "after MB", "peak-idle/MB", "status"
    );
    for (name, body) in bodies() {
        let idle = rss_kib(pid, "VmRSS");
        reset_peak(pid);
        let status = post(addr, &body);
        let peak = rss_kib(pid, "VmHWM");
        let after = settle(pid);
        let mb = body.len() as f64 / MIB as f64;
        println!(
            "{:<34} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>10.2} {:>7}",
            name,
            mb,
            idle as f64 / 1024.0,
            peak as f64 / 1024.0,
            after as f64 / 1024.0,
            (peak.saturating_sub(idle)) as f64 / 1024.0 / mb,
            status
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The bodies of the measurement: the shapes that amplify a JSON tree most
/// (many tiny values, many keys), a valid envelope with a large statement,
/// and plain garbage.
fn bodies() -> Vec<(&'static str, Vec<u8>)> {
    let array = |bytes: usize| {
        let mut body = b"[".to_vec();
        body.extend(std::iter::repeat_n(*b"0,", bytes / 2).flatten());
        body.push(b'0');
        body.push(b']');
        body
    };
    let object = |keys: usize| {
        let mut body = String::from("{");
        for i in 0..keys {
            body.push_str(&format!("\"k{i:07}\":0,"));
        }
        body.push_str("\"end\":0}");
        body.into_bytes()
    };
    let envelope = |statement_bytes: usize| {
        format!(
            r#"{{"type":"unknown sql request","error":{{"message":"big","body":null}},"version":3,"user":"","message":{{"path_query":"","body":"INSERT INTO t VALUES {}(1)","http_method":""}}}}"#,
            "(1),".repeat(statement_bytes / 4)
        )
        .into_bytes()
    };
    let garbage = |bytes: usize| {
        let mut body = b"{\"type\":".to_vec();
        body.resize(bytes, b'x');
        body
    };
    vec![
        ("array of zeros, 8 MB", array(8 * MIB)),
        ("array of zeros, 52 MB", array(52 * MIB)),
        ("object of 5M keys, 67 MB", object(5_000_000)),
        ("envelope with an 8 MB statement", envelope(8 * MIB)),
        ("envelope with a 50 MB statement", envelope(50 * MIB)),
        ("malformed, 50 MB", garbage(50 * MIB)),
    ]
}

fn start(args: &[String]) -> (Child, SocketAddr) {
    let mut child = Command::new(BINARY)
        .arg("--listen=http://127.0.0.1:9")
        .arg("--threads=2")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shardbuddy");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("handshake");
    // Keep draining the log so the helper never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
    let addr = line
        .trim_end()
        .rsplit(' ')
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("bad handshake {line:?}"));
    (child, addr)
}

/// Posts `body` on a fresh connection and returns the reply's status.
fn post(addr: SocketAddr, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    // A refused body may be answered and the connection closed before it is sent.
    let _ = stream.write_all(body);
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    std::str::from_utf8(&reply[..reply.len().min(12)])
        .ok()
        .and_then(|head| head.get(9..12))
        .and_then(|code| code.parse().ok())
        .unwrap_or(0)
}

/// A `/proc/<pid>/status` figure in KiB.
fn rss_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// Resets `VmHWM` to the current resident size (Linux ≥ 4.0).
fn reset_peak(pid: u32) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
}

/// The resident size once it stopped changing (at most two seconds).
fn settle(pid: u32) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut last = rss_kib(pid, "VmRSS");
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = rss_kib(pid, "VmRSS");
        if now == last {
            break;
        }
        last = now;
    }
    last
}
