//! Liveness per node pair: one heartbeat loop per peer, whatever the number of clusters the two
//! nodes share, so the cost does not grow with the number of clusters. Every heartbeat carries
//! the sender's cluster digests both ways.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::messages::{Digest, Reply, Request};
use crate::node::Node;

#[derive(Debug, Default)]
struct Peer {
    last_ok: Option<Instant>,
    digests: Vec<Digest>,
    /// A heartbeat loop runs for this peer.
    looping: bool,
}

#[derive(Debug, Default)]
pub struct Peers {
    table: Mutex<HashMap<String, Peer>>,
}

impl Peers {
    fn table(&self) -> MutexGuard<'_, HashMap<String, Peer>> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A message or heartbeat from the peer arrived (or was answered).
    pub fn seen(&self, id: &str, digests: Option<Vec<Digest>>) {
        let mut table = self.table();
        let peer = table.entry(id.to_string()).or_default();
        peer.last_ok = Some(Instant::now());
        if let Some(d) = digests {
            peer.digests = d;
        }
    }

    /// Peers with a successful exchange within `suspect`.
    pub fn alive(&self, suspect: Duration) -> BTreeSet<String> {
        self.table()
            .iter()
            .filter(|(_, p)| p.last_ok.is_some_and(|t| t.elapsed() < suspect))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// What live peers report about one cluster.
    pub fn digests(&self, cluster: &str, alive: &BTreeSet<String>) -> Vec<(String, Digest)> {
        self.table()
            .iter()
            .filter(|(id, _)| alive.contains(*id))
            .filter_map(|(id, p)| {
                p.digests
                    .iter()
                    .find(|d| d.name == cluster)
                    .map(|d| (id.clone(), d.clone()))
            })
            .collect()
    }

    /// Starts heartbeat loops for peers that have none yet.
    pub fn ensure_loops(node: &Arc<Node>, wanted: &BTreeSet<String>) {
        let start: Vec<String> = {
            let mut table = node.clusters.peers.table();
            wanted
                .iter()
                .filter(|id| {
                    let peer = table.entry((*id).clone()).or_default();
                    !std::mem::replace(&mut peer.looping, true)
                })
                .cloned()
                .collect()
        };
        for id in start {
            tokio::spawn(heartbeat_loop(node.clone(), id));
        }
    }
}

/// Every peer any of this node's clusters knows about.
pub fn wanted_peers(node: &Node) -> BTreeSet<String> {
    let me = node.clusters.me();
    node.catalog()
        .clusters()
        .flat_map(|m| m.known_nodes())
        .filter(|id| id != me)
        .collect()
}

/// A last direct check before a peer is declared dead: heartbeats may only have been delayed
/// (a starved process). A killed node or a cut link fails it at once. Returns whether the peer
/// answered (its digests are recorded then).
pub async fn probe(node: &Node, peer: &str) -> bool {
    let req = Request::Heartbeat {
        clusters: super::status::digests(node),
    };
    let timeout = node.clusters.timings().heartbeat * 2;
    match node.clusters.call(peer, &req, timeout).await {
        Ok(Reply::Heartbeat { clusters }) => {
            node.clusters.peers.seen(peer, Some(clusters));
            true
        }
        _ => false,
    }
}

async fn heartbeat_loop(node: Arc<Node>, peer: String) {
    let timings = node.clusters.timings().clone();
    let mut tick = tokio::time::interval(timings.heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !wanted_peers(&node).contains(&peer) {
            if let Some(p) = node.clusters.peers.table().get_mut(&peer) {
                p.looping = false;
            }
            return;
        }
        let req = Request::Heartbeat {
            clusters: super::status::digests(&node),
        };
        // A check may take up to the suspect time: a slow peer is not yet a dead one.
        if let Ok(Reply::Heartbeat { clusters }) =
            node.clusters.call(&peer, &req, timings.suspect).await
        {
            node.clusters.peers.seen(&peer, Some(clusters));
        }
    }
}
