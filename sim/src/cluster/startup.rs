//! What a node does with the clusters it saved when it starts (facts §3, §7 item 2b).
//!
//! searchd first checks the other members' versions over their API port ("remote version
//! check"). When none of them answers, the cluster is not started at all: it shows
//! `recovery-required` with `last_error` `remote version check failed: cluster '<c>', failed to
//! fetch donor user from any node`, refuses writes as `closed`, and stays so until the daemon
//! restarts. When members answer but none of them runs the cluster (they are stuck in that very
//! state), the node forms the primary component alone (§7 item 2b: "n1 came back primary on
//! its own (size 1)"). Otherwise the supervisor takes over: the node rejoins the primary
//! component it finds, or forms one with a quorum of the last one. `--new-cluster` skips the
//! check and bootstraps every saved cluster here.

use std::collections::HashMap;

use super::messages::{Reply, Request};
use super::{status, views};
use crate::node::Node;

/// Runs once, after the listeners opened (so nodes starting together see each other).
pub async fn start_clusters(node: &Node, new_cluster: bool) {
    let me = node.clusters.me().to_string();
    let metas: Vec<_> = node.catalog().clusters().cloned().collect();
    if metas.is_empty() {
        return;
    }
    // One check per peer, whatever the number of clusters it shares with this node.
    let mut answers: HashMap<String, Option<Vec<String>>> = HashMap::new();
    let mut started = 0;
    for meta in &metas {
        let peers: Vec<String> = meta
            .known_nodes()
            .into_iter()
            .filter(|id| *id != me)
            .collect();
        if new_cluster {
            node.log.line(&format!(
                "cluster '{}': --new-cluster, bootstrapping from the saved state",
                meta.name
            ));
            let _ = views::bootstrap(node, &meta.name).await;
            started += 1;
            continue;
        }
        if peers.is_empty() {
            // A cluster of one forms its primary component alone (the supervisor does it).
            started += 1;
            continue;
        }
        let mut reachable = Vec::new();
        for peer in &peers {
            if !answers.contains_key(peer) {
                let answer = check(node, peer).await;
                if answer.is_none() {
                    node.log.line(&format!(
                        "WARNING: '{peer}': receiving failure (errno=111, msg=Connection refused)"
                    ));
                }
                answers.insert(peer.clone(), answer);
            }
            if let Some(Some(clusters)) = answers.get(peer) {
                reachable.push(clusters.contains(&meta.name));
            }
        }
        if reachable.is_empty() {
            let error = format!(
                "remote version check failed: cluster '{}', failed to fetch donor user from any node",
                meta.name
            );
            node.log.line(&format!("WARNING: {error}"));
            node.clusters.set_recovery_required(&meta.name, error);
            continue;
        }
        started += 1;
        if !reachable.iter().any(|runs| *runs) {
            node.log.line(&format!(
                "cluster '{}': no member runs it, forming the primary component alone",
                meta.name
            ));
            let _ = views::bootstrap(node, &meta.name).await;
        }
    }
    if started == 0 {
        node.log.line("WARNING: no clusters to start");
    }
}

/// The remote version check of one peer: the clusters it runs, or `None` when it does not
/// answer.
async fn check(node: &Node, peer: &str) -> Option<Vec<String>> {
    let req = Request::Heartbeat {
        clusters: status::digests(node),
    };
    let timeout = node.config.sim.agent_connect_timeout;
    match node.clusters.call(peer, &req, timeout).await {
        Ok(Reply::Heartbeat { clusters }) => {
            let names = clusters.iter().map(|d| d.name.clone()).collect();
            node.clusters.peers.seen(peer, Some(clusters));
            Some(names)
        }
        _ => None,
    }
}
