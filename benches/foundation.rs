//! Timings of the Buddy endpoint: envelope validation and reply rendering
//! (pure), the start-up handshake of the real binary, and a full "not mine"
//! round trip over HTTP keep-alive.
//!
//! Run with `cargo bench --bench foundation` (builds the release binary).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use shardbuddy::protocol::{BuddyRequest, ResponseEnvelope};

const BINARY: &str = env!("CARGO_BIN_EXE_shardbuddy");
const ENVELOPE: &str = r#"{"type":"unknown sql request","error":{"message":"table 't': CREATE TABLE failed: 'shards' and 'rf' options require Buddy","body":null},"version":3,"user":"root","message":{"path_query":"","body":"CREATE TABLE t (id bigint, title text) shards='4' rf='1'","http_method":""}}"#;

fn envelope_codec(c: &mut Criterion) {
    c.bench_function("envelope/validate", |b| {
        b.iter(|| BuddyRequest::from_envelope("1_2", ENVELOPE.as_bytes()).expect("valid"))
    });
    let request = BuddyRequest::from_envelope("1_2", ENVELOPE.as_bytes()).expect("valid");
    c.bench_function("envelope/render_not_mine", |b| {
        b.iter(|| ResponseEnvelope::not_mine(&request).to_bytes())
    });
}

/// Starts the binary and returns it with its handshake line.
fn start() -> (Child, String) {
    let mut child = Command::new(BINARY)
        .arg("--listen=http://127.0.0.1:9308")
        .arg("--threads=2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn shardbuddy");
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("handshake");
    (child, line)
}

fn handshake(c: &mut Criterion) {
    let mut group = c.benchmark_group("process");
    group.sample_size(20);
    group.bench_function("spawn_to_handshake", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let started = Instant::now();
                let (mut child, line) = start();
                total += started.elapsed();
                assert!(line.starts_with("Buddy v"), "{line:?}");
                child.kill().expect("kill");
                child.wait().expect("wait");
            }
            total
        })
    });
    group.finish();
}

fn round_trip(c: &mut Criterion) {
    let (mut child, line) = start();
    let addr = line.trim().rsplit(' ').next().expect("address").to_string();
    let mut stream = TcpStream::connect(&addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nRequest-ID: 1_2\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: {}\r\n\r\n{ENVELOPE}",
        ENVELOPE.len()
    );
    let mut chunk = [0u8; 4096];
    let mut reply = Vec::new();
    c.bench_function("server/not_mine_round_trip", |b| {
        b.iter(|| {
            stream.write_all(request.as_bytes()).expect("send");
            reply.clear();
            // The reply body is the last thing on the wire and ends the envelope.
            while !reply.ends_with(b"\"error_code\":0}") {
                let n = stream.read(&mut chunk).expect("read");
                assert!(
                    n > 0,
                    "connection closed: {}",
                    String::from_utf8_lossy(&reply)
                );
                reply.extend_from_slice(&chunk[..n]);
            }
        })
    });
    child.kill().expect("kill");
    child.wait().expect("wait");
}

criterion_group!(benches, envelope_codec, handshake, round_trip);
criterion_main!(benches);
