//! One HTTP/1.1 keep-alive connection pool shared by every outgoing call, and
//! the mapping of transport failures onto [`ClientError`].

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use super::ClientError;

/// How long an idle pooled connection is kept before it is closed.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A complete reply.
#[derive(Debug)]
pub(crate) struct RawReply {
    pub status: StatusCode,
    pub body: Bytes,
}

/// A cheap-to-clone handle on the shared pool.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Transport {
    pub(crate) fn new(connect_timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_timer(TokioTimer::new())
            // Header names as curl writes them (`Content-Type`, `User-Agent`).
            .http1_title_case_headers(true)
            .build(connector);
        Self { client }
    }

    /// Sends `request` and reads the whole reply, all within `timeout`.
    pub(crate) async fn send(
        &self,
        request: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<RawReply, ClientError> {
        let url = request.uri().to_string();
        let exchange = async {
            let response = self.client.request(request).await.map_err(|err| {
                let reason = error_chain(&err);
                if err.is_connect() {
                    ClientError::Connect {
                        url: url.clone(),
                        reason,
                    }
                } else {
                    ClientError::Disconnected {
                        url: url.clone(),
                        reason,
                    }
                }
            })?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|err| ClientError::Disconnected {
                    url: url.clone(),
                    reason: error_chain(&err),
                })?
                .to_bytes();
            Ok(RawReply { status, body })
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
}

/// The error with all its causes, `outer: inner: …`, since hyper's top-level
/// texts ("client error (Connect)") say little on their own.
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
