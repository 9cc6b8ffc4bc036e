//! A member's side: applying sequenced writes and views, receiving state transfers, following a
//! new leader, and (re)joining a primary component.

use super::messages::{Reply, Request};
use super::{NodeState, Status};
use crate::exec::error::ExecError;
use crate::node::Node;
use crate::store::catalog::Table;
use crate::store::cluster::{ClusterMeta, View};
use crate::store::mutation::Mutation;

/// Applies a write in sequence; anything out of step asks the leader for a transfer.
pub fn apply(
    node: &Node,
    cluster: &str,
    write: &str,
    (epoch, seq): (u64, u64),
    batch: Vec<Mutation>,
) -> Reply {
    let deletes = batch
        .iter()
        .any(|m| matches!(m, Mutation::ClusterDelete { .. }));
    let outcome = node.write(|catalog| {
        let Some(meta) = catalog.cluster(cluster) else {
            return Err(ExecError::new(format!("unknown cluster '{cluster}'")));
        };
        if meta.view.epoch != epoch || meta.seq + 1 != seq {
            return Ok((Vec::new(), false));
        }
        let me = node.clusters.me();
        Ok((batch.into_iter().map(|m| m.for_node(me)).collect(), true))
    });
    match outcome {
        Ok(true) => {
            if deletes {
                node.clusters.forget(cluster);
            } else {
                if let Some(l) = node.clusters.locals().get_mut(cluster) {
                    l.received += 1;
                }
                node.clusters.remember_commit(cluster, write, seq);
            }
            Reply::Ok
        }
        Ok(false) => Reply::Behind,
        Err(e) => Reply::Refused { reason: e.message },
    }
}

/// Adopts a view announced by its leader (older views are ignored).
pub fn adopt_view(node: &Node, cluster: &str, view: View, seq: u64) -> Reply {
    let me = node.clusters.me().to_string();
    let included = view.contains(&me);
    let outcome = node.write(|catalog| {
        let Some(meta) = catalog.cluster(cluster) else {
            return Err(ExecError::new(format!("unknown cluster '{cluster}'")));
        };
        if view.epoch < meta.view.epoch {
            return Err(ExecError::new("stale view"));
        }
        let in_step = meta.seq == seq;
        if !included {
            return Ok((Vec::new(), in_step));
        }
        let nodes_set = meta.grown_nodes_set(&view);
        Ok((
            vec![Mutation::ClusterView {
                cluster: cluster.to_string(),
                view,
                nodes_set,
            }],
            in_step,
        ))
    });
    match outcome {
        Ok(in_step) if included => {
            node.clusters
                .set_state(cluster, Some(Status::Primary), Some(NodeState::Synced));
            if in_step {
                Reply::Ok
            } else {
                Reply::Behind
            }
        }
        Ok(_) => {
            // A view without this node: it is out of the primary component.
            node.clusters
                .set_state(cluster, Some(Status::NonPrimary), None);
            Reply::Ok
        }
        Err(e) => Reply::Refused { reason: e.message },
    }
}

/// A full state transfer: the cluster as the leader holds it replaces the local one.
pub fn install(node: &Node, meta: ClusterMeta, tables: Vec<Table>) -> Reply {
    let name = meta.name.clone();
    let included = meta.view.contains(node.clusters.me());
    node.clusters
        .register(&name, Status::Disconnected, NodeState::Joining);
    let mut meta = meta;
    // A node receiving the cluster whole lists its tables sorted, as searchd does after SST.
    meta.tables.sort();
    // The path is this node's own (the donor's may differ).
    let local_path = node.catalog().cluster(&name).map(|m| m.path.clone());
    meta.path = match local_path {
        Some(p) => p,
        None => node
            .clusters
            .locals()
            .get(&name)
            .map(|l| l.join_path.clone())
            .unwrap_or_default(),
    };
    match node.write(|_| Ok((vec![Mutation::ClusterInstall { meta, tables }], ()))) {
        Ok(()) => {
            // A member being resynchronised is in the view already; a joiner waits for the
            // view that admits it.
            let (status, state) = if included {
                (Status::Primary, NodeState::Synced)
            } else {
                (Status::Disconnected, NodeState::Joining)
            };
            node.clusters.set_state(&name, Some(status), Some(state));
            if let Some(l) = node.clusters.locals().get_mut(&name) {
                l.trailing = None;
                l.installed = Some(std::time::Instant::now());
            }
            node.log.line(&format!(
                "cluster '{name}': state transfer received, synced"
            ));
            Reply::Ok
        }
        Err(e) => Reply::Refused { reason: e.message },
    }
}

/// The cluster's state for a new leader catching up.
pub fn snapshot(node: &Node, cluster: &str) -> Reply {
    let catalog = node.catalog();
    match catalog.cluster(cluster) {
        Some(meta) => Reply::Snapshot {
            meta: meta.clone(),
            tables: catalog.cluster_tables(cluster).cloned().collect(),
        },
        None => Reply::Refused {
            reason: format!("unknown cluster '{cluster}'"),
        },
    }
}

/// A node forming a newer primary component asks this one to follow it.
pub fn follow(node: &Node, cluster: &str, epoch: u64) -> Reply {
    let catalog = node.catalog();
    match catalog.cluster(cluster) {
        Some(meta) if epoch > meta.view.epoch => Reply::Following { seq: meta.seq },
        Some(_) => Reply::Refused {
            reason: "stale epoch".to_string(),
        },
        None => Reply::Refused {
            reason: format!("unknown cluster '{cluster}'"),
        },
    }
}

/// Asks `via` (or the leader it points to) to admit this node; the transfer arrives as an
/// `Install` message before the answer.
pub async fn rejoin(node: &Node, cluster: &str, via: &str) -> Result<(), String> {
    let donor_error = || format!("cluster '{cluster}', failed to fetch donor user from any node");
    let previous = node.clusters.state(cluster);
    node.clusters
        .set_state(cluster, None, Some(NodeState::Joining));
    let member = node.clusters.member(cluster);
    let mut target = via.to_string();
    let mut outcome = Err(donor_error());
    for _ in 0..3 {
        if target == node.clusters.me() {
            break;
        }
        let req = Request::Join {
            cluster: cluster.to_string(),
            member: member.clone(),
        };
        match node
            .clusters
            .call(&target, &req, node.clusters.timings().transfer_timeout)
            .await
        {
            Ok(Reply::Ok) => {
                outcome = Ok(());
                break;
            }
            Ok(Reply::Redirect { leader }) => target = leader,
            Ok(Reply::Refused { reason }) => {
                outcome = Err(reason);
                break;
            }
            _ => break,
        }
    }
    if outcome.is_err() {
        if let Some((status, state)) = previous {
            node.clusters.set_state(cluster, Some(status), Some(state));
        }
    }
    outcome
}
