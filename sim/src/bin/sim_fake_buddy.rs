//! `sim-fake-buddy`: a scriptable stand-in for the Buddy helper, for tests and demos.
//!
//! It prints the handshake, records every request it receives, and answers "not mine"
//! (the original error) unless told otherwise. Environment:
//! - `FAKE_BUDDY_MODE`: `ok` (default), `crash` (exit 3 before the handshake), `silent` (never print the
//!   handshake), `invalid` (print a wrong first line);
//! - `FAKE_BUDDY_REPLY`: `not_mine` (default) or `rows` (one result set `{"answer":"from helper"}`);
//! - `FAKE_BUDDY_RECORD`: file to append one JSON line per start and per request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{signal, SigHandler, Signal};

use serde_json::{json, Value};

fn record(line: &Value) {
    if let Ok(path) = std::env::var("FAKE_BUDDY_RECORD") {
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: i32) {
    TERMINATED.store(true, Ordering::SeqCst);
}

/// Records SIGTERM (searchd stops its helper that way) and exits.
fn watch_sigterm() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    let _ = unsafe { signal(Signal::SIGTERM, SigHandler::Handler(on_sigterm)) };
    std::thread::spawn(|| loop {
        if TERMINATED.load(Ordering::SeqCst) {
            record(&json!({"signal": 15}));
            std::process::exit(0);
        }
        std::thread::sleep(Duration::from_millis(10));
    });
}

fn main() {
    watch_sigterm();
    let mode = std::env::var("FAKE_BUDDY_MODE").unwrap_or_else(|_| "ok".into());
    let args: Vec<String> = std::env::args().collect();
    record(
        &json!({"start": args, "pid": std::process::id(), "token": std::env::var("BUDDY_TOKEN").ok(), "cwd": std::env::current_dir().ok()}),
    );
    match mode.as_str() {
        "crash" => std::process::exit(3),
        "silent" => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        "invalid" => {
            let _ = writeln!(std::io::stdout(), "hello from a confused helper");
            let _ = std::io::stdout().flush();
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        _ => {}
    }
    let listener = match TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("bind failed: {e}");
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    // Output errors (a reader that went away) must not stop the helper.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "Buddy v0.0.1 started 127.0.0.1:{port}");
    let _ = writeln!(stdout, "fake buddy ready");
    let _ = stdout.flush();
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || serve(stream));
    }
}

fn serve(stream: TcpStream) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            head.push(line.trim_end().to_string());
        }
        let Some(request_line) = head.first().cloned() else {
            return;
        };
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_string();
        let path = parts.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = head[1..]
            .iter()
            .filter_map(|h| {
                h.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            })
            .collect();
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body = String::from_utf8_lossy(&body).to_string();
        record(&json!({"method": method, "path": path, "headers": headers, "body": body}));
        let reply = answer(&path, &body);
        let resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}", reply.len());
        if reader.get_mut().write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

fn answer(path: &str, body: &str) -> String {
    if path == "/config" {
        return body.to_string();
    }
    let request: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let sql = request["type"] == "unknown sql request";
    let kind = if sql { "sql response" } else { "json response" };
    let message = match std::env::var("FAKE_BUDDY_REPLY").as_deref() {
        Ok("rows") if sql => {
            json!([{"total":1,"error":"","warning":"","columns":[{"answer":{"type":"string"}}],"data":[{"answer":"from helper"}]}])
        }
        Ok("rows") => Value::String("answer from helper\n".into()),
        _ => json!({"error": request["error"]["message"]}),
    };
    let code = if matches!(std::env::var("FAKE_BUDDY_REPLY").as_deref(), Ok("rows")) {
        200
    } else {
        0
    };
    json!({"version":3,"type":kind,"message":message,"meta":null,"error_code":code}).to_string()
}
