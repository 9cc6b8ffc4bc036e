//! The seam between the sharding logic and a Manticore node: [`NodeApi`]
//! (run SQL, reach another node, act as a user), implemented by the daemon
//! client and by fakes in unit tests.

use std::sync::Arc;

use async_trait::async_trait;

use crate::client::{ClientError, DaemonClient};
use crate::ids::NodeId;
use crate::protocol::ResultSet;

/// What shardbuddy asks of a node.
#[async_trait]
pub trait NodeApi: Send + Sync {
    /// Runs `sql` and returns every result set of the reply.
    async fn query(&self, sql: &str) -> Result<Vec<ResultSet>, ClientError>;

    /// The same settings, aimed at another node.
    fn for_node(&self, node: &NodeId) -> Arc<dyn NodeApi>;

    /// The same settings, acting for `user` (`""`: for nobody in particular).
    fn as_user(&self, user: &str) -> Arc<dyn NodeApi>;

    /// Runs `sql` and returns the first result set; a set that carries an
    /// error becomes [`ClientError::Daemon`].
    async fn query_one(&self, sql: &str) -> Result<ResultSet, ClientError> {
        let first =
            self.query(sql)
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| ClientError::Decode {
                    url: "/sql?mode=raw".into(),
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
}

#[async_trait]
impl NodeApi for DaemonClient {
    async fn query(&self, sql: &str) -> Result<Vec<ResultSet>, ClientError> {
        DaemonClient::query(self, sql).await
    }

    fn for_node(&self, node: &NodeId) -> Arc<dyn NodeApi> {
        Arc::new(DaemonClient::for_node(self, node))
    }

    fn as_user(&self, user: &str) -> Arc<dyn NodeApi> {
        Arc::new(DaemonClient::as_user(self, user))
    }

    async fn query_one(&self, sql: &str) -> Result<ResultSet, ClientError> {
        DaemonClient::query_one(self, sql).await
    }
}
