//! The operations statements use: replicated writes, creating, joining, bootstrapping and
//! deleting clusters, and the link switch of the test tooling.

use std::time::{Duration, Instant};

use super::messages::{Check, Reply, Request};
use super::{leader, member, not_ready_text, views, NodeState, Status};
use crate::node::Node;
use crate::store::cluster::{ClusterMeta, View};
use crate::store::mutation::Mutation;

/// Fails unless the cluster is in a primary component here (searchd's text otherwise).
pub fn ready(node: &Node, cluster: &str) -> Result<(), String> {
    match node.clusters.state(cluster) {
        Some((Status::Primary, NodeState::Synced | NodeState::Donor)) => Ok(()),
        Some((_, state)) => Err(not_ready_text(cluster, state)),
        None => Err(format!("unknown cluster '{cluster}'")),
    }
}

/// Why a replicated change was not applied.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Declined, with searchd's text.
    #[error("{0}")]
    Refused(String),
    /// A table the change was planned for left the cluster before the change was sequenced.
    #[error("a table of the change is not in cluster '{0}' any more")]
    Moved(String),
}

impl From<String> for SubmitError {
    fn from(reason: String) -> Self {
        SubmitError::Refused(reason)
    }
}

impl From<SubmitError> for String {
    fn from(e: SubmitError) -> Self {
        e.to_string()
    }
}

/// Replicates a planned change through a cluster: the leader sequences it and every live
/// member applies it before this returns.
pub async fn submit(
    node: &Node,
    cluster: &str,
    batch: Vec<Mutation>,
    checks: Vec<Check>,
) -> Result<u64, SubmitError> {
    ready(node, cluster)?;
    // A change of the cluster waits for its cost on the leader too (the realistic profile).
    let cost = leader::toi_cost(node, cluster, &batch)
        .map(|op| node.config.sim.profile.cost(op))
        .unwrap_or_default();
    let wait = node.clusters.timings.write_wait + cost;
    let deadline = Instant::now() + wait;
    let write = node.clusters.new_write_id();
    let mut target = leader_of(node, cluster)?;
    loop {
        let outcome = if target == node.clusters.me {
            Ok(leader::commit(node, cluster, &write, batch.clone(), &checks).await)
        } else {
            let req = Request::Submit {
                cluster: cluster.to_string(),
                write: write.clone(),
                batch: batch.clone(),
                checks: checks.clone(),
            };
            node.clusters.call(&target, &req, wait).await
        };
        match outcome {
            Ok(Reply::Committed { seq }) => {
                wait_applied(node, cluster, seq).await;
                return Ok(seq);
            }
            Ok(Reply::Refused { reason }) => return Err(SubmitError::Refused(reason)),
            Ok(Reply::Moved) => return Err(SubmitError::Moved(cluster.to_string())),
            Ok(Reply::Redirect { leader }) if leader != target => target = leader,
            _ => {
                // The leader is changing: wait for the new view, then try again.
                if Instant::now() >= deadline {
                    let state = node
                        .clusters
                        .state(cluster)
                        .map(|(_, s)| s)
                        .unwrap_or(NodeState::Closed);
                    return Err(not_ready_text(cluster, state).into());
                }
                tokio::time::sleep(node.clusters.timings.heartbeat).await;
                ready(node, cluster)?;
                target = leader_of(node, cluster)?;
            }
        }
    }
}

fn leader_of(node: &Node, cluster: &str) -> Result<String, String> {
    node.catalog()
        .cluster(cluster)
        .map(|m| m.view.leader.clone())
        .ok_or_else(|| format!("unknown cluster '{cluster}'"))
}

/// The leader applied `seq` here before answering; this covers a member that lost the message
/// and is being brought up to date by a transfer (read-your-writes for the client).
async fn wait_applied(node: &Node, cluster: &str, seq: u64) {
    let deadline = Instant::now() + node.clusters.timings.message_timeout;
    loop {
        let applied = node.catalog().cluster(cluster).map(|m| m.seq);
        if applied.is_none_or(|s| s >= seq) || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Creates a cluster with this node as its only member (validation is the caller's).
pub fn create(node: &Node, name: &str, path: &str) -> Result<(), String> {
    node.clusters
        .register(name, Status::Primary, NodeState::Synced);
    let me = node.clusters.member(name);
    let meta = ClusterMeta {
        name: name.to_string(),
        path: path.to_string(),
        uuid: uuid::Uuid::new_v4().to_string(),
        tables: Vec::new(),
        nodes_set: Vec::new(),
        seq: 0,
        view: View {
            epoch: 1,
            leader: me.id.clone(),
            members: vec![me],
        },
    };
    let result = node
        .write(|_| Ok((vec![Mutation::ClusterCreate { meta }], ())))
        .map_err(|e| e.message);
    if result.is_err() {
        node.clusters.forget(name);
    }
    result
}

/// Joins an existing cluster through one of `donors` (full state transfer before returning).
pub async fn join(node: &Node, name: &str, path: &str, donors: &[String]) -> Result<(), String> {
    node.clusters
        .register(name, Status::Disconnected, NodeState::Joining);
    if let Some(l) = node.clusters.locals().get_mut(name) {
        l.join_path = path.to_string();
    }
    let mut last = format!("cluster '{name}', failed to fetch donor user from any node");
    for donor in donors {
        match member::rejoin(node, name, donor).await {
            Ok(()) => return Ok(()),
            Err(e) => last = e,
        }
    }
    if node.catalog().cluster(name).is_none() {
        node.clusters.forget(name);
    }
    Err(last)
}

/// `SET CLUSTER <c> GLOBAL 'pc.bootstrap' = 1`: this node alone becomes the primary component.
/// A cluster left unstarted has no provider to set options on.
pub async fn bootstrap(node: &Node, name: &str) -> Result<(), String> {
    if let Some((Status::RecoveryRequired, state)) = node.clusters.state(name) {
        return Err(not_ready_text(name, state));
    }
    views::bootstrap(node, name).await
}

/// Removes a cluster: on every member through the leader when primary, else here only.
pub async fn delete(node: &Node, name: &str) -> Result<(), String> {
    let batch = vec![Mutation::ClusterDelete {
        cluster: name.to_string(),
    }];
    if ready(node, name).is_ok() {
        submit(node, name, batch, Vec::new()).await?;
    } else {
        node.config
            .sim
            .profile
            .charge(crate::cost::Op::DeleteLocal)
            .await;
        node.write(|_| Ok((batch, ()))).map_err(|e| e.message)?;
    }
    node.clusters.forget(name);
    Ok(())
}

/// Cuts (or restores) this node's links: traffic to and from these peers is dropped.
pub fn set_blocked(node: &Node, peers: Vec<String>) {
    node.clusters.set_blocked(peers);
}
