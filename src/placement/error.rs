//! Why a placement or a model was rejected.

use crate::ids::{NodeId, TableName};

/// A placement request or a placement value that cannot be honoured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacementError {
    /// Zero shards or a zero replication factor (Buddy's wording).
    #[error("Invalid shards or rf options are set")]
    InvalidShape,
    /// More replicas per shard than nodes to hold them (Buddy's wording).
    #[error("The node count ({nodes}) is lower than replication factor ({rf})")]
    NotEnoughNodes { nodes: usize, rf: u32 },
    /// Shard numbers must be exactly `0..count`: the daemon routes rows by
    /// the numeric suffix, so a gap would send rows to the wrong shard.
    #[error("shard numbers must be 0..{count} without gaps, shard {missing} is missing")]
    MissingShard { count: u32, missing: u32 },
    #[error("shard {shard} has no replicas")]
    NoReplicas { shard: u32 },
    #[error("shard {shard} lists node '{node}' twice")]
    DuplicateReplica { shard: u32, node: NodeId },
}

/// A [`crate::placement::Model`] that is inconsistent in itself.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModelError {
    #[error("node '{0}' is listed twice")]
    DuplicateNode(NodeId),
    #[error("node '{0}' has weight 0; a node that must hold nothing is 'draining'")]
    ZeroWeight(NodeId),
    #[error("table '{0}' is listed twice")]
    DuplicateTable(TableName),
    #[error("table '{table}': {source}")]
    Placement {
        table: TableName,
        #[source]
        source: PlacementError,
    },
    #[error("table '{table}' has {declared} shards but its placement has {placed}")]
    ShardCountMismatch {
        table: TableName,
        declared: u32,
        placed: u32,
    },
    #[error("table '{table}': shard {shard} is on node '{node}', which is not in the node list")]
    UnknownNode {
        table: TableName,
        shard: u32,
        node: NodeId,
    },
    #[error("table '{table}': a size is given for shard {shard}, which does not exist")]
    UnknownShardSize { table: TableName, shard: u32 },
}
