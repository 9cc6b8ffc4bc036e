//! Node-to-node replication messages, sent as JSON to `POST /_sim/cluster` on the API port.

use serde::{Deserialize, Serialize};

use crate::store::catalog::Table;
use crate::store::cluster::{ClusterMeta, Member, View};
use crate::store::mutation::Mutation;

/// The path replication messages are posted to (binary-API listener only).
pub const PATH: &str = "/_sim/cluster";
/// Header naming the sending node.
pub const FROM_HEADER: &str = "X-Manticore-Sim-Node";

/// What a node reports about one of its clusters in every heartbeat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Digest {
    pub name: String,
    pub epoch: u64,
    pub leader: String,
    /// The node is in a primary component.
    pub primary: bool,
    pub seq: u64,
    /// The sender's replication address for this cluster.
    pub repl: String,
}

/// A precondition the leader verifies before sequencing a write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Check {
    /// INSERT (not REPLACE): none of these documents may exist yet.
    AbsentIds { table: String, ids: Vec<i64> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Liveness check between two nodes, carrying the sender's cluster digests.
    Heartbeat { clusters: Vec<Digest> },
    /// A write for the leader to sequence (from any member). `write` identifies it, so a
    /// submission retried after a timeout is not applied twice.
    Submit {
        cluster: String,
        write: String,
        batch: Vec<Mutation>,
        checks: Vec<Check>,
    },
    /// A sequenced write for a member to apply (members remember `write` too, so a new leader
    /// recognises a retried submission).
    Apply {
        cluster: String,
        write: String,
        epoch: u64,
        seq: u64,
        batch: Vec<Mutation>,
    },
    /// A new primary view, announced by its leader.
    View {
        cluster: String,
        view: View,
        seq: u64,
    },
    /// A node asks the leader to let it (re)join.
    Join { cluster: String, member: Member },
    /// Full state transfer from the leader to a joining or lagging member.
    Install {
        meta: ClusterMeta,
        tables: Vec<Table>,
    },
    /// Asks a member for its full state (a new leader catching up).
    Snapshot { cluster: String },
    /// A node forming a new primary component asks a member to follow it.
    TakeOver {
        cluster: String,
        epoch: u64,
        leader: String,
    },
    /// Test tooling: the peers whose traffic this node drops (a network partition).
    Links { blocked: Vec<String> },
    /// Test tooling: adds a statement fault (see [`crate::faults`]).
    AddStatementFault { rule: crate::faults::StatementFault },
    /// Test tooling: removes every statement fault.
    ClearStatementFaults,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Heartbeat {
        clusters: Vec<Digest>,
    },
    Committed {
        seq: u64,
    },
    /// The receiver does not lead this cluster; this node does.
    Redirect {
        leader: String,
    },
    /// Declined, with searchd's text where a client will see it.
    Refused {
        reason: String,
    },
    /// The member is not in step with the leader and needs a full state transfer.
    Behind,
    /// A write's table is not in this cluster any more (an `ALTER CLUSTER … DROP` was
    /// sequenced before it): the writer plans it again.
    Moved,
    Snapshot {
        meta: ClusterMeta,
        tables: Vec<Table>,
    },
    /// The member follows the new leader; its last applied write.
    Following {
        seq: u64,
    },
}
