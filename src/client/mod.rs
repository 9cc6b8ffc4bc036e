//! The daemon client: the only way shardbuddy touches a node. It sends SQL to
//! `POST <base>/sql?mode=raw` (spec §4) and decodes the reply into typed
//! result sets or a typed error.
//!
//! (Interface placeholder; the implementation lands with the protocol layer.)

use std::time::Duration;

use crate::ids::NodeId;
use crate::protocol::ResultSet;

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub token: Option<String>,
    pub timeout: Duration,
    pub connect_timeout: Duration,
}

#[derive(Clone)]
pub struct DaemonClient {
    config: ClientConfig,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    #[error("cannot reach {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("request to {url} timed out after {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("{message}")]
    Daemon { status: u16, message: String },
    #[error("unexpected reply from {url}: {reason}")]
    Decode { url: String, reason: String },
}

impl ClientError {
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ClientError::Connect { .. } | ClientError::Timeout { .. }
        )
    }

    pub fn daemon_message(&self) -> Option<&str> {
        match self {
            ClientError::Daemon { message, .. } => Some(message),
            _ => None,
        }
    }
}

impl DaemonClient {
    pub fn new(config: ClientConfig) -> Self {
        Self { config }
    }

    pub fn base_url(&self) -> &str {
        &self.config.base_url
    }

    pub fn as_user(&self, _user: &str) -> Self {
        self.clone()
    }

    pub fn as_system(&self) -> Self {
        self.clone()
    }

    pub fn for_node(&self, node: &NodeId) -> Self {
        let mut config = self.config.clone();
        config.base_url = format!("http://{node}");
        Self { config }
    }

    pub async fn query(&self, _sql: &str) -> Result<Vec<ResultSet>, ClientError> {
        unimplemented!("daemon client")
    }

    pub async fn query_one(&self, sql: &str) -> Result<ResultSet, ClientError> {
        let mut sets = self.query(sql).await?;
        Ok(sets.swap_remove(0))
    }
}
