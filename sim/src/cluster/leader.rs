//! The leader's side of writes: sequencing, sending them to the members, and full state
//! transfers to members that fell behind. Everything that changes a cluster's order of events
//! runs under its sequencer lock (see also [`super::views`]).

use tokio::task::JoinSet;

use super::messages::{Check, Reply, Request};
use super::{not_ready_text, NodeState, Status};
use crate::cost::Op;
use crate::node::Node;
use crate::store::catalog::Table;
use crate::store::cluster::{ClusterMeta, Member};
use crate::store::mutation::Mutation;

pub(super) fn refused(reason: impl Into<String>) -> Reply {
    Reply::Refused {
        reason: reason.into(),
    }
}

/// Why this node cannot lead `cluster` right now: a redirect to the leader it knows, or the
/// text a client gets.
pub(super) fn not_leading(node: &Node, cluster: &str) -> Option<Reply> {
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
    // A change of the cluster itself is totally ordered (Galera's TOI): its cost is taken
    // here, under the sequencer lock, so such changes of one cluster run one after another.
    if let Some(op) = toi_cost(node, cluster, &batch) {
        node.config.sim.profile.charge(op).await;
    }
    let applied = node.write(|catalog| {
        // searchd replicates a write through the cluster its table is in when it commits; a
        // write planned before the table left this cluster is not applied here (on the
        // members the table may be in another cluster by now, shipped to other nodes).
        let moved = batch.iter().filter_map(Mutation::document_table).any(|t| {
            catalog
                .get(t)
                .is_some_and(|t| t.cluster.as_deref() != Some(cluster))
        });
        if moved {
            return Ok((Vec::new(), None));
        }
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
        let me = node.clusters.me();
        let here = full.iter().cloned().map(|m| m.for_node(me)).collect();
        Ok((here, Some((seq, meta.view.clone(), full))))
    });
    let (seq, view, full) = match applied {
        Ok(Some(v)) => v,
        Ok(None) => return Reply::Moved,
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
    let sent = send_all(node, &others, &req).await;
    if deleted {
        node.clusters.forget(cluster);
        return Reply::Committed { seq };
    }
    let mut reached = sent.answered;
    for m in sent.behind {
        if transfer(node, cluster, &m).await {
            reached += 1;
        }
    }
    // Galera answers a commit only once its write-set is delivered in the
    // primary component: when the members that did not answer could be the
    // majority, the writer cannot know it is on the side that keeps
    // working, and the write is not acknowledged (in Galera it waits for
    // the new view and fails when it is not primary). The write stays
    // here; a state transfer replaces it if the other side goes on.
    if 2 * (reached + 1) <= view.members.len() {
        let state = node
            .clusters
            .state(cluster)
            .map_or(NodeState::Synced, |(_, s)| s);
        return refused(not_ready_text(cluster, state));
    }
    Reply::Committed { seq }
}

/// The cost of a batch that changes the cluster rather than its documents.
pub(super) fn toi_cost(node: &Node, cluster: &str, batch: &[Mutation]) -> Option<Op> {
    let attached = batch
        .iter()
        .filter(|m| matches!(m, Mutation::ClusterAttach { .. }))
        .count();
    if attached > 0 {
        return Some(Op::AlterAdd { tables: attached });
    }
    batch.iter().find_map(|m| match m {
        Mutation::ClusterDetach { .. } => Some(Op::AlterDrop),
        Mutation::ClusterView { .. } => Some(Op::UpdateNodes),
        Mutation::ClusterDelete { .. } => {
            let members = node
                .catalog()
                .cluster(cluster)
                .map(|meta| meta.view.members.len())
                .unwrap_or(1);
            Some(if members > 1 {
                Op::DeleteShared
            } else {
                Op::DeleteLocal
            })
        }
        _ => None,
    })
}

/// What a state transfer of these tables costs.
pub(super) fn transfer_cost(tables: &[Table]) -> Op {
    Op::StateTransfer {
        tables: tables.len(),
        rows: tables.iter().map(|t| t.data.len() as u64).sum(),
    }
}

fn is_delete(batch: &[Mutation]) -> bool {
    batch
        .iter()
        .any(|m| matches!(m, Mutation::ClusterDelete { .. }))
}

/// What members answered a message sent to them all.
pub(super) struct Sent {
    /// Members that took it.
    pub answered: usize,
    /// Members that answered `Behind` (they need a state transfer).
    pub behind: Vec<Member>,
}

/// Sends a message to members concurrently. Members that do not answer are left to the
/// failure detector.
pub(super) async fn send_all(node: &Node, members: &[Member], req: &Request) -> Sent {
    let timeout = node.clusters.timings.message_timeout;
    let mut calls = JoinSet::new();
    for m in members {
        let m = m.clone();
        let req = req.clone();
        let call = node.clusters.call_owned(m.id.clone(), req, timeout);
        calls.spawn(async move { (m, call.await) });
    }
    let mut sent = Sent {
        answered: 0,
        behind: Vec::new(),
    };
    while let Some(done) = calls.join_next().await {
        match done {
            Ok((_, Ok(Reply::Ok))) => sent.answered += 1,
            Ok((m, Ok(Reply::Behind))) => sent.behind.push(m),
            Ok((m, Ok(Reply::Refused { reason }))) => node
                .log
                .line(&format!("WARNING: cluster: {} refused: {reason}", m.id)),
            _ => {}
        }
    }
    sent
}

/// The cluster's full state as this node holds it.
pub(super) fn snapshot(node: &Node, cluster: &str) -> Option<(ClusterMeta, Vec<Table>)> {
    let catalog = node.catalog();
    let meta = catalog.cluster(cluster)?.clone();
    let tables = catalog.cluster_tables(cluster).cloned().collect();
    Some((meta, tables))
}

/// Full state transfer to one member (while holding the sequencer lock).
pub(super) async fn transfer(node: &Node, cluster: &str, to: &Member) -> bool {
    let Some((meta, tables)) = snapshot(node, cluster) else {
        return false;
    };
    node.clusters
        .set_state(cluster, None, Some(NodeState::Donor));
    node.config.sim.profile.charge(transfer_cost(&tables)).await;
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
