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
    /// `nodes_set` of a member after the view grew: members keep their place and newcomers go
    /// last (a node that created the cluster alone starts the list from its view).
    pub fn grown_nodes_set(&self, view: &View) -> Vec<String> {
        let mut set = self.nodes_set.clone();
        if set.is_empty() {
            set.extend(self.view.member_ids().map(str::to_string));
        }
        for id in view.member_ids() {
            if !set.iter().any(|s| s == id) {
                set.push(id.to_string());
            }
        }
        set
    }

    /// `nodes_set` of a node (re)joining through a donor: the donor's view, then itself.
    pub fn joiner_nodes_set(&self, joiner: &str) -> Vec<String> {
        self.view
            .member_ids()
            .filter(|id| *id != joiner)
            .map(str::to_string)
            .chain(std::iter::once(joiner.to_string()))
            .collect()
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(nodes_set: &[&str], view: &[&str]) -> ClusterMeta {
        ClusterMeta {
            name: "c".into(),
            path: String::new(),
            uuid: String::new(),
            tables: vec![],
            nodes_set: nodes_set.iter().map(|s| s.to_string()).collect(),
            seq: 0,
            view: view_of(view),
        }
    }

    fn view_of(ids: &[&str]) -> View {
        View {
            epoch: 1,
            leader: ids.first().map(|s| s.to_string()).unwrap_or_default(),
            members: ids
                .iter()
                .map(|id| Member {
                    id: id.to_string(),
                    repl: String::new(),
                })
                .collect(),
        }
    }

    /// The orders golden searchd shows: the creator starts empty, members append newcomers,
    /// a node rejoining after a restart lists the donor's view and then itself.
    #[test]
    fn nodes_set_orders() {
        let creator = meta(&[], &["n1"]);
        assert!(creator.nodes_set.is_empty());
        let grown = creator.grown_nodes_set(&view_of(&["n1", "n2"]));
        assert_eq!(grown, ["n1", "n2"]);
        let member = meta(&["n1", "n2"], &["n1", "n2"]);
        assert_eq!(
            member.grown_nodes_set(&view_of(&["n1", "n2", "n3"])),
            ["n1", "n2", "n3"]
        );
        let donor = meta(&["n1", "n2", "n3"], &["n2", "n3"]);
        assert_eq!(donor.joiner_nodes_set("n1"), ["n2", "n3", "n1"]);
        let kept = meta(&["n2", "n3", "n1"], &["n1"]);
        assert_eq!(
            kept.grown_nodes_set(&view_of(&["n1", "n2", "n3"])),
            ["n2", "n3", "n1"]
        );
    }
}
