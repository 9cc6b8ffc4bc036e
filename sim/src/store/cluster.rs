//! Replication clusters as a node persists them: name, path, members and the last primary view.
//!
//! The view stored here changes only when a primary component forms, so after a loss of quorum
//! it still lists the members of the last primary component (searchd's `nodes_view` does the
//! same) and it is the base the next quorum decision is measured against.

use serde::{Deserialize, Serialize};

/// A member of a view: its node id and the replication address shown in `nodes_view`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Member {
    /// `host:api_port`, the node id.
    pub id: String,
    /// `host:port` of the member's replication listener for this cluster.
    pub repl: String,
}

/// A primary component: who is in it and who sequences its writes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct View {
    /// Grows with every view change (searchd's `conf_id`).
    pub epoch: u64,
    pub leader: String,
    /// Sorted by node id.
    pub members: Vec<Member>,
}

impl View {
    pub fn member_ids(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(|m| m.id.as_str())
    }

    pub fn contains(&self, id: &str) -> bool {
        self.members.iter().any(|m| m.id == id)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMeta {
    pub name: String,
    /// The `'<path>' as path` value (`""`: the data directory itself).
    pub path: String,
    /// Shared by every member (`cluster_<c>_state_uuid`).
    pub uuid: String,
    /// Tables in the order `cluster_<c>_indexes` lists them.
    pub tables: Vec<String>,
    /// Persisted member list (`cluster_<c>_nodes_set`); keeps members that died.
    pub nodes_set: Vec<String>,
    /// Sequence number of the last replicated write applied here.
    pub seq: u64,
    pub view: View,
}

impl ClusterMeta {
    /// Every node this cluster knows about, without duplicates.
    pub fn known_nodes(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .nodes_set
            .iter()
            .cloned()
            .chain(self.view.member_ids().map(str::to_string))
            .collect();
        all.sort();
        all.dedup();
        all
    }
}
