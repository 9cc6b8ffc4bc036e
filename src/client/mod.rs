//! The daemon client: the only way shardbuddy touches a node. It sends SQL to
//! `POST <base>/sql?mode=raw` (spec §4) and decodes the reply into typed
//! result sets or a typed error.
//!
//! Unlike PHP Buddy, every call has a time limit, and calls to other nodes
//! carry the same bearer token as calls to the local daemon.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONNECTION, CONTENT_TYPE, USER_AGENT};
use hyper::Uri;

mod error;
mod fallback;
mod transport;
mod wire;

pub use error::ClientError;
pub use fallback::{FallbackBuddy, RelayedReply};

use crate::ids::NodeId;
use crate::protocol::ResultSet;
use transport::{Outgoing, Replay, Transport};

/// The header through which a `system.buddy` request acts for another user.
pub const USER_HEADER: &str = "X-Manticore-User";
/// The trusted internal user background work runs as.
pub const SYSTEM_USER: &str = "system.buddy";

/// The `User-Agent` every call carries. searchd never routes the failure of a
/// request with this agent back to its helper, which prevents loops.
pub fn user_agent() -> String {
    format!("Manticore Buddy/{}", crate::VERSION)
}

#[derive(Clone)]
pub struct ClientConfig {
    /// The daemon's HTTP URL, e.g. `http://127.0.0.1:9308`.
    pub base_url: String,
    /// `BUDDY_TOKEN`, sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Limit for a whole call: connect, send, and read the reply.
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

/// Cheap to clone: clones share one keep-alive pool.
#[derive(Clone)]
pub struct DaemonClient {
    transport: Transport,
    base_url: Arc<str>,
    token: Option<Arc<str>>,
    user: Option<Arc<str>>,
    timeout: Duration,
    /// Whether requests carry the Buddy `User-Agent` (see [`user_agent`]).
    buddy_agent: bool,
}

impl std::fmt::Debug for DaemonClient {
    // Hand-written so the token never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonClient")
            .field("base_url", &self.base_url)
            .field("user", &self.user)
            .field("timeout", &self.timeout)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl DaemonClient {
    pub fn new(config: ClientConfig) -> Self {
        Self {
            transport: Transport::new(config.connect_timeout),
            base_url: config.base_url.trim_end_matches('/').into(),
            token: config.token.filter(|t| !t.is_empty()).map(Into::into),
            user: None,
            timeout: config.timeout,
            buddy_agent: true,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// A client that acts for `user` (`X-Manticore-User`); `""` sends no
    /// such header.
    pub fn as_user(&self, user: &str) -> Self {
        Self {
            user: (!user.is_empty()).then(|| user.into()),
            ..self.clone()
        }
    }

    /// A client for background work, acting as `system.buddy`.
    pub fn as_system(&self) -> Self {
        self.as_user(SYSTEM_USER)
    }

    /// A client that does not present itself as Buddy, so the daemon hands
    /// its failed statements to the helper as it does for any user: for
    /// tools that act like a user, such as `shardbuddy demo`. Never for
    /// shardbuddy's own work, which must not loop back into itself.
    pub fn as_plain_client(&self) -> Self {
        Self {
            buddy_agent: false,
            ..self.clone()
        }
    }

    /// The same client (settings, token, user, pool) aimed at another node.
    pub fn for_node(&self, node: &NodeId) -> Self {
        Self {
            base_url: format!("http://{node}").into(),
            ..self.clone()
        }
    }

    /// Runs `sql` and returns every result set of the reply.
    ///
    /// A read-only statement whose reused connection turned out to be closed
    /// is sent once more on a fresh one; any other statement whose outcome is
    /// unknown fails with [`ClientError::Disconnected`] or
    /// [`ClientError::Timeout`], and the caller reads what it meant to change.
    pub async fn query(&self, sql: &str) -> Result<Vec<ResultSet>, ClientError> {
        let url = format!("{}/sql?mode=raw", self.base_url);
        let request = self
            .build_request(&url, sql)
            .map_err(|reason| ClientError::Connect {
                url: url.clone(),
                reason: format!("invalid request: {reason}"),
            })?;
        tracing::trace!(url = %url, user = self.user.as_deref().unwrap_or(""), sql, "daemon query");
        let replay = if is_read_only(sql) {
            Replay::Safe
        } else {
            Replay::Never
        };
        let reply = self.transport.send(&request, replay, self.timeout).await?;
        wire::decode_reply(&url, reply.status.as_u16(), &reply.body)
    }

    /// Runs `sql` and returns the first result set; a set that carries an
    /// error becomes [`ClientError::Daemon`].
    pub async fn query_one(&self, sql: &str) -> Result<ResultSet, ClientError> {
        let first =
            self.query(sql)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| ClientError::Decode {
                    url: format!("{}/sql?mode=raw", self.base_url),
                    reason: "the reply holds no result set".into(),
                })?;
        if first.error.is_empty() {
            Ok(first)
        } else {
            Err(ClientError::Daemon {
                status: 200,
                message: first.error,
            })
        }
    }

    fn build_request(&self, url: &str, sql: &str) -> Result<Outgoing, String> {
        let uri: Uri = url.parse().map_err(|e| format!("{e}"))?;
        let header = |value: &str| HeaderValue::from_str(value).map_err(|e| e.to_string());
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        if self.buddy_agent {
            headers.insert(USER_AGENT, header(&user_agent())?);
        }
        if let Some(user) = &self.user {
            headers.insert(USER_HEADER, header(user)?);
        }
        if let Some(token) = &self.token {
            headers.insert(AUTHORIZATION, header(&format!("Bearer {token}"))?);
        }
        headers.insert(CONNECTION, HeaderValue::from_static("keep-alive"));
        Ok(Outgoing {
            uri,
            headers,
            body: Bytes::from(wire::form_body(sql)),
        })
    }
}

/// Whether `sql` only reads (its first word is `SELECT`, `SHOW`, `DESC` or
/// `DESCRIBE`): such a statement may be sent twice.
fn is_read_only(sql: &str) -> bool {
    let first = sql
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    ["SELECT", "SHOW", "DESC", "DESCRIBE"]
        .iter()
        .any(|w| first.eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::is_read_only;

    #[test]
    fn only_reads_may_be_replayed() {
        for sql in [
            "SELECT 1",
            " show tables",
            "DESC t",
            "describe t",
            "Select\n*",
        ] {
            assert!(is_read_only(sql), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "REPLACE INTO t",
            "SELECTED",
            "",
            "; SELECT 1",
            "CREATE TABLE t",
        ] {
            assert!(!is_read_only(sql), "{sql}");
        }
    }
}
