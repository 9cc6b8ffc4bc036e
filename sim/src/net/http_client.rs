//! A small HTTP/1.1 client for node-to-node calls and for the helper.
//!
//! Hand-written on top of `httparse` instead of using hyper's client because searchd's requests
//! to its helper must go out with exact header names and order (`Request-ID`, not `request-id`),
//! and hyper normalises header case on the wire.

use std::io;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug, Error)]
pub enum ClientError {
    #[error("connect: {0}")]
    Connect(io::Error),
    #[error("{0}")]
    Io(io::Error),
    /// The connection was not established in time.
    #[error("connect timed out")]
    ConnectTimeout,
    /// Connected, but the reply did not come in time.
    #[error("timed out")]
    Timeout,
    #[error("bad response: {0}")]
    BadResponse(String),
}

/// searchd's text for an agent it could not reach in time (facts.md: after exactly the 1 s
/// agent connect timeout).
pub const TIMED_OUT: &str = "connect and query timed out";
/// searchd's text for an agent that accepted the connection but did not answer within the
/// query timeout (facts §7 item 6: `agent 127.0.0.1:{blackhole}: query timed out` after 3 s).
pub const QUERY_TIMED_OUT: &str = "query timed out";

impl ClientError {
    /// searchd's agent error text for this failure.
    pub fn agent_text(&self) -> String {
        match self {
            ClientError::Connect(e) | ClientError::Io(e) => match e.raw_os_error() {
                Some(code) => format!("receiving failure (errno={code}, msg={})", os_message(e)),
                None => format!("receiving failure ({e})"),
            },
            ClientError::ConnectTimeout => TIMED_OUT.to_string(),
            ClientError::Timeout => QUERY_TIMED_OUT.to_string(),
            ClientError::BadResponse(why) => format!("bad reply: {why}"),
        }
    }
}

/// The C library's message for an errno, without Rust's " (os error N)" suffix.
fn os_message(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(pos) => text[..pos].to_string(),
        None => text,
    }
}

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Sends one request to `addr` (`host:port`). `headers` go out after `Host`, in the given order,
/// followed by `Content-Length`.
pub async fn send(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    connect_timeout: Duration,
    total_timeout: Duration,
) -> Result<Response, ClientError> {
    let mut stream = match tokio::time::timeout(connect_timeout, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(ClientError::Connect(e)),
        Err(_) => return Err(ClientError::ConnectTimeout),
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(k);
        head.push_str(": ");
        head.push_str(v);
        head.push_str("\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let exchange = async {
        stream
            .write_all(head.as_bytes())
            .await
            .map_err(ClientError::Io)?;
        stream.write_all(body).await.map_err(ClientError::Io)?;
        read_response(&mut stream).await
    };
    match tokio::time::timeout(total_timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(ClientError::Timeout),
    }
}

async fn read_response(stream: &mut TcpStream) -> Result<Response, ClientError> {
    let mut buf = Vec::with_capacity(4096);
    loop {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.map_err(ClientError::Io)?;
        if n == 0 {
            return Err(ClientError::BadResponse(
                "connection closed before the headers".into(),
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        let parsed = resp
            .parse(&buf)
            .map_err(|e| ClientError::BadResponse(e.to_string()))?;
        let httparse::Status::Complete(head_len) = parsed else {
            continue;
        };
        let status = resp.code.unwrap_or(0);
        let header = |name: &str| {
            resp.headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case(name))
                .map(|h| String::from_utf8_lossy(h.value).trim().to_ascii_lowercase())
        };
        let length = header("content-length").and_then(|v| v.parse::<usize>().ok());
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        let mut rest = buf.split_off(head_len);
        let body = if chunked {
            read_chunked(stream, rest).await?
        } else if let Some(len) = length {
            while rest.len() < len {
                let n = stream.read(&mut chunk).await.map_err(ClientError::Io)?;
                if n == 0 {
                    return Err(ClientError::BadResponse(
                        "body shorter than Content-Length".into(),
                    ));
                }
                rest.extend_from_slice(&chunk[..n]);
            }
            rest.truncate(len);
            rest
        } else {
            stream
                .read_to_end(&mut rest)
                .await
                .map_err(ClientError::Io)?;
            rest
        };
        return Ok(Response { status, body });
    }
}

async fn read_chunked(stream: &mut TcpStream, mut buf: Vec<u8>) -> Result<Vec<u8>, ClientError> {
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        // Ensure a full size line is buffered.
        let line_end = loop {
            if let Some(i) = buf[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            fill(stream, &mut buf).await?;
        };
        let size_text = String::from_utf8_lossy(&buf[pos..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| ClientError::BadResponse("bad chunk size".into()))?;
        pos = line_end + 2;
        while buf.len() < pos + size + 2 {
            fill(stream, &mut buf).await?;
        }
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        pos += size + 2;
    }
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(), ClientError> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk).await.map_err(ClientError::Io)?;
    if n == 0 {
        return Err(ClientError::BadResponse(
            "connection closed inside a chunked body".into(),
        ));
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}
