//! Stand-ins for unit tests of the drivers and the store.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::client::ClientError;
use crate::ids::NodeId;
use crate::protocol::ResultSet;
use crate::sharding::node::NodeApi;

type Script = dyn Fn(&str, usize) -> Result<Vec<ResultSet>, ClientError> + Send + Sync;

/// A node that answers every statement from a script (the statement and how
/// many statements came before it) and records what it was sent.
#[derive(Clone)]
pub struct FakeNode {
    script: Arc<Script>,
    pub sent: Arc<Mutex<Vec<String>>>,
}

impl FakeNode {
    pub fn new(
        script: impl Fn(&str, usize) -> Result<Vec<ResultSet>, ClientError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            script: Arc::new(script),
            sent: Arc::default(),
        }
    }

    pub fn sent(&self) -> Vec<String> {
        self.sent.lock().expect("lock").clone()
    }
}

/// The reply of a write: one empty result set.
pub fn ok() -> Result<Vec<ResultSet>, ClientError> {
    Ok(vec![ResultSet::ok()])
}

/// A reply lost after the statement was sent.
pub fn lost() -> Result<Vec<ResultSet>, ClientError> {
    Err(ClientError::Disconnected {
        url: "http://fake/sql?mode=raw".into(),
        reason: "connection reset".into(),
    })
}

#[async_trait]
impl NodeApi for FakeNode {
    async fn query(&self, sql: &str) -> Result<Vec<ResultSet>, ClientError> {
        let n = {
            let mut sent = self.sent.lock().expect("lock");
            sent.push(sql.to_string());
            sent.len() - 1
        };
        (self.script)(sql, n)
    }

    fn for_node(&self, _node: &NodeId) -> Arc<dyn NodeApi> {
        Arc::new(self.clone())
    }

    fn as_user(&self, _user: &str) -> Arc<dyn NodeApi> {
        Arc::new(self.clone())
    }
}

/// `(id, node, statement, waits for)` of each row: what a queue test asserts.
pub fn shapes(rows: &[crate::sharding::records::QueueRow]) -> Vec<(u64, &str, String, u64)> {
    rows.iter()
        .map(|r| {
            (
                r.id,
                r.node.as_str(),
                r.action.to_query_text(),
                r.wait_for_id,
            )
        })
        .collect()
}
