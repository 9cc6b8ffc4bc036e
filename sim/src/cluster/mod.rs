//! Replication clusters, as a group of searchd nodes with Galera shows them to a client.
//!
//! Design (a leader per cluster, not Galera's certification protocol):
//! - Every cluster has a primary view with a leader (its smallest member when the view forms).
//!   Writes are planned where they are issued, sent to the leader, numbered there, applied on
//!   the leader and then on every other member of the view before the client hears back
//!   (synchronous and totally ordered per cluster). The leader checks INSERT id conflicts at
//!   the point of sequencing, so two nodes inserting the same id concurrently cannot both win.
//! - Liveness is checked per node pair (`peers`), whatever the number of shared clusters;
//!   the supervisor (`supervisor`) turns it into view changes: the leader drops members that
//!   stopped answering, the smallest surviving member replaces a dead leader, and a node that
//!   is not in the primary component rejoins it through a full state transfer. A component
//!   keeps `primary` status only with more than half of the last primary component.
//! - All traffic is JSON over HTTP keep-alive connections to `/_sim/cluster` on the API port.
//!
//! Layout: `ops` holds what statements (in `exec::cluster`) and writes use; `leader`
//! sequences writes and transfers state, `views` changes views, `member` handles what a
//! member receives, `supervisor` acts on the pure decisions of `decide`, `peers` keeps
//! liveness, [`status`] renders counters, [`rpc`] and `transport` carry [`messages`]. This
//! file holds the per-node state.

mod decide;
mod leader;
mod member;
pub mod messages;
mod ops;
mod peers;
pub mod rpc;
mod startup;
pub mod status;
mod supervisor;
mod transport;
mod views;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{ClusterTimings, Config, Proto};
use crate::store::catalog::Catalog;
use crate::store::cluster::Member;
use messages::{Reply, Request};
use peers::Peers;
use transport::Transport;

pub use ops::{bootstrap, create, delete, join, ready, set_blocked, submit, SubmitError};
pub use supervisor::{run as supervise, start};

/// `cluster_<c>_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Primary,
    NonPrimary,
    /// After a restart, until the node is back in a primary component.
    Disconnected,
    /// At start no other member of the cluster answered searchd's remote version check: the
    /// cluster is not started (`last_error` says why) until the daemon restarts (facts §7
    /// item 2b).
    RecoveryRequired,
}

/// `cluster_<c>_node_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    Synced,
    Joining,
    Donor,
    Closed,
}

impl Status {
    pub fn text(self) -> &'static str {
        match self {
            Status::Primary => "primary",
            Status::NonPrimary => "non-primary",
            Status::Disconnected => "disconnected",
            Status::RecoveryRequired => "recovery-required",
        }
    }
}

impl NodeState {
    pub fn text(self) -> &'static str {
        match self {
            NodeState::Synced => "synced",
            NodeState::Joining => "joining",
            NodeState::Donor => "donor",
            NodeState::Closed => "closed",
        }
    }
}

/// What this node knows about one of its clusters beyond the persisted description.
#[derive(Debug, Clone)]
struct Local {
    status: Status,
    state: NodeState,
    /// This node's replication address for the cluster.
    repl: String,
    /// A rejoin or takeover runs for this cluster.
    busy: bool,
    /// A point (epoch, sequence number) the leader reported and this follower had not reached
    /// yet, and when it was seen: if it is still not reached after the suspect time, a message
    /// was lost.
    trailing: Option<(Instant, u64, u64)>,
    /// Writes sequenced here as the leader, and writes applied from a leader.
    replicated: u64,
    received: u64,
    /// The `as path` of a JOIN in progress (a transfer carries the donor's path, not ours).
    join_path: String,
    /// `cluster_<c>_last_error` (shown only when set).
    last_error: Option<String>,
    /// When this node last received the cluster by a state transfer: until its leader's next
    /// heartbeat arrives, what that leader reported before says nothing about the cluster.
    installed: Option<Instant>,
}

/// Per-node replication state (one per process, inside [`crate::node::Node`]).
pub struct Clusters {
    me: String,
    timings: ClusterTimings,
    /// Replication listener range: ip and ports, for the addresses shown in `nodes_view`.
    repl_ip: String,
    repl_ports: (u16, u16),
    locals: Mutex<HashMap<String, Local>>,
    sequencers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    peers: Peers,
    transport: Transport,
    /// Peers whose traffic is dropped (partition tooling).
    blocked: Mutex<HashSet<String>>,
    /// Numbers the writes this node submits (with the node id: a write's identity).
    next_write: AtomicU64,
    /// Writes this node sequenced lately, per cluster: (write id, sequence number).
    committed: Mutex<HashMap<String, VecDeque<(String, u64)>>>,
    /// This node's identity in the group (`cluster_<c>_gcomm_uuid`).
    pub node_uuid: String,
}

/// searchd's text for a write or change on a cluster outside a primary component.
pub fn not_ready_text(cluster: &str, state: NodeState) -> String {
    format!(
        "cluster '{cluster}' is not ready, not primary state ({})",
        state.text()
    )
}

impl Clusters {
    pub fn new(config: &Config) -> Clusters {
        let me = config.node_id();
        let repl = config
            .listeners
            .iter()
            .find(|l| l.proto == Proto::Replication);
        let (repl_ip, repl_ports) = match repl {
            Some(l) => (l.ip.to_string(), (l.port, l.port_last)),
            None => (
                me.rsplit_once(':')
                    .map(|(h, _)| h)
                    .unwrap_or("127.0.0.1")
                    .to_string(),
                (0, 0),
            ),
        };
        Clusters {
            transport: Transport::new(&me, config.sim.agent_secret.clone()),
            me,
            timings: config.sim.cluster.clone(),
            repl_ip,
            repl_ports,
            locals: Mutex::new(HashMap::new()),
            sequencers: Mutex::new(HashMap::new()),
            peers: Peers::default(),
            blocked: Mutex::new(HashSet::new()),
            next_write: AtomicU64::new(1),
            committed: Mutex::new(HashMap::new()),
            node_uuid: uuid::Uuid::new_v4().to_string(),
        }
    }

    pub fn me(&self) -> &str {
        &self.me
    }

    pub fn timings(&self) -> &ClusterTimings {
        &self.timings
    }

    fn locals(&self) -> std::sync::MutexGuard<'_, HashMap<String, Local>> {
        self.locals.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a cluster this node holds (at start, after CREATE or a transfer).
    fn register(&self, name: &str, status: Status, state: NodeState) {
        let mut locals = self.locals();
        if let Some(l) = locals.get_mut(name) {
            l.status = status;
            l.state = state;
            l.last_error = None;
            return;
        }
        let used: HashSet<String> = locals.values().map(|l| l.repl.clone()).collect();
        let repl = self.free_repl_addr(&used);
        locals.insert(
            name.to_string(),
            Local {
                status,
                state,
                repl,
                busy: false,
                trailing: None,
                replicated: 0,
                received: 0,
                join_path: String::new(),
                last_error: None,
                installed: None,
            },
        );
    }

    /// The first address of the replication range no other cluster here shows (searchd binds
    /// one port of the range per cluster); wraps around when clusters outnumber ports.
    fn free_repl_addr(&self, used: &HashSet<String>) -> String {
        let (first, last) = self.repl_ports;
        let span = u32::from(last.saturating_sub(first)) + 1;
        (0..span)
            .map(|i| format!("{}:{}", self.repl_ip, u32::from(first) + i))
            .find(|a| !used.contains(a))
            .unwrap_or_else(|| format!("{}:{}", self.repl_ip, first))
    }

    fn forget(&self, name: &str) {
        self.locals().remove(name);
        self.sequencers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.committed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    fn set_state(&self, name: &str, status: Option<Status>, state: Option<NodeState>) {
        if let Some(l) = self.locals().get_mut(name) {
            if let Some(s) = status {
                l.status = s;
            }
            if let Some(s) = state {
                l.state = s;
            }
        }
    }

    /// (status, node state) of a cluster this node holds.
    pub fn state(&self, name: &str) -> Option<(Status, NodeState)> {
        self.locals().get(name).map(|l| (l.status, l.state))
    }

    /// Whether the cluster runs here (it was not left unstarted at start).
    pub fn running(&self, name: &str) -> bool {
        self.state(name)
            .is_some_and(|(s, _)| s != Status::RecoveryRequired)
    }

    /// Leaves a cluster unstarted after a failed remote version check.
    fn set_recovery_required(&self, name: &str, error: String) {
        if let Some(l) = self.locals().get_mut(name) {
            l.status = Status::RecoveryRequired;
            l.state = NodeState::Closed;
            l.last_error = Some(error);
        }
    }

    /// This node's member entry for a cluster.
    fn member(&self, name: &str) -> Member {
        let repl = self
            .locals()
            .get(name)
            .map(|l| l.repl.clone())
            .unwrap_or_else(|| self.free_repl_addr(&HashSet::new()));
        Member {
            id: self.me.clone(),
            repl,
        }
    }

    fn sequencer(&self, name: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.sequencers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .clone()
    }

    /// Marks a cluster busy with a rejoin or takeover; `false` if it already is.
    fn try_busy(&self, name: &str) -> bool {
        match self.locals().get_mut(name) {
            Some(l) if !l.busy => {
                l.busy = true;
                true
            }
            _ => false,
        }
    }

    fn done_busy(&self, name: &str) {
        if let Some(l) = self.locals().get_mut(name) {
            l.busy = false;
        }
    }

    /// A write id unique across nodes and restarts (node id, start instance, counter).
    fn new_write_id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.me,
            self.node_uuid,
            self.next_write.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// The sequence number a write already got here, if it was sequenced lately.
    fn committed_seq(&self, cluster: &str, write: &str) -> Option<u64> {
        self.committed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(cluster)?
            .iter()
            .find(|(w, _)| w == write)
            .map(|(_, seq)| *seq)
    }

    fn remember_commit(&self, cluster: &str, write: &str, seq: u64) {
        /// Enough for every retry of a write in flight on a busy leader.
        const KEEP: usize = 4096;
        let mut committed = self.committed.lock().unwrap_or_else(|p| p.into_inner());
        let recent = committed.entry(cluster.to_string()).or_default();
        if recent.len() == KEEP {
            recent.pop_front();
        }
        recent.push_back((write.to_string(), seq));
    }

    pub fn is_blocked(&self, peer: &str) -> bool {
        self.blocked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(peer)
    }

    fn set_blocked(&self, peers: Vec<String>) {
        *self.blocked.lock().unwrap_or_else(|p| p.into_inner()) = peers.into_iter().collect();
    }

    /// Sends one message to a peer (refused at once when the link is cut).
    async fn call(&self, to: &str, req: &Request, timeout: Duration) -> Result<Reply, String> {
        if self.is_blocked(to) {
            return Err(format!("link to {to} is cut"));
        }
        self.transport.call(to, req, timeout).await
    }

    /// Like [`Clusters::call`], as an owned future (for concurrent sends).
    fn call_owned(
        &self,
        to: String,
        req: Request,
        timeout: Duration,
    ) -> impl std::future::Future<Output = Result<Reply, String>> + Send + 'static {
        let blocked = self.is_blocked(&to);
        let transport = self.transport.clone();
        async move {
            if blocked {
                return Err(format!("link to {to} is cut"));
            }
            transport.call(&to, &req, timeout).await
        }
    }

    /// Restores the clusters of a node that starts: they stay disconnected until the supervisor
    /// finds their primary component (or forms it).
    pub fn restore(&self, catalog: &Catalog) {
        for meta in catalog.clusters() {
            self.register(&meta.name, Status::Disconnected, NodeState::Closed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clusters() -> Clusters {
        let text = "searchd {\nlisten = 127.0.0.1:1312\nlisten = 127.0.0.1:1350-1352:replication\ndata_dir = /d\n}\n";
        Clusters::new(&Config::parse(std::path::Path::new("/x"), text).unwrap())
    }

    #[test]
    fn a_retried_write_keeps_its_number() {
        let c = clusters();
        let (w1, w2) = (c.new_write_id(), c.new_write_id());
        assert_ne!(w1, w2);
        assert!(w1.starts_with("127.0.0.1:1312/"));
        c.remember_commit("c", &w1, 7);
        assert_eq!(c.committed_seq("c", &w1), Some(7));
        assert_eq!(c.committed_seq("c", &w2), None);
        assert_eq!(c.committed_seq("other", &w1), None);
        c.forget("c");
        assert_eq!(c.committed_seq("c", &w1), None);
    }

    #[test]
    fn each_cluster_shows_its_own_replication_port() {
        let c = clusters();
        for name in ["a", "b", "c", "d"] {
            c.register(name, Status::Primary, NodeState::Synced);
        }
        let ports: Vec<String> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| c.member(n).repl)
            .collect();
        assert_eq!(
            ports,
            [
                "127.0.0.1:1350",
                "127.0.0.1:1351",
                "127.0.0.1:1352",
                "127.0.0.1:1350"
            ]
        );
    }
}
