//! The master lease and node registrations.

use serde::{Deserialize, Serialize};

use crate::ids::NodeId;

/// The `master_lease` state value. Only the election driver writes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub node: NodeId,
    /// Fencing token: grows with every change of master.
    pub epoch: u64,
    /// Renewal counter: grows with every heartbeat of the master.
    pub beat: u64,
}

/// The `node:<id>` value: a node whose shardbuddy runs (Buddy's tests count
/// these keys to see that a node joined), rewritten with every heartbeat:
/// which process runs there, and a beat that changes while it is alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// Wall clock of the registering node, for people to read.
    pub seen_at: i64,
    #[serde(default)]
    pub version: String,
    /// The shardbuddy process (`<pid>-<start ms>`); requests name it too.
    #[serde(default)]
    pub instance: String,
    /// Grows while that process is alive; only its changes matter.
    #[serde(default)]
    pub beat: u64,
}
