//! The `drain:<node>` state value: an operator drained the node (`ALTER
//! CLUSTER c DRAIN NODE '<id>'`). While it exists the node gets no new shard
//! copies, and rebalancing moves its copies to the other nodes; `UNDRAIN`
//! removes it.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrainRecord {
    /// The node that received the statement.
    pub by: NodeId,
    /// Its wall clock, for people to read.
    pub at_ms: i64,
}
