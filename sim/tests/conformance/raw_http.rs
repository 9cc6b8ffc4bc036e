//! `raw_http` records: the bytes the generator wrote to a raw TCP socket, replayed as they are,
//! and what came back rendered the way the generator rendered it (`transcripts.md`, "How each
//! `via` was sent"): `>>>` what the client sent (`\r\n` shown as `\r\n` plus a line break),
//! `<<<` each reply (status line, headers, body; bodies over 400 bytes cut with `…(N bytes)`),
//! `...` what the socket did afterwards.
//!
//! The record itself says how many replies the generator waited for after each write and
//! whether it then watched the socket (that is its procedure, not searchd's answer); every
//! byte on the way back is compared.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// How long a reply may take before the generator's "nothing within 2 s" is reported (longer
/// than its 2 s: a quiet socket stays quiet).
const REPLY_WAIT: Duration = Duration::from_secs(5);
/// How long the socket is watched for a close after the replies (the generator's 1.0 s).
const CLOSE_WATCH: Duration = Duration::from_secs(1);
/// Closes observed sooner than this are reported as `0.00 s`: facts.md's timings carry
/// 0.1–0.2 s of granularity, and a busy test machine may take a few milliseconds to deliver
/// a FIN the node sent right after its reply.
const CLOSE_GRANULARITY: Duration = Duration::from_millis(100);
/// Reply bodies longer than this are cut in the rendering.
const SHOWN_BODY: usize = 400;

/// One write of the generator and what it then did.
#[derive(Debug, PartialEq)]
struct Exchange {
    sent: Vec<u8>,
    /// Replies waited for.
    reads: usize,
    /// Whether the socket was then watched for a close.
    watch: bool,
}

/// Splits a dialog into exchanges.
fn exchanges(output: &str) -> Vec<Exchange> {
    let mut out: Vec<Exchange> = Vec::new();
    let mut lines = output.lines().peekable();
    while let Some(line) = lines.next() {
        if line.starts_with(">>> client sends ") {
            let mut text = Vec::new();
            while let Some(l) = lines.peek() {
                if l.starts_with("<<< ") || l.starts_with("... ") || l.starts_with(">>> ") {
                    break;
                }
                text.push(*l);
                lines.next();
            }
            let sent = text.join("\n").replace("\\r\\n\n", "\r\n");
            out.push(Exchange {
                sent: sent.into_bytes(),
                reads: 0,
                watch: false,
            });
        } else if line.starts_with("<<< ") {
            if let Some(last) = out.last_mut() {
                last.reads += 1;
            }
        } else if line.starts_with("... ") {
            if let Some(last) = out.last_mut() {
                last.watch = true;
            }
        }
    }
    out
}

/// A connection and the bytes received on it but not rendered yet.
struct Socket {
    stream: TcpStream,
    pending: Vec<u8>,
    /// The server closed its side (EOF seen).
    closed: bool,
}

enum Received {
    Reply { head: String, body: Vec<u8> },
    Eof,
    Reset,
    Nothing,
}

impl Socket {
    /// Reads one reply (head and a `Content-Length` body).
    fn read_reply(&mut self, wait: Duration) -> Received {
        let deadline = Instant::now() + wait;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut resp = httparse::Response::new(&mut headers);
            if let Ok(httparse::Status::Complete(head_len)) = resp.parse(&self.pending) {
                let length = resp
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                    .unwrap_or(0usize);
                if self.pending.len() >= head_len + length {
                    let head = String::from_utf8_lossy(&self.pending[..head_len - 4])
                        .replace("\r\n", "\n");
                    let body = self.pending[head_len..head_len + length].to_vec();
                    self.pending.drain(..head_len + length);
                    return Received::Reply { head, body };
                }
            }
            if self.closed {
                return Received::Eof;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Received::Nothing;
            }
            match self.fill(left) {
                Ok(true) => {}
                Ok(false) => self.closed = true,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Received::Nothing
                }
                Err(_) => {
                    self.closed = true;
                    return Received::Reset;
                }
            }
        }
    }

    /// One read; `Ok(false)` at EOF.
    fn fill(&mut self, wait: Duration) -> std::io::Result<bool> {
        self.stream
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk)?;
        self.pending.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Watches the socket for a close; returns when it was seen.
    fn watch_close(&mut self, wait: Duration) -> Option<Duration> {
        let started = Instant::now();
        if self.closed {
            return Some(Duration::ZERO);
        }
        while started.elapsed() < wait {
            match self.fill(wait - started.elapsed()) {
                Ok(true) => {}
                Ok(false) => {
                    self.closed = true;
                    return Some(started.elapsed());
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(_) => {
                    self.closed = true;
                    return Some(started.elapsed());
                }
            }
        }
        None
    }
}

fn render_reply(head: &str, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let shown = if body.len() > SHOWN_BODY {
        let cut: String = text.chars().take(SHOWN_BODY).collect();
        format!("{cut}…({} bytes)", body.len())
    } else {
        text.to_string()
    };
    format!("{head}\n\n{shown}\n")
}

fn render_close(after: Option<Duration>) -> String {
    match after {
        None => format!(
            "... connection still open {:.1} s after the reply\n",
            CLOSE_WATCH.as_secs_f64()
        ),
        Some(t) => {
            let t = if t < CLOSE_GRANULARITY {
                Duration::ZERO
            } else {
                t
            };
            format!(
                "... server closed the connection (EOF) {:.2} s after the reply\n",
                t.as_secs_f64()
            )
        }
    }
}

/// Replays a dialog record against `port`; returns the rendering.
pub fn replay_dialog(port: u16, output: &str) -> String {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let _ = stream.set_nodelay(true);
    let mut socket = Socket {
        stream,
        pending: Vec::new(),
        closed: false,
    };
    let mut out = String::new();
    for ex in exchanges(output) {
        out.push_str(&format!(">>> client sends {} bytes:\n", ex.sent.len()));
        out.push_str(&String::from_utf8_lossy(&ex.sent).replace("\r\n", "\\r\\n\n"));
        out.push('\n');
        // A write into a socket the server closed is the generator's business, not a reply.
        let _ = socket.stream.write_all(&ex.sent);
        for _ in 0..ex.reads {
            match socket.read_reply(REPLY_WAIT) {
                Received::Reply { head, body } => {
                    out.push_str("<<< server replies:\n");
                    out.push_str(&render_reply(&head, &body));
                }
                Received::Eof => {
                    out.push_str("<<< no response: server closed the connection (EOF)\n")
                }
                Received::Reset => {
                    out.push_str("<<< no response: server reset the connection (RST)\n")
                }
                Received::Nothing => out.push_str("<<< no response: nothing within 2 s\n"),
            }
        }
        if ex.watch {
            out.push_str(&render_close(socket.watch_close(CLOSE_WATCH)));
        }
    }
    out
}

/// Python's name for a failed `send` (the generator is a Python program).
fn python_error(e: &std::io::Error) -> String {
    match e.kind() {
        ErrorKind::ConnectionReset => "ConnectionResetError".to_string(),
        ErrorKind::BrokenPipe => "BrokenPipeError".to_string(),
        ErrorKind::ConnectionAborted => "ConnectionAbortedError".to_string(),
        ErrorKind::TimedOut | ErrorKind::WouldBlock => "TimeoutError".to_string(),
        other => format!("{other:?}"),
    }
}

/// `POST /sql?mode=raw` with a body of `size` bytes (`query=SELECT COUNT(*) FROM t&pad=xxx…`).
pub fn replay_large_body(port: u16, size: usize) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let head = format!(
        "POST /sql?mode=raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: golden-gen/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {size}\r\n\r\n"
    );
    let prefix = b"query=SELECT COUNT(*) FROM t&pad=";
    let sent = (|| -> std::io::Result<()> {
        stream.write_all(head.as_bytes())?;
        stream.write_all(prefix)?;
        let pad = vec![b'x'; 1 << 20];
        let mut left = size.saturating_sub(prefix.len());
        while left > 0 {
            let n = left.min(pad.len());
            stream.write_all(&pad[..n])?;
            left -= n;
        }
        Ok(())
    })();
    let mut out = match &sent {
        Ok(()) => format!(">>> send: all {size} body bytes sent\n"),
        Err(e) => format!(">>> send: {}\n", python_error(e)),
    };
    let mut socket = Socket {
        stream,
        pending: Vec::new(),
        closed: false,
    };
    match socket.read_reply(Duration::from_secs(60)) {
        Received::Reply { head, body } => {
            out.push_str("<<< ");
            out.push_str(&render_reply(&head, &body));
        }
        Received::Eof | Received::Reset => out.push_str("<<< no response (EOF)\n"),
        Received::Nothing => out.push_str("<<< no response\n"),
    }
    let after = if socket.watch_close(CLOSE_WATCH).is_some() {
        "EOF"
    } else {
        "open"
    };
    out.push_str(&format!("... after: {after}\n"));
    out
}

/// The body sizes facts.md §6 lists for the large-body records: MiB → bytes.
pub fn large_body_sizes(facts: &str) -> Vec<(u64, usize)> {
    let section = facts
        .split("### Large request bodies")
        .nth(1)
        .and_then(|s| s.split("###").next())
        .unwrap_or("");
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            Some((cells.get(1)?.parse().ok()?, cells.get(2)?.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dialogs_split_into_exchanges() {
        let output = ">>> client sends 20 bytes:\nGET / HTTP/1.1\\r\\n\n\\r\\n\n\n<<< server replies:\nHTTP/1.1 200 OK\n\n{}\n<<< no response: nothing within 2 s\n... connection still open 1.0 s after the reply\n>>> client sends 3 bytes:\nabc\n<<< no response: server closed the connection (EOF)\n";
        let ex = exchanges(output);
        assert_eq!(
            ex,
            vec![
                Exchange {
                    sent: b"GET / HTTP/1.1\r\n\r\n".to_vec(),
                    reads: 2,
                    watch: true
                },
                Exchange {
                    sent: b"abc".to_vec(),
                    reads: 1,
                    watch: false
                }
            ]
        );
        assert_eq!(
            render_reply("HTTP/1.1 200 OK", &[b'a'; 401]),
            format!("HTTP/1.1 200 OK\n\n{}…(401 bytes)\n", "a".repeat(400))
        );
        assert_eq!(
            render_close(Some(Duration::from_millis(3))),
            "... server closed the connection (EOF) 0.00 s after the reply\n"
        );
    }
}
