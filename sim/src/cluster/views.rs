//! View changes: admitting a member, dropping dead ones, forming a new primary component
//! (takeover) and `pc.bootstrap`. Each runs under the cluster's sequencer lock.

use std::collections::BTreeSet;

use super::decide::has_quorum;
use super::leader::{not_leading, refused, send_all, snapshot, transfer};
use super::messages::{Reply, Request};
use super::{NodeState, Status};
use crate::node::Node;
use crate::store::cluster::{Member, View};
use crate::store::mutation::Mutation;

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
        for m in send_all(node, &group, &req).await.behind {
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
    node.config
        .sim
        .profile
        .charge(super::leader::transfer_cost(&tables))
        .await;
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
