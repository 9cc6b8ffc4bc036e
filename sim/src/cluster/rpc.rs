//! Dispatch of replication messages arriving at `POST /_sim/cluster` on the API port.

use super::messages::{Reply, Request};
use super::{leader, member, status, views};
use crate::node::Node;

/// Handles one message; `from` is the sending node (absent for test tooling). Returns the HTTP
/// status and the JSON reply.
pub async fn handle(node: &Node, from: Option<&str>, body: &[u8]) -> (u16, String) {
    if let Some(peer) = from {
        if node.clusters.is_blocked(peer) {
            return (503, r#"{"error":"link cut"}"#.to_string());
        }
    }
    let req: Request = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return (
                400,
                serde_json::json!({ "error": format!("bad message: {e}") }).to_string(),
            )
        }
    };
    let reply = dispatch(node, from, req).await;
    match serde_json::to_string(&reply) {
        Ok(text) => (200, text),
        Err(e) => (
            500,
            serde_json::json!({ "error": format!("encode: {e}") }).to_string(),
        ),
    }
}

async fn dispatch(node: &Node, from: Option<&str>, req: Request) -> Reply {
    if let Some(peer) = from {
        let digests = match &req {
            Request::Heartbeat { clusters } => Some(clusters.clone()),
            _ => None,
        };
        node.clusters.peers.seen(peer, digests);
    }
    let cluster = match &req {
        Request::Submit { cluster, .. }
        | Request::Apply { cluster, .. }
        | Request::View { cluster, .. }
        | Request::Join { cluster, .. }
        | Request::Snapshot { cluster }
        | Request::TakeOver { cluster, .. } => Some(cluster.clone()),
        Request::Install { meta, .. } => Some(meta.name.clone()),
        Request::Heartbeat { .. }
        | Request::Links { .. }
        | Request::AddStatementFault { .. }
        | Request::ClearStatementFaults => None,
    };
    if let Some(c) = cluster
        .filter(|c| node.clusters.state(c).map(|(s, _)| s) == Some(super::Status::RecoveryRequired))
    {
        // Galera does not run for a cluster left unstarted.
        return Reply::Refused {
            reason: format!("cluster '{c}', failed to fetch donor user from any node"),
        };
    }
    match req {
        Request::Heartbeat { .. } => Reply::Heartbeat {
            clusters: status::digests(node),
        },
        Request::Submit {
            cluster,
            write,
            batch,
            checks,
        } => leader::commit(node, &cluster, &write, batch, &checks).await,
        Request::Apply {
            cluster,
            write,
            epoch,
            seq,
            batch,
        } => member::apply(node, &cluster, &write, (epoch, seq), batch),
        Request::View { cluster, view, seq } => member::adopt_view(node, &cluster, view, seq),
        Request::Join { cluster, member } => views::admit(node, &cluster, member).await,
        Request::Install { meta, tables } => member::install(node, meta, tables),
        Request::Snapshot { cluster } => member::snapshot(node, &cluster),
        Request::TakeOver { cluster, epoch, .. } => member::follow(node, &cluster, epoch),
        Request::Links { blocked } => {
            super::set_blocked(node, blocked);
            Reply::Ok
        }
        Request::AddStatementFault { rule } => {
            node.log.line(&format!("sim: statement fault set: {rule}"));
            node.statement_faults.add(rule);
            Reply::Ok
        }
        Request::ClearStatementFaults => {
            node.log.line("sim: statement faults cleared");
            node.statement_faults.clear();
            Reply::Ok
        }
    }
}
