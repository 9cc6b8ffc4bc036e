//! HTTP/1.1 connections to daemons (and to the fallback Buddy), and the
//! mapping of transport failures onto [`ClientError`].
//!
//! searchd keeps a connection open after a 2xx reply but closes it after
//! every other reply, without a `Connection: close` header (golden facts §6).
//! A general-purpose pool would put such a connection back and fail the next
//! call on it. So connections are pooled by hand here, on hyper's
//! connection-level API: a connection goes back to the pool only after a 2xx
//! reply that was read to the end, while hyper still reports it open and
//! ready, and only for a bounded idle time.
//!
//! A call that fails on a reused connection before any byte of the reply
//! arrived may still have reached the server. Read-only statements are then
//! sent once more on a fresh connection (running them twice changes
//! nothing); anything else is reported as [`ClientError::Disconnected`], and
//! the caller finds out what happened by reading the state it meant to
//! change.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderMap, HOST};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::ClientError;

/// How long an idle connection is kept for reuse. searchd keeps one open for
/// at least 65 s after a 2xx reply (golden facts §6); a shorter bound keeps
/// few sockets around and makes a server-side close while idle unlikely.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per server.
const MAX_IDLE_PER_SERVER: usize = 8;
/// How long a connection may take to become ready again after its reply
/// before it is given up rather than pooled.
const READY_WAIT: Duration = Duration::from_millis(100);
/// The largest reply body read (a larger one is a [`ClientError::Decode`]).
/// searchd refuses requests over 128 MiB; a reply of the metadata shardbuddy
/// reads stays far below this.
pub(crate) const MAX_REPLY_BYTES: usize = 256 << 20;

/// A complete reply.
#[derive(Debug)]
pub(crate) struct RawReply {
    pub status: StatusCode,
    pub body: Bytes,
}

/// Whether a request may be sent again after a failure that leaves its
/// outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replay {
    /// Running it twice changes nothing (a read).
    Safe,
    /// It may change something: never sent twice by the transport.
    Never,
}

/// A request that can be built more than once (for a replay).
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub uri: Uri,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Outgoing {
    fn authority(&self) -> Option<String> {
        self.uri.authority().map(|a| a.as_str().to_string())
    }

    fn build(&self, authority: &str) -> Result<Request<Full<Bytes>>, hyper::http::Error> {
        let path = self
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let mut builder = Request::builder().method(Method::POST).uri(path);
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        // The low-level API adds no `Host`; written after the caller's
        // headers, where a general-purpose client puts it.
        builder
            .header(HOST, authority)
            .body(Full::new(self.body.clone()))
    }
}

struct Idle {
    sender: SendRequest<Full<Bytes>>,
    since: Instant,
}

/// A cheap-to-clone handle on the shared connections.
#[derive(Clone)]
pub(crate) struct Transport {
    idle: Arc<Mutex<HashMap<String, Vec<Idle>>>>,
    connect_timeout: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("connect_timeout", &self.connect_timeout)
            .finish_non_exhaustive()
    }
}

/// How one attempt ended.
enum Attempt {
    Reply(RawReply),
    /// Failed before any byte of the reply arrived on a reused connection.
    StaleConnection(ClientError),
    Failed(ClientError),
}

impl Transport {
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        Self {
            idle: Arc::default(),
            connect_timeout,
        }
    }

    /// Sends `request` and reads the whole reply, all within `timeout`.
    pub(crate) async fn send(
        &self,
        request: &Outgoing,
        replay: Replay,
        timeout: Duration,
    ) -> Result<RawReply, ClientError> {
        let url = request.uri.to_string();
        let exchange = async {
            match self.attempt(request, &url, true).await {
                Attempt::Reply(reply) => Ok(reply),
                Attempt::StaleConnection(_) if replay == Replay::Safe => {
                    match self.attempt(request, &url, false).await {
                        Attempt::Reply(reply) => Ok(reply),
                        Attempt::StaleConnection(e) | Attempt::Failed(e) => Err(e),
                    }
                }
                Attempt::StaleConnection(e) | Attempt::Failed(e) => Err(e),
            }
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(ClientError::Timeout {
                    url: url.clone(),
                    after: timeout,
                })
            })
    }

    async fn attempt(&self, request: &Outgoing, url: &str, may_reuse: bool) -> Attempt {
        let Some(authority) = request.authority() else {
            return Attempt::Failed(ClientError::Connect {
                url: url.to_string(),
                reason: "the URL names no server".into(),
            });
        };
        let pooled = if may_reuse {
            self.take_idle(&authority)
        } else {
            None
        };
        let reused = pooled.is_some();
        let mut sender = match pooled {
            Some(sender) => sender,
            None => match self.connect(&authority, url).await {
                Ok(sender) => sender,
                Err(e) => return Attempt::Failed(e),
            },
        };
        let hyper_request = match request.build(&authority) {
            Ok(r) => r,
            Err(err) => {
                return Attempt::Failed(ClientError::Connect {
                    url: url.to_string(),
                    reason: format!("invalid request: {err}"),
                })
            }
        };
        let disconnected = |reason: String| ClientError::Disconnected {
            url: url.to_string(),
            reason,
        };
        let response = match sender.send_request(hyper_request).await {
            Ok(response) => response,
            Err(err) => {
                let e = disconnected(error_chain(&err));
                return if reused {
                    Attempt::StaleConnection(e)
                } else {
                    Attempt::Failed(e)
                };
            }
        };
        let status = response.status();
        let body = match Limited::new(response.into_body(), MAX_REPLY_BYTES)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(err) => {
                let reason = error_chain(&*err);
                return Attempt::Failed(if err.is::<http_body_util::LengthLimitError>() {
                    ClientError::Decode {
                        url: url.to_string(),
                        reason: format!("the reply is larger than {MAX_REPLY_BYTES} bytes"),
                    }
                } else {
                    disconnected(reason)
                });
            }
        };
        if status.is_success() {
            self.put_idle(authority, sender).await;
        }
        Attempt::Reply(RawReply { status, body })
    }

    async fn connect(
        &self,
        authority: &str,
        url: &str,
    ) -> Result<SendRequest<Full<Bytes>>, ClientError> {
        let refused = |reason: String| ClientError::Connect {
            url: url.to_string(),
            reason,
        };
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(authority))
            .await
            .map_err(|_| refused(format!("no connection within {:?}", self.connect_timeout)))?
            .map_err(|e| refused(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (sender, connection) = http1::Builder::new()
            // Header names as curl writes them (`Content-Type`, `User-Agent`).
            .title_case_headers(true)
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| refused(error_chain(&e)))?;
        tokio::spawn(async move {
            // Ends when the server closes the connection or the last
            // `SendRequest` is dropped; either way there is nobody to tell.
            let _ = connection.await;
        });
        Ok(sender)
    }

    fn take_idle(&self, authority: &str) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().ok()?;
        let list = idle.get_mut(authority)?;
        while let Some(conn) = list.pop() {
            if conn.since.elapsed() < IDLE_TIMEOUT
                && conn.sender.is_ready()
                && !conn.sender.is_closed()
            {
                return Some(conn.sender);
            }
        }
        None
    }

    async fn put_idle(&self, authority: String, mut sender: SendRequest<Full<Bytes>>) {
        let ready = tokio::time::timeout(READY_WAIT, sender.ready()).await;
        if !matches!(ready, Ok(Ok(()))) || sender.is_closed() {
            return;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        let list = idle.entry(authority).or_default();
        list.retain(|c| c.since.elapsed() < IDLE_TIMEOUT && !c.sender.is_closed());
        if list.len() < MAX_IDLE_PER_SERVER {
            list.push(Idle {
                sender,
                since: Instant::now(),
            });
        }
    }
}

/// The error with all its causes, `outer: inner: …`, since hyper's top-level
/// texts ("connection error") say little on their own.
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
