//! The leader's side: sequencing writes, admitting members, view changes and state transfers.
//! Everything that changes a cluster's order of events runs under its sequencer lock.

use std::collections::BTreeSet;

use tokio::task::JoinSet;

use super::decide::has_quorum;
use super::messages::{Check, Reply, Request};
use super::{not_ready_text, NodeState, Status};
use crate::node::Node;
use crate::store::catalog::Table;
use crate::store::cluster::{ClusterMeta, Member, View};
use crate::store::mutation::Mutation;

fn refused(reason: impl Into<String>) -> Reply {
    Reply::Refused {
        reason: reason.into(),
    }
}

/// Why this node cannot lead `cluster` right now: a redirect to the leader it knows, or the
/// text a client gets.
fn not_leading(node: &Node, cluster: &str) -> Option<Reply> {
    let Some(meta) = node.catalog().cluster(cluster).cloned() else {
        return Some(refused(format!("unknown cluster '{cluster}'")));
    };
    let (status, state) = node.clusters.state(cluster)?;
    if status != Status::Primary || state == NodeState::Joining {
        return Some(refused(not_ready_text(cluster, state)));
    }
    (meta.view.leader != node.clusters.me).then_some(Reply::Redirect {
        leader: meta.view.leader,
    })
}

/// Sequences one write: checks, numbers, applies here, then on every other member. A write
/// already sequenced (its submission was retried) is answered with its number again.
pub async fn commit(
    node: &Node,
    cluster: &str,
    write: &str,
    batch: Vec<Mutation>,
    checks: &[Check],
) -> Reply {
    let lock = node.clusters.sequencer(cluster);
    let _guard = lock.lock().await;
    if let Some(reply) = not_leading(node, cluster) {
        return reply;
    }
    if let Some(seq) = node.clusters.committed_seq(cluster, write) {
        return Reply::Committed { seq };
    }
    let applied = node.write(|catalog| {
        for check in checks {
            let Check::AbsentIds { table, ids } = check;
            if let Some(t) = catalog.get(table) {
                if let Some(id) = ids.iter().find(|id| t.data.contains(**id)) {
                    return Err(crate::exec::error::ExecError::new(format!(
                        "duplicate id '{id}'"
                    )));
                }
            }
        }
        let meta = catalog
            .cluster(cluster)
            .ok_or_else(|| crate::exec::error::ExecError::new("cluster vanished"))?;
        let seq = meta.seq + 1;
        let mut full = vec![Mutation::ClusterSeq {
            cluster: cluster.to_string(),
            seq,
        }];
        full.extend(batch);
        Ok((full.clone(), (seq, meta.view.clone(), full)))
    });
    let (seq, view, full) = match applied {
        Ok(v) => v,
        Err(e) => return refused(e.message),
    };
    if let Some(l) = node.clusters.locals().get_mut(cluster) {
        l.replicated += 1;
    }
    node.clusters.remember_commit(cluster, write, seq);
    let deleted = is_delete(&full);
    let others: Vec<Member> = view
        .members
        .iter()
        .filter(|m| m.id != node.clusters.me)
        .cloned()
        .collect();
    let req = Request::Apply {
        cluster: cluster.to_string(),
        write: write.to_string(),
        epoch: view.epoch,
        seq,
        batch: full,
    };
    let behind = send_all(node, &others, &req).await;
    if deleted {
        node.clusters.forget(cluster);
    } else {
        for m in behind {
            transfer(node, cluster, &m).await;
        }
    }
    Reply::Committed { seq }
}

fn is_delete(batch: &[Mutation]) -> bool {
    batch
        .iter()
        .any(|m| matches!(m, Mutation::ClusterDelete { .. }))
}

/// Sends a message to members concurrently; returns those that answered `Behind`. Members that
/// do not answer are left to the failure detector.
async fn send_all(node: &Node, members: &[Member], req: &Request) -> Vec<Member> {
    let timeout = node.clusters.timings.message_timeout;
    let mut calls = JoinSet::new();
    for m in members {
        let m = m.clone();
        let req = req.clone();
        let call = node.clusters.call_owned(m.id.clone(), req, timeout);
        calls.spawn(async move { (m, call.await) });
    }
    let mut behind = Vec::new();
    while let Some(done) = calls.join_next().await {
        match done {
            Ok((m, Ok(Reply::Behind))) => behind.push(m),
            Ok((m, Ok(Reply::Refused { reason }))) => node
                .log
                .line(&format!("WARNING: cluster: {} refused: {reason}", m.id)),
            _ => {}
        }
    }
    behind
}

/// The cluster's full state as this node holds it.
fn snapshot(node: &Node, cluster: &str) -> Option<(ClusterMeta, Vec<Table>)> {
    let catalog = node.catalog();
    let meta = catalog.cluster(cluster)?.clone();
    let tables = catalog.cluster_tables(cluster).cloned().collect();
    Some((meta, tables))
}

/// Full state transfer to one member (while holding the sequencer lock).
async fn transfer(node: &Node, cluster: &str, to: &Member) -> bool {
    let Some((meta, tables)) = snapshot(node, cluster) else {
        return false;
    };
    node.clusters
        .set_state(cluster, None, Some(NodeState::Donor));
    let req = Request::Install { meta, tables };
    let outcome = node
        .clusters
        .call(&to.id, &req, node.clusters.timings.transfer_timeout)
        .await;
    node.clusters
        .set_state(cluster, None, Some(NodeState::Synced));
    match outcome {
        Ok(Reply::Ok) => {
            node.clusters.peers.seen(&to.id, None);
            true
        }
        other => {
            node.log.line(&format!(
                "WARNING: cluster '{cluster}': state transfer to {} failed: {other:?}",
                to.id
            ));
            false
        }
    }
}

/// Applies a new view here and announces it to its other members; a member just admitted
/// (`joiner`) hears last, so once it reports `synced` every other member has the view.
async fn install_view(node: &Node, cluster: &str, view: View, joiner: Option<&str>) {
    let applied = node.write(|catalog| {
        let meta = catalog
            .cluster(cluster)
            .ok_or_else(|| crate::exec::error::ExecError::new("cluster vanished"))?;
        Ok((
            vec![Mutation::ClusterView {
                cluster: cluster.to_string(),
                view: view.clone(),
                nodes_set: meta.grown_nodes_set(&view),
            }],
            meta.seq,
        ))
    });
    let Ok(seq) = applied else {
        return;
    };
    node.clusters
        .set_state(cluster, Some(Status::Primary), Some(NodeState::Synced));
    let (last, others): (Vec<Member>, Vec<Member>) = view
        .members
        .iter()
        .filter(|m| m.id != node.clusters.me)
        .cloned()
        .partition(|m| Some(m.id.as_str()) == joiner);
    let req = Request::View {
        cluster: cluster.to_string(),
        view,
        seq,
    };
    for group in [others, last] {
        for m in send_all(node, &group, &req).await {
            transfer(node, cluster, &m).await;
        }
    }
}

fn sorted_members(mut members: Vec<Member>) -> Vec<Member> {
    members.sort();
    members.dedup_by(|a, b| a.id == b.id);
    members
}

/// Admits a node: full state transfer to it, then a view that includes it.
pub async fn admit(node: &Node, cluster: &str, joiner: Member) -> Reply {
    if node.catalog().cluster(cluster).is_none() {
        return refused(format!(
            "cluster '{cluster}', failed to fetch donor user from any node"
        ));
    }
    let lock = node.clusters.sequencer(cluster);
    let _guard = lock.lock().await;
    match not_leading(node, cluster) {
        Some(Reply::Redirect { leader }) => return Reply::Redirect { leader },
        Some(_) => {
            return refused(format!(
                "cluster '{cluster}', failed to fetch donor user from any node"
            ))
        }
        None => {}
    }
    let Some((mut meta, tables)) = snapshot(node, cluster) else {
        return refused(format!("unknown cluster '{cluster}'"));
    };
    let mut members: Vec<Member> = meta
        .view
        .members
        .iter()
        .filter(|m| m.id != joiner.id)
        .cloned()
        .collect();
    members.push(joiner.clone());
    let view = View {
        epoch: meta.view.epoch + 1,
        leader: node.clusters.me.clone(),
        members: sorted_members(members),
    };
    // The joiner gets the tables and the current view; the view with it follows once the
    // others have it.
    meta.nodes_set = meta.joiner_nodes_set(&joiner.id);
    node.clusters
        .set_state(cluster, None, Some(NodeState::Donor));
    let sent = node
        .clusters
        .call(
            &joiner.id,
            &Request::Install {
                meta: meta.clone(),
                tables,
            },
            node.clusters.timings.transfer_timeout,
        )
        .await;
    node.clusters
        .set_state(cluster, None, Some(NodeState::Synced));
    match sent {
        Ok(Reply::Ok) => {}
        Ok(Reply::Refused { reason }) => return refused(reason),
        Ok(other) => return refused(format!("state transfer failed: {other:?}")),
        Err(e) => return refused(format!("state transfer failed: {e}")),
    }
    node.clusters.peers.seen(&joiner.id, None);
    install_view(node, cluster, view, Some(&joiner.id)).await;
    Reply::Ok
}

/// The leader drops members that stopped answering; without a quorum this node leaves the
/// primary component instead.
pub async fn evict(node: &Node, cluster: &str, dead: &[String]) {
    let lock = node.clusters.sequencer(cluster);
    let _guard = lock.lock().await;
    if not_leading(node, cluster).is_some() {
        return;
    }
    let Some(meta) = node.catalog().cluster(cluster).cloned() else {
        return;
    };
    let mut gone = Vec::new();
    for id in dead {
        if !super::peers::probe(node, id).await {
            gone.push(id.clone());
        }
    }
    if gone.is_empty() {
        return;
    }
    let dead = &gone;
    let alive = node.clusters.peers.alive(node.clusters.timings.suspect);
    let keep: Vec<Member> = meta
        .view
        .members
        .iter()
        .filter(|m| m.id == node.clusters.me || (alive.contains(&m.id) && !dead.contains(&m.id)))
        .cloned()
        .collect();
    let present: BTreeSet<String> = keep.iter().map(|m| m.id.clone()).collect();
    if !has_quorum(meta.view.member_ids(), &present) {
        node.log.line(&format!(
            "cluster '{cluster}': lost the quorum, non-primary"
        ));
        node.clusters
            .set_state(cluster, Some(Status::NonPrimary), None);
        return;
    }
    let view = View {
        epoch: meta.view.epoch + 1,
        leader: node.clusters.me.clone(),
        members: keep,
    };
    node.log.line(&format!(
        "cluster '{cluster}': view {} without {}",
        view.epoch,
        dead.join(",")
    ));
    install_view(node, cluster, view, None).await;
}

/// Forms a new primary component led by this node from the reachable `group` (this node
/// included): the members agree to follow, the most recent state wins, then the view goes out.
pub async fn take_over(node: &Node, cluster: &str, group: &[String]) {
    let lock = node.clusters.sequencer(cluster);
    let _guard = lock.lock().await;
    let Some(meta) = node.catalog().cluster(cluster).cloned() else {
        return;
    };
    // A leader that still leads (its heartbeats were only late) keeps its place.
    let leader = meta.view.leader.clone();
    if leader != node.clusters.me
        && super::peers::probe(node, &leader).await
        && node
            .clusters
            .peers
            .digests(cluster, &BTreeSet::from([leader.clone()]))
            .iter()
            .any(|(_, d)| d.primary && d.leader == leader)
    {
        return;
    }
    let peers_digests = node.clusters.peers.digests(
        cluster,
        &group.iter().cloned().collect::<BTreeSet<String>>(),
    );
    let epoch = peers_digests
        .iter()
        .map(|(_, d)| d.epoch)
        .chain(std::iter::once(meta.view.epoch))
        .max()
        .unwrap_or(0)
        + 1;
    let me = node.clusters.member(cluster);
    let mut followers: Vec<(Member, u64)> = Vec::new();
    let timeout = node.clusters.timings.message_timeout;
    for id in group.iter().filter(|id| **id != me.id) {
        let req = Request::TakeOver {
            cluster: cluster.to_string(),
            epoch,
            leader: me.id.clone(),
        };
        if let Ok(Reply::Following { seq }) = node.clusters.call(id, &req, timeout).await {
            let repl = peers_digests
                .iter()
                .find(|(p, _)| p == id)
                .map(|(_, d)| d.repl.clone())
                .or_else(|| {
                    meta.view
                        .members
                        .iter()
                        .find(|m| &m.id == id)
                        .map(|m| m.repl.clone())
                })
                .unwrap_or_default();
            followers.push((
                Member {
                    id: id.clone(),
                    repl,
                },
                seq,
            ));
        }
    }
    let present: BTreeSet<String> = followers
        .iter()
        .map(|(m, _)| m.id.clone())
        .chain(std::iter::once(me.id.clone()))
        .collect();
    if !has_quorum(meta.view.member_ids(), &present) {
        if node.clusters.state(cluster).map(|(s, _)| s) == Some(Status::Primary) {
            node.log.line(&format!(
                "cluster '{cluster}': lost the quorum, non-primary"
            ));
            node.clusters
                .set_state(cluster, Some(Status::NonPrimary), None);
        }
        return;
    }
    // Catch up from the member with the most recent state first.
    if let Some((donor, _)) = followers
        .iter()
        .filter(|(_, seq)| *seq > meta.seq)
        .max_by_key(|(_, seq)| *seq)
    {
        let req = Request::Snapshot {
            cluster: cluster.to_string(),
        };
        match node
            .clusters
            .call(&donor.id, &req, node.clusters.timings.transfer_timeout)
            .await
        {
            Ok(Reply::Snapshot { meta, tables }) => {
                if node
                    .write(|_| Ok((vec![Mutation::ClusterInstall { meta, tables }], ())))
                    .is_err()
                {
                    return;
                }
            }
            _ => return,
        }
    }
    let mut members: Vec<Member> = followers.into_iter().map(|(m, _)| m).collect();
    members.push(me.clone());
    let view = View {
        epoch,
        leader: me.id.clone(),
        members: sorted_members(members),
    };
    node.log.line(&format!(
        "cluster '{cluster}': this node leads view {epoch}"
    ));
    install_view(node, cluster, view, None).await;
}

/// `pc.bootstrap`: this node alone becomes the primary component (no-op when it is primary).
pub async fn bootstrap(node: &Node, cluster: &str) -> Result<(), String> {
    let lock = node.clusters.sequencer(cluster);
    let _guard = lock.lock().await;
    let meta = node
        .catalog()
        .cluster(cluster)
        .cloned()
        .ok_or_else(|| format!("unknown cluster '{cluster}' in SET statement"))?;
    if node.clusters.state(cluster).map(|(s, _)| s) == Some(Status::Primary) {
        return Ok(());
    }
    let view = View {
        epoch: meta.view.epoch + 1,
        leader: node.clusters.me.clone(),
        members: vec![node.clusters.member(cluster)],
    };
    node.log.line(&format!(
        "cluster '{cluster}': bootstrapped a new primary component"
    ));
    install_view(node, cluster, view, None).await;
    Ok(())
}
