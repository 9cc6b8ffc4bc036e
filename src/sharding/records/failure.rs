//! The `row_error:<id>` state value.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

/// Why a queue row's last attempt failed, for the master (the queue table has
/// no column for it) and for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowFailure {
    pub node: NodeId,
    pub query: String,
    pub error: String,
    pub tries: u32,
    /// Wall clock of the executing node, for people to read.
    pub at_ms: i64,
}
