//! Replication messages over pooled HTTP/1.1 keep-alive connections (one pool per node, so a
//! message costs a request on an open connection, not a TCP handshake).

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request as HttpRequest;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::messages::{Reply, Request, FROM_HEADER, PATH};
use crate::exec::agent::AGENT_HEADER;

#[derive(Clone)]
pub struct Transport {
    client: Client<HttpConnector, Full<Bytes>>,
    me: String,
    /// With auth configured, node-to-node requests present the shared agent secret.
    secret: Option<String>,
}

impl Transport {
    pub fn new(me: &str, secret: Option<String>) -> Transport {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Transport {
            client,
            me: me.to_string(),
            secret,
        }
    }

    /// Sends a message to `to` (`host:port` of its API listener) and decodes the reply.
    pub async fn call(&self, to: &str, req: &Request, timeout: Duration) -> Result<Reply, String> {
        let body = serde_json::to_vec(req).map_err(|e| format!("encode: {e}"))?;
        let request = HttpRequest::post(format!("http://{to}{PATH}"))
            .header("Content-Type", "application/json")
            .header(FROM_HEADER, &self.me)
            .header(AGENT_HEADER, self.secret.as_deref().unwrap_or("1"))
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("request: {e}"))?;
        let exchange = async {
            let resp = self
                .client
                .request(request)
                .await
                .map_err(|e| format!("{to}: {e}"))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| format!("{to}: {e}"))?
                .to_bytes();
            if !status.is_success() {
                return Err(format!(
                    "{to}: HTTP {status}: {}",
                    String::from_utf8_lossy(&bytes)
                ));
            }
            serde_json::from_slice::<Reply>(&bytes).map_err(|e| format!("{to}: bad reply: {e}"))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| format!("{to}: timed out"))?
    }
}
