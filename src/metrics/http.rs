//! The monitoring endpoint: `GET /metrics` (OpenMetrics text, which
//! Prometheus scrapes as it is), the status page at `/`, and its data at
//! `GET /status.json`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Source;
use crate::config::BindAddr;

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// A scraper that sends no complete request head for this long is dropped.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// At most this many scrapes and page loads at once; more wait for a place
/// (each one reads the cluster).
const MAX_CONNECTIONS: usize = 32;

/// Binds `addr`; the error is one sentence for the log.
pub async fn bind(addr: &BindAddr) -> Result<TcpListener, String> {
    TcpListener::bind((addr.host.as_str(), addr.port))
        .await
        .map_err(|err| {
            format!(
                "cannot serve metrics on {}:{}: {err}; choose another address with {}",
                addr.host,
                addr.port,
                super::ADDR_ENV
            )
        })
}

/// Serves `listener` until `shutdown` fires.
pub async fn serve(listener: TcpListener, source: Arc<dyn Source>, shutdown: CancellationToken) {
    let connections = TaskTracker::new();
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, place) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => match Arc::clone(&places).acquire_owned().await {
                    Ok(place) => (stream, place),
                    Err(_) => break,
                },
                Err(err) => {
                    tracing::debug!(%err, "accepting a monitoring connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let source = Arc::clone(&source);
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let _place = place;
            let service = service_fn(move |request| {
                let source = Arc::clone(&source);
                async move { Ok::<_, Infallible>(respond(&*source, request).await) }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service);
            tokio::select! {
                _ = connection => {}
                _ = shutdown.cancelled() => {}
            }
        });
    }
    connections.close();
}

/// Binds and serves in the background; logs where (or why not).
pub async fn start(
    addr: &BindAddr,
    source: Arc<dyn Source>,
    shutdown: CancellationToken,
    tasks: &TaskTracker,
) -> Option<SocketAddr> {
    match bind(addr).await {
        Ok(listener) => {
            let local = listener.local_addr().ok();
            if let Some(local) = local {
                tracing::info!(address = %local, "metrics and status page served on http://{local}/");
            }
            tasks.spawn(serve(listener, source, shutdown));
            local
        }
        Err(message) => {
            tracing::warn!("{message}");
            None
        }
    }
}

async fn respond(source: &dyn Source, request: Request<Incoming>) -> Response<Full<Bytes>> {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "text/plain", Bytes::new());
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    match request.uri().path() {
        "/metrics" => {
            let mut body = String::new();
            let encoded = source.metrics(&mut body).await;
            if encoded.is_err() {
                return reply(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain",
                    Bytes::from_static(b"the metrics could not be encoded\n"),
                );
            }
            body.push_str("# EOF\n");
            reply(StatusCode::OK, OPENMETRICS, body.into())
        }
        "/" | "/index.html" => reply(
            StatusCode::OK,
            "text/html; charset=utf-8",
            Bytes::from_static(super::page::PAGE.as_bytes()),
        ),
        "/status.json" => reply(
            StatusCode::OK,
            "application/json",
            source.status().await.to_string().into(),
        ),
        _ => reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            Bytes::from_static(b"not found: try /, /metrics or /status.json\n"),
        ),
    }
}

fn reply(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A source whose metrics cannot be encoded.
    struct Broken;

    #[async_trait::async_trait]
    impl Source for Broken {
        async fn metrics(&self, _out: &mut String) -> std::fmt::Result {
            Err(std::fmt::Error)
        }

        async fn status(&self) -> serde_json::Value {
            serde_json::Value::Null
        }
    }

    /// The status line and body of `GET path` from an endpoint serving `Broken`.
    async fn get(path: &str) -> (String, String) {
        let listener = bind(&BindAddr {
            host: "127.0.0.1".into(),
            port: 0,
        })
        .await
        .unwrap();
        let addr = listener.local_addr().unwrap();
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, Arc::new(Broken), shutdown.clone()));
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        shutdown.cancel();
        server.await.unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_string(), body.to_string())
    }

    #[tokio::test]
    async fn metrics_that_cannot_be_encoded_are_a_server_error() {
        assert_eq!(
            get("/metrics").await,
            (
                "HTTP/1.1 500 Internal Server Error".to_string(),
                "the metrics could not be encoded\n".to_string()
            )
        );
    }

    #[tokio::test]
    async fn an_unknown_path_lists_the_known_ones() {
        assert_eq!(
            get("/nope").await,
            (
                "HTTP/1.1 404 Not Found".to_string(),
                "not found: try /, /metrics or /status.json\n".to_string()
            )
        );
    }
}
