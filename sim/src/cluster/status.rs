//! `cluster_*` counters of SHOW STATUS, in searchd's order, and the digests heartbeats carry.

use super::messages::Digest;
use super::{NodeState, Status};
use crate::node::Node;
use crate::store::cluster::{ClusterMeta, Member};

/// What this node reports about each of its clusters to its peers.
pub fn digests(node: &Node) -> Vec<Digest> {
    let catalog = node.catalog();
    let locals = node.clusters.locals();
    catalog
        .clusters()
        .filter_map(|meta| {
            let local = locals.get(&meta.name)?;
            // A cluster left unstarted is not in the group at all.
            if local.status == Status::RecoveryRequired {
                return None;
            }
            Some(Digest {
                name: meta.name.clone(),
                epoch: meta.view.epoch,
                leader: meta.view.leader.clone(),
                primary: local.status == Status::Primary && local.state != NodeState::Joining,
                seq: meta.seq,
                repl: local.repl.clone(),
            })
        })
        .collect()
}

/// `host:api,host:port:replication,…` as searchd prints `nodes_view` and `incoming_addresses`.
pub fn view_text<'a>(members: impl IntoIterator<Item = &'a Member>) -> String {
    members
        .into_iter()
        .map(|m| format!("{},{}:replication", m.id, m.repl))
        .collect::<Vec<_>>()
        .join(",")
}

/// Galera's `(local_state, comment)` for a node state.
fn local_state(status: Status, state: NodeState) -> (&'static str, &'static str) {
    match (status, state) {
        (Status::Primary, NodeState::Synced) => ("4", "Synced"),
        (Status::Primary, NodeState::Donor) => ("2", "Donor/Desynced"),
        (_, NodeState::Joining) => ("1", "Joining"),
        _ => ("0", "Initialized"),
    }
}

/// The rows of a cluster left unstarted (`recovery-required`).
fn unstarted(
    meta: &ClusterMeta,
    state: NodeState,
    last_error: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("status", Status::RecoveryRequired.text().to_string()),
        ("node_state", state.text().to_string()),
        ("nodes_set", meta.nodes_set.join(",")),
        ("nodes_view", String::new()),
        ("indexes_count", meta.tables.len().to_string()),
        ("indexes", meta.tables.join(",")),
    ];
    if let Some(e) = last_error {
        rows.push(("last_error", e.to_string()));
    }
    rows
}

/// Every `cluster_*` row, clusters in the order they came to this node, each block led by
/// `cluster_name`.
pub fn rows(node: &Node) -> Vec<(String, String)> {
    let catalog = node.catalog();
    let locals = node.clusters.locals();
    let mut rows = Vec::new();
    for meta in catalog.clusters() {
        let Some(local) = locals.get(&meta.name) else {
            continue;
        };
        rows.push(("cluster_name".to_string(), meta.name.clone()));
        if local.status == Status::RecoveryRequired {
            // An unstarted cluster shows only what the daemon itself knows (rebalance.37).
            let prefix = format!("cluster_{}_", meta.name);
            rows.extend(
                unstarted(meta, local.state, local.last_error.as_deref())
                    .into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v)),
            );
            continue;
        }
        let me = Member {
            id: node.clusters.me().to_string(),
            repl: local.repl.clone(),
        };
        let counters = Counters {
            meta,
            status: local.status,
            state: local.state,
            me: &me,
            replicated: local.replicated,
            received: local.received,
            node_uuid: &node.clusters.node_uuid,
        };
        rows.extend(
            counters
                .values()
                .into_iter()
                .map(|(k, v)| (format!("cluster_{}_{k}", meta.name), v)),
        );
    }
    rows
}

struct Counters<'a> {
    meta: &'a ClusterMeta,
    status: Status,
    state: NodeState,
    me: &'a Member,
    replicated: u64,
    received: u64,
    node_uuid: &'a str,
}

impl Counters<'_> {
    /// The members of the component this node is in right now.
    fn component(&self) -> Vec<&Member> {
        match self.status {
            Status::Primary => self.meta.view.members.iter().collect(),
            Status::NonPrimary => vec![self.me],
            Status::Disconnected | Status::RecoveryRequired => Vec::new(),
        }
    }

    fn values(&self) -> Vec<(&'static str, String)> {
        let meta = self.meta;
        let component = self.component();
        let size = component.len();
        let seq = meta.seq.to_string();
        let local_index = component
            .iter()
            .position(|m| m.id == self.me.id)
            .unwrap_or(0)
            .to_string();
        let flow = ((100.0 * (size.max(1) as f64).sqrt()) as u64).to_string();
        let (local_state, local_comment) = local_state(self.status, self.state);
        let weight = if self.status == Status::Primary {
            size
        } else {
            0
        };
        let zero = || "0".to_string();
        let zero_f = || "0.000000".to_string();
        vec![
            ("state_uuid", meta.uuid.clone()),
            ("state_seqno", seq.clone()),
            ("conf_id", meta.view.epoch.to_string()),
            ("status", self.status.text().to_string()),
            ("size", size.to_string()),
            ("local_index", local_index),
            ("node_state", self.state.text().to_string()),
            ("nodes_set", meta.nodes_set.join(",")),
            ("nodes_view", view_text(&meta.view.members)),
            ("indexes_count", meta.tables.len().to_string()),
            ("indexes", meta.tables.join(",")),
            ("sst_total", "-".to_string()),
            ("sst_stage", "-".to_string()),
            ("sst_stage_total", "-".to_string()),
            ("sst_table", "-".to_string()),
            ("sst_tables", "-".to_string()),
            ("local_state_uuid", meta.uuid.clone()),
            ("protocol_version", "9".to_string()),
            ("last_applied", seq.clone()),
            ("last_committed", seq),
            ("replicated", self.replicated.to_string()),
            ("replicated_bytes", zero()),
            ("repl_keys", zero()),
            ("repl_keys_bytes", zero()),
            ("repl_data_bytes", zero()),
            ("repl_other_bytes", zero()),
            ("received", self.received.to_string()),
            ("received_bytes", zero()),
            ("local_commits", self.replicated.to_string()),
            ("local_cert_failures", zero()),
            ("local_replays", zero()),
            ("local_send_queue", zero()),
            ("local_send_queue_max", "1".to_string()),
            ("local_send_queue_min", zero()),
            ("local_send_queue_avg", zero_f()),
            ("local_recv_queue", zero()),
            ("local_recv_queue_max", "1".to_string()),
            ("local_recv_queue_min", zero()),
            ("local_recv_queue_avg", zero_f()),
            ("local_cached_downto", zero()),
            ("flow_control_paused_ns", zero()),
            ("flow_control_paused", zero_f()),
            ("flow_control_sent", zero()),
            ("flow_control_recv", zero()),
            ("flow_control_interval", format!("[ {flow}, {flow} ]")),
            ("flow_control_interval_low", flow.clone()),
            ("flow_control_interval_high", flow),
            ("flow_control_status", "OFF".to_string()),
            ("cert_deps_distance", zero_f()),
            ("apply_oooe", zero_f()),
            ("apply_oool", zero_f()),
            ("apply_window", zero_f()),
            ("commit_oooe", zero_f()),
            ("commit_oool", zero_f()),
            ("commit_window", zero_f()),
            ("local_state", local_state.to_string()),
            ("local_state_comment", local_comment.to_string()),
            ("cert_index_size", zero()),
            ("cert_bucket_count", "2".to_string()),
            ("gcache_pool_size", zero()),
            ("causal_reads", zero()),
            ("cert_interval", zero_f()),
            ("open_transactions", zero()),
            ("open_connections", zero()),
            ("ist_receive_status", String::new()),
            ("ist_receive_seqno_start", zero()),
            ("ist_receive_seqno_current", zero()),
            ("ist_receive_seqno_end", zero()),
            ("incoming_addresses", view_text(component)),
            ("cluster_weight", weight.to_string()),
            ("desync_count", zero()),
            ("evs_delayed", String::new()),
            ("evs_evict_list", String::new()),
            ("evs_repl_latency", "0/0/0/0/0".to_string()),
            ("evs_state", "OPERATIONAL".to_string()),
            ("gcomm_uuid", self.node_uuid.to_string()),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::cluster::View;

    fn member(id: &str, repl: &str) -> Member {
        Member {
            id: id.into(),
            repl: repl.into(),
        }
    }

    #[test]
    fn counters_follow_the_component() {
        let me = member("127.0.0.1:1", "127.0.0.1:11");
        let meta = ClusterMeta {
            name: "c".into(),
            path: String::new(),
            uuid: "u".into(),
            tables: vec!["t".into(), "other_local".into()],
            nodes_set: vec![
                "127.0.0.1:1".into(),
                "127.0.0.1:2".into(),
                "127.0.0.1:3".into(),
            ],
            seq: 7,
            view: View {
                epoch: 3,
                leader: me.id.clone(),
                members: vec![me.clone(), member("127.0.0.1:2", "127.0.0.1:21")],
            },
        };
        let value = |status, state, key: &str| {
            let c = Counters {
                meta: &meta,
                status,
                state,
                me: &me,
                replicated: 0,
                received: 0,
                node_uuid: "g",
            };
            c.values()
                .into_iter()
                .find(|(k, _)| *k == key)
                .map(|(_, v)| v)
                .unwrap()
        };
        let p = (Status::Primary, NodeState::Synced);
        assert_eq!(value(p.0, p.1, "size"), "2");
        assert_eq!(value(p.0, p.1, "flow_control_interval"), "[ 141, 141 ]");
        assert_eq!(
            value(p.0, p.1, "nodes_view"),
            "127.0.0.1:1,127.0.0.1:11:replication,127.0.0.1:2,127.0.0.1:21:replication"
        );
        assert_eq!(value(p.0, p.1, "indexes"), "t,other_local");
        assert_eq!(value(p.0, p.1, "cluster_weight"), "2");
        // A non-primary survivor keeps the stale view but counts only itself.
        let np = (Status::NonPrimary, NodeState::Synced);
        assert_eq!(value(np.0, np.1, "size"), "1");
        assert_eq!(value(np.0, np.1, "cluster_weight"), "0");
        assert_eq!(value(np.0, np.1, "local_state_comment"), "Initialized");
        assert_eq!(
            value(np.0, np.1, "nodes_view"),
            value(p.0, p.1, "nodes_view")
        );
        assert_eq!(
            value(np.0, np.1, "incoming_addresses"),
            "127.0.0.1:1,127.0.0.1:11:replication"
        );
        assert_eq!(value(Status::Disconnected, NodeState::Closed, "size"), "0");
    }
}
