//! searchd's HTTP/1 connection handling, on the wire (golden facts §6).
//!
//! Hand-written instead of hyper's server because searchd's connection semantics are not what
//! a conforming HTTP/1.1 server does, and hyper cannot be made to show them:
//! - every non-2xx reply ends the connection, without a `Connection: close` header (hyper keeps
//!   the connection and would announce a close);
//! - requests pipelined in one write are mis-parsed: searchd answers once, with the *last*
//!   `sum of Content-Lengths` bytes of what it read as the body of the first request, then
//!   closes (records `http.23`–`http.26`); hyper answers each request correctly;
//! - `Expect: 100-continue` gets a full `100 Continue` response with `Server`, `Content-Type` and
//!   `Content-Length: 0` headers, and only when the body has not arrived yet;
//! - a body over `max_packet_size` is refused from its `Content-Length` with `413` and
//!   `{"error":"length out of bounds N(134217728)"}`, and the connection is closed unread;
//! - a connection that sends nothing is closed after `network_timeout` (5 s), while a kept-alive
//!   or half-sent one waits `client_timeout` (5 min);
//! - replies carry exactly `Server`, `Content-Type`, `Content-Length`, in that order (hyper adds
//!   `date` and lower-cases names).

use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bound on a request head (request line and headers).
const MAX_HEAD: usize = 64 * 1024;
/// Bound on the number of headers of a request.
const MAX_HEADERS: usize = 128;
const READ_CHUNK: usize = 64 * 1024;

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor_version: u8,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    pub fn query(&self) -> &str {
        self.target.split_once('?').map(|(_, q)| q).unwrap_or("")
    }

    fn has_token(&self, header: &str, token: &str) -> bool {
        self.header(header)
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// Whether the client lets the connection stay open (HTTP/1.1 unless `Connection: close`;
    /// HTTP/1.0 only with `Connection: keep-alive`).
    fn keep_alive(&self) -> bool {
        if self.minor_version == 0 {
            self.has_token("connection", "keep-alive")
        } else {
            !self.has_token("connection", "close")
        }
    }
}

/// A reply before it goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub content_type: String,
    pub body: Vec<u8>,
}

impl Response {
    pub const JSON: &'static str = "application/json; charset=UTF-8";

    pub fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: Response::JSON.to_string(),
            body: body.into(),
        }
    }
}

/// Connection timeouts (searchd's `network_timeout` and `client_timeout`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub first_request: Duration,
    pub idle: Duration,
}

/// How the server treats one request path (decided from its head).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathRules {
    /// Largest body accepted.
    pub max_body: u64,
    /// A non-2xx reply ends the connection (searchd's rule; the simulator's own node-to-node
    /// messages keep their pooled connections open whatever the status).
    pub close_on_error: bool,
}

#[derive(Debug, Error)]
enum ConnError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("idle timeout")]
    Timeout,
    #[error("connection closed")]
    Eof,
}

/// searchd's reason phrases.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// The bytes of one reply: status line, `Server`, `Content-Type`, `Content-Length`, body.
pub fn encode(server: &str, resp: &Response) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nServer: {server}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    )
    .into_bytes();
    out.extend_from_slice(&resp.body);
    out
}

/// A parsed head: the request without its body, the head's length and how the body is framed.
#[derive(Debug)]
struct Head {
    request: Request,
    len: usize,
    framing: Framing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    Length(u64),
    Chunked,
}

enum HeadParse {
    Complete(Head),
    Partial,
    Invalid(String),
}

fn parse_head(buf: &[u8]) -> HeadParse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return HeadParse::Partial,
        Err(e) => return HeadParse::Invalid(e.to_string()),
    };
    let request = Request {
        method: req.method.unwrap_or("GET").to_string(),
        target: req.path.unwrap_or("/").to_string(),
        minor_version: req.version.unwrap_or(1),
        headers: req
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).trim().to_string(),
                )
            })
            .collect(),
        body: Vec::new(),
    };
    let framing = if request.has_token("transfer-encoding", "chunked") {
        Framing::Chunked
    } else {
        match request.header("content-length").map(|v| v.parse::<u64>()) {
            None => Framing::Length(0),
            Some(Ok(n)) => Framing::Length(n),
            Some(Err(_)) => return HeadParse::Invalid("bad Content-Length".to_string()),
        }
    };
    HeadParse::Complete(Head {
        request,
        len,
        framing,
    })
}

/// Outcome of decoding a chunked body from a buffer.
#[derive(Debug, PartialEq, Eq)]
enum Chunks {
    /// The body and the bytes it took in the buffer.
    Complete(Vec<u8>, usize),
    Partial,
    Invalid,
}

/// Decodes a chunked body incrementally: each call continues where the previous one stopped,
/// so a large body arriving in many reads is scanned once.
#[derive(Debug, Default)]
struct ChunkDecoder {
    /// Bytes of the body's encoding consumed so far.
    pos: usize,
    body: Vec<u8>,
}

impl ChunkDecoder {
    /// `buf` holds the encoded body from its first byte.
    fn advance(&mut self, buf: &[u8]) -> Chunks {
        loop {
            let rest = &buf[self.pos..];
            let Some(eol) = find(rest, b"\r\n") else {
                return if rest.len() > MAX_HEAD {
                    Chunks::Invalid
                } else {
                    Chunks::Partial
                };
            };
            let line = String::from_utf8_lossy(&rest[..eol]);
            let Ok(size) = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            else {
                return Chunks::Invalid;
            };
            let data = eol + 2;
            if size == 0 {
                // Trailers end with an empty line.
                let trailers = &rest[data..];
                let end = if trailers.starts_with(b"\r\n") {
                    Some(2)
                } else {
                    find(trailers, b"\r\n\r\n").map(|e| e + 4)
                };
                return match end {
                    Some(e) => {
                        Chunks::Complete(std::mem::take(&mut self.body), self.pos + data + e)
                    }
                    None if trailers.len() > MAX_HEAD => Chunks::Invalid,
                    None => Chunks::Partial,
                };
            }
            let Some(next) = data.checked_add(size).and_then(|n| n.checked_add(2)) else {
                return Chunks::Invalid;
            };
            if rest.len() < next {
                return Chunks::Partial;
            }
            self.body.extend_from_slice(&rest[data..data + size]);
            self.pos += next;
        }
    }

    fn decoded(&self) -> usize {
        self.body.len()
    }
}

fn decode_chunked(buf: &[u8]) -> Chunks {
    ChunkDecoder::default().advance(buf)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Length of the complete request at the start of `buf` (head and body), if it is complete.
fn complete_request_len(buf: &[u8]) -> Option<(usize, usize)> {
    let HeadParse::Complete(head) = parse_head(buf) else {
        return None;
    };
    match head.framing {
        Framing::Length(n) => {
            let n = usize::try_from(n).ok()?;
            (buf.len() >= head.len + n).then_some((head.len + n, n))
        }
        Framing::Chunked => match decode_chunked(&buf[head.len..]) {
            Chunks::Complete(body, used) => Some((head.len + used, body.len())),
            _ => None,
        },
    }
}

/// searchd's reading of requests pipelined in one write: the first request's head with, as its
/// body, the last `sum of the body lengths` bytes of everything the complete requests took
/// (`http.23`: `tent-Length: 40\r\n\r\nquery=SELECT…`). Incomplete trailing bytes are dropped.
fn misparsed_body(buf: &[u8], first_len: usize, first_body: usize) -> Vec<u8> {
    let mut end = first_len;
    let mut total = first_body;
    while let Some((len, body)) = complete_request_len(&buf[end..]) {
        end += len;
        total += body;
    }
    buf[end.saturating_sub(total)..end].to_vec()
}

struct Conn<S> {
    stream: S,
    buf: Vec<u8>,
    limits: Limits,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// Reads more bytes within `wait`; EOF and timeouts end the connection.
    async fn fill(&mut self, wait: Duration) -> Result<(), ConnError> {
        self.buf.reserve(READ_CHUNK);
        let n = tokio::time::timeout(wait, self.stream.read_buf(&mut self.buf))
            .await
            .map_err(|_| ConnError::Timeout)??;
        if n == 0 {
            return Err(ConnError::Eof);
        }
        Ok(())
    }

    /// Writes a reply; a client that does not take it within `client_timeout` is dropped.
    async fn send(&mut self, server: &str, resp: &Response) -> Result<(), ConnError> {
        let bytes = encode(server, resp);
        let write = async {
            self.stream.write_all(&bytes).await?;
            self.stream.flush().await
        };
        tokio::time::timeout(self.limits.idle, write)
            .await
            .map_err(|_| ConnError::Timeout)??;
        Ok(())
    }
}

/// A connection that can be reset instead of closed.
pub trait Resettable {
    /// Makes the coming close a reset (SO_LINGER 0).
    fn reset_on_close(&self);
}

impl Resettable for tokio::net::TcpStream {
    fn reset_on_close(&self) {
        // SO_LINGER with a zero timeout: close() does not wait, it resets. (tokio deprecates
        // its own setter because a non-zero linger blocks the thread on drop.)
        let linger = nix::libc::linger {
            l_onoff: 1,
            l_linger: 0,
        };
        let _ = nix::sys::socket::setsockopt(self, nix::sys::socket::sockopt::Linger, &linger);
    }
}

impl Resettable for tokio::io::DuplexStream {
    fn reset_on_close(&self) {}
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Close {
    /// A plain close (FIN).
    Graceful,
    /// The client was still sending a body that is refused: searchd's close leaves it unread,
    /// so the client sees a reset (its send fails with ECONNRESET, records `http.35`/`http.36`).
    /// Forced with SO_LINGER 0, so the outcome does not depend on whether more of the body
    /// happened to have arrived when the socket closed.
    Reset,
}

/// Serves one connection until it closes. `rules` classifies a request from its head;
/// `handle` answers it.
pub async fn serve_connection<S, R, H, Fut>(
    stream: S,
    server: &str,
    limits: Limits,
    rules: R,
    handle: H,
) where
    S: AsyncRead + AsyncWrite + Unpin + Resettable,
    R: Fn(&Request) -> PathRules,
    H: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        limits,
    };
    if let Ok(Close::Reset) = serve(&mut conn, server, &rules, &handle).await {
        conn.stream.reset_on_close();
    }
    // Dropping the stream is searchd's plain close(), without a shutdown() first.
    drop(conn);
}

async fn serve<S, R, H, Fut>(
    conn: &mut Conn<S>,
    server: &str,
    rules: &R,
    handle: &H,
) -> Result<Close, ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    R: Fn(&Request) -> PathRules,
    H: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    let mut served = 0u64;
    loop {
        // The head. A new connection must start its request within network_timeout.
        let head = loop {
            match parse_head(&conn.buf) {
                HeadParse::Complete(head) => break head,
                HeadParse::Invalid(why) => {
                    let resp = Response::json(400, super::rawjson::error_body(&why));
                    conn.send(server, &resp).await?;
                    return Ok(Close::Graceful);
                }
                HeadParse::Partial if conn.buf.len() > MAX_HEAD => {
                    let resp = Response::json(400, super::rawjson::error_body("request too long"));
                    conn.send(server, &resp).await?;
                    return Ok(Close::Graceful);
                }
                HeadParse::Partial => {
                    let wait = if served == 0 && conn.buf.is_empty() {
                        conn.limits.first_request
                    } else {
                        conn.limits.idle
                    };
                    conn.fill(wait).await?;
                }
            }
        };
        let rule = rules(&head.request);
        let max_body = rule.max_body;
        // The body, refused from its announced length when too large (the rest is not read).
        let (body, used) = match head.framing {
            Framing::Length(n) => {
                if n > max_body {
                    let resp = too_large(n, max_body);
                    conn.send(server, &resp).await?;
                    return Ok(Close::Reset);
                }
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                let mut continued = false;
                while conn.buf.len() < head.len + n {
                    if !continued && head.request.has_token("expect", "100-continue") {
                        continued = true;
                        conn.send(server, &Response::json(100, Vec::new())).await?;
                    }
                    conn.fill(conn.limits.idle).await?;
                }
                (conn.buf[head.len..head.len + n].to_vec(), head.len + n)
            }
            Framing::Chunked => {
                let mut continued = false;
                let mut decoder = ChunkDecoder::default();
                loop {
                    match decoder.advance(&conn.buf[head.len..]) {
                        Chunks::Complete(body, used) => break (body, head.len + used),
                        Chunks::Invalid => {
                            let resp = Response::json(
                                400,
                                super::rawjson::error_body("invalid chunked body"),
                            );
                            conn.send(server, &resp).await?;
                            return Ok(Close::Graceful);
                        }
                        Chunks::Partial => {
                            let pending = decoder.decoded() as u64;
                            if pending > max_body {
                                conn.send(server, &too_large(pending, max_body)).await?;
                                return Ok(Close::Reset);
                            }
                            if !continued && head.request.has_token("expect", "100-continue") {
                                continued = true;
                                conn.send(server, &Response::json(100, Vec::new())).await?;
                            }
                            conn.fill(conn.limits.idle).await?;
                        }
                    }
                }
            }
        };
        let pipelined = conn.buf.len() > used;
        let mut request = head.request;
        request.body = if pipelined {
            misparsed_body(&conn.buf, used, body.len())
        } else {
            body
        };
        let keep = request.keep_alive();
        let resp = handle(request).await;
        conn.send(server, &resp).await?;
        served += 1;
        let success = (200..300).contains(&resp.status);
        if pipelined || !keep || (!success && rule.close_on_error) {
            return Ok(Close::Graceful);
        }
        conn.buf.clear();
    }
}

fn too_large(length: u64, max: u64) -> Response {
    Response::json(
        413,
        super::rawjson::error_body(&format!("length out of bounds {length}({max})")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Head {
        match parse_head(text.as_bytes()) {
            HeadParse::Complete(h) => h,
            _ => panic!("incomplete head: {text}"),
        }
    }

    #[test]
    fn heads_and_framing() {
        let h = head("POST /sql?mode=raw HTTP/1.0\r\nHost: x\r\nContent-Length: 19\r\n\r\n");
        assert_eq!(h.request.path(), "/sql");
        assert_eq!(h.request.query(), "mode=raw");
        assert_eq!(h.request.minor_version, 0);
        assert_eq!(h.framing, Framing::Length(19));
        assert!(!h.request.keep_alive());
        let h = head("GET / HTTP/1.1\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(h.request.keep_alive());
        assert_eq!(h.framing, Framing::Length(0));
        let h = head("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(h.framing, Framing::Chunked);
        assert!(matches!(
            parse_head(b"POST / HTTP/1.1\r\nHost"),
            HeadParse::Partial
        ));
        assert!(matches!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n"),
            HeadParse::Invalid(_)
        ));
    }

    #[test]
    fn chunked_bodies() {
        assert_eq!(
            decode_chunked(b"6\r\nquery=\r\nd\r\nSHOW%20TABLES\r\n0\r\n\r\nrest"),
            Chunks::Complete(b"query=SHOW%20TABLES".to_vec(), 34)
        );
        assert_eq!(decode_chunked(b"6\r\nque"), Chunks::Partial);
        assert_eq!(decode_chunked(b"zz\r\n"), Chunks::Invalid);
        assert_eq!(
            decode_chunked(b"ffffffffffffffff\r\n"),
            Chunks::Invalid,
            "a size that overflows"
        );
        // Incremental: the second call continues after the chunks the first one took.
        let whole = b"3\r\nabc\r\n2\r\nde\r\n0\r\nX-T: 1\r\n\r\n";
        let mut d = ChunkDecoder::default();
        assert_eq!(d.advance(&whole[..12]), Chunks::Partial);
        assert_eq!(d.decoded(), 3);
        assert_eq!(
            d.advance(whole),
            Chunks::Complete(b"abcde".to_vec(), whole.len())
        );
    }

    /// `http.23` of the golden transcripts, byte for byte.
    #[test]
    fn pipelined_requests_are_misparsed_like_searchd() {
        let one = "POST /sql?mode=raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: golden-gen/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 19\r\n\r\nquery=SHOW%20TABLES";
        let two = "POST /sql?mode=raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: golden-gen/1.0\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 40\r\n\r\nquery=SELECT%20COUNT%28%2A%29%20FROM%20t";
        let buf = format!("{one}{two}");
        let (len, body) = complete_request_len(buf.as_bytes()).unwrap();
        assert_eq!((len, body), (one.len(), 19));
        let got = misparsed_body(buf.as_bytes(), len, body);
        assert_eq!(
            String::from_utf8(got).unwrap(),
            "tent-Length: 40\r\n\r\nquery=SELECT%20COUNT%28%2A%29%20FROM%20t"
        );
    }

    #[test]
    fn replies_carry_searchd_headers() {
        let bytes = encode("29.2.2 x", &Response::json(100, Vec::new()));
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "HTTP/1.1 100 Continue\r\nServer: 29.2.2 x\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: 0\r\n\r\n"
        );
        assert_eq!(
            too_large(135266309, 134217728).body,
            br#"{"error":"length out of bounds 135266309(134217728)"}"#.to_vec()
        );
    }

    /// A whole exchange over an in-memory stream: keep-alive after 200, close after 500.
    #[tokio::test]
    async fn closes_after_an_error_reply() {
        let (client, server) = tokio::io::duplex(1 << 16);
        let limits = Limits {
            first_request: Duration::from_secs(5),
            idle: Duration::from_secs(5),
        };
        let task = tokio::spawn(async move {
            serve_connection(
                server,
                "v",
                limits,
                |_| PathRules {
                    max_body: 1024,
                    close_on_error: true,
                },
                |req: Request| async move {
                    let status = if req.body == b"ok" { 200 } else { 500 };
                    Response::json(status, req.body)
                },
            )
            .await
        });
        let mut client = client;
        let req = |body: &str| {
            format!(
                "POST /x HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        client.write_all(req("ok").as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = client.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200 OK\r\n"));
        client.write_all(req("no").as_bytes()).await.unwrap();
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(
            String::from_utf8_lossy(&rest).starts_with("HTTP/1.1 500 Internal Server Error\r\n")
        );
        task.await.unwrap();
    }
}
