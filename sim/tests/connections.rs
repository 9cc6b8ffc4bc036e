//! Connection lifetimes that the golden transcripts cannot show as records (facts.md §6, "Idle
//! connection lifetime"): a connection that sends nothing is closed after searchd's
//! `network_timeout` (5 s), one that was answered or is half-way through a request waits
//! `client_timeout` (5 min, still open after 65 s in the facts), MySQL connections stay open.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use manticore_sim::testkit::{NodeOptions, SimNode};
use mysql_async::prelude::Queryable;

const REQUEST: &str = "POST /sql?mode=raw HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 19\r\n\r\nquery=SHOW%20TABLES";

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    s
}

/// Reads whatever arrives within 200 ms; `None` at EOF.
fn read_some(s: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 65536];
    match s.read(&mut buf) {
        Ok(0) => None,
        Ok(n) => Some(buf[..n].to_vec()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            Some(Vec::new())
        }
        Err(_) => None,
    }
}

/// Reads until a complete reply to `REQUEST` (`SHOW TABLES` on an empty node) arrived.
fn reply(s: &mut TcpStream) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while !got.ends_with(b"}]") {
        assert!(Instant::now() < deadline, "no reply: {got:?}");
        got.extend(read_some(s).expect("the connection closed"));
    }
    String::from_utf8_lossy(&got).to_string()
}

/// How long until the server closes `s`, watched for at most `limit`.
fn closed_after(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    while started.elapsed() < limit {
        if read_some(s).is_none() {
            return Some(started.elapsed());
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_live_as_long_as_searchd_lets_them() {
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    let port = node.ports().http;
    // Opened at the same time: nothing sent; answered once; a request missing 5 body bytes.
    let mut silent = connect(port);
    let mut answered = connect(port);
    answered.write_all(REQUEST.as_bytes()).unwrap();
    assert!(reply(&mut answered).starts_with("HTTP/1.1 200 OK\r\n"));
    let mut partial = connect(port);
    partial
        .write_all(&REQUEST.as_bytes()[..REQUEST.len() - 5])
        .unwrap();
    let mut mysql = mysql_async::Conn::new(mysql_async::Opts::from_url(&node.mysql_url()).unwrap())
        .await
        .unwrap();
    mysql.query_drop("SHOW TABLES").await.unwrap();

    let silent_closed =
        tokio::task::spawn_blocking(move || closed_after(&mut silent, Duration::from_secs(12)))
            .await
            .unwrap()
            .expect("a connection without a request is closed");
    assert!(
        (Duration::from_millis(4500)..Duration::from_secs(9)).contains(&silent_closed),
        "closed after {silent_closed:?}, searchd: 5.0 s"
    );
    // Well past network_timeout, the others are still there and usable.
    assert!(
        read_some(&mut answered).is_some(),
        "the answered one closed"
    );
    answered.write_all(REQUEST.as_bytes()).unwrap();
    assert!(reply(&mut answered).starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(
        read_some(&mut partial).is_some(),
        "the half-sent one closed"
    );
    partial
        .write_all(&REQUEST.as_bytes()[REQUEST.len() - 5..])
        .unwrap();
    assert!(reply(&mut partial).starts_with("HTTP/1.1 200 OK\r\n"));
    mysql.query_drop("SHOW TABLES").await.unwrap();
}

#[test]
fn client_timeout_bounds_a_kept_alive_connection() {
    let node = SimNode::start(
        1,
        NodeOptions {
            searchd_lines: vec!["client_timeout = 1".into()],
            ..Default::default()
        },
    )
    .unwrap();
    let mut s = connect(node.ports().http);
    s.write_all(REQUEST.as_bytes()).unwrap();
    assert!(reply(&mut s).starts_with("HTTP/1.1 200 OK\r\n"));
    let closed = closed_after(&mut s, Duration::from_secs(10)).expect("closed");
    assert!(
        (Duration::from_millis(700)..Duration::from_secs(5)).contains(&closed),
        "closed after {closed:?} with client_timeout = 1"
    );
}

#[test]
fn error_replies_end_the_connection_and_successes_keep_it() {
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    let mut s = connect(node.ports().http);
    s.write_all(REQUEST.as_bytes()).unwrap();
    let ok = reply(&mut s);
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\nServer: "), "{ok}");
    assert!(!ok.to_ascii_lowercase().contains("connection:"), "{ok}");
    let bad = "POST /sql?mode=raw HTTP/1.1\r\nContent-Length: 17\r\n\r\nquery=DESC%20nope";
    s.write_all(bad.as_bytes()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = Vec::new();
    while let Some(more) = read_some(&mut s) {
        assert!(Instant::now() < deadline, "the connection stayed open");
        got.extend(more);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{text}"
    );
    assert!(
        text.ends_with(r#"{"error":"no such table 'nope'"}"#),
        "{text}"
    );
}
