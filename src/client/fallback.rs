//! The fallback Buddy: another helper (typically PHP Buddy started on its
//! own) that receives, verbatim, every request shardbuddy does not handle.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{self, HeaderMap, HeaderName};

use super::transport::{Outgoing, RawReply, Replay, Transport};
use super::ClientError;

/// Headers that describe one hop rather than the request, and are therefore
/// not forwarded.
const HOP_HEADERS: [HeaderName; 7] = [
    header::HOST,
    header::CONTENT_LENGTH,
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::TE,
    header::UPGRADE,
    header::EXPECT,
];

#[derive(Clone, Debug)]
pub struct FallbackBuddy {
    transport: Transport,
    url: Arc<str>,
    timeout: Duration,
}

/// The fallback's answer, relayed to searchd as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayedReply {
    pub status: u16,
    pub body: Bytes,
}

impl FallbackBuddy {
    /// `url` is the fallback's full URL (`http://host:port[/path]`).
    pub fn new(url: &str, connect_timeout: Duration, timeout: Duration) -> Self {
        Self {
            transport: Transport::new(connect_timeout),
            url: url.into(),
            timeout,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Posts `body` with the end-to-end `headers` searchd sent (`Request-ID`,
    /// `Content-Type`, …) and returns the fallback's reply.
    pub async fn forward(
        &self,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<RelayedReply, ClientError> {
        let uri = self.url.parse().map_err(|err| ClientError::Connect {
            url: self.url.to_string(),
            reason: format!("invalid URL: {err}"),
        })?;
        let mut forwarded = HeaderMap::new();
        for (name, value) in headers {
            if !HOP_HEADERS.contains(name) {
                forwarded.append(name, value.clone());
            }
        }
        let request = Outgoing {
            uri,
            headers: forwarded,
            body,
        };
        // The fallback may act on the request: it is never sent twice.
        let RawReply { status, body } = self
            .transport
            .send(&request, Replay::Never, self.timeout)
            .await?;
        Ok(RelayedReply {
            status: status.as_u16(),
            body,
        })
    }
}
