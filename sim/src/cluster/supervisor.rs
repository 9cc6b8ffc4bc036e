//! The supervisor: every heartbeat interval it keeps one heartbeat loop per peer and turns what
//! the peers report into view changes, takeovers and rejoins (see [`super::decide`]).

use std::sync::Arc;
use std::time::Instant;

use super::decide::{decide, Action, Situation};
use super::peers::{wanted_peers, Peers};
use super::{member, views, Status};
use crate::node::Node;

/// Restores this node's clusters (as disconnected, before the first client can ask about
/// them); [`run`] then starts them and supervises them until the process ends.
pub fn start(node: &Arc<Node>) {
    node.clusters.restore(&node.catalog());
}

/// Starts the saved clusters (`new_cluster`: bootstrap them here, searchd's `--new-cluster`),
/// then supervises them. Spawned once the listeners are open.
pub async fn run(node: Arc<Node>, new_cluster: bool) {
    // Under the realistic profile a restarted node takes as long as searchd to get going.
    node.config
        .sim
        .profile
        .charge(crate::cost::Op::RestartGrace)
        .await;
    super::startup::start_clusters(&node, new_cluster).await;
    let mut tick = tokio::time::interval(node.clusters.timings().heartbeat);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        Peers::ensure_loops(&node, &wanted_peers(&node));
        let names: Vec<String> = node.catalog().clusters().map(|m| m.name.clone()).collect();
        for name in names {
            let action = evaluate(&node, &name);
            if action != Action::Nothing && node.clusters.try_busy(&name) {
                let node = node.clone();
                tokio::spawn(async move {
                    act(&node, &name, action).await;
                    node.clusters.done_busy(&name);
                });
            }
        }
    }
}

fn evaluate(node: &Node, name: &str) -> Action {
    let timings = node.clusters.timings();
    let Some(meta) = node.catalog().cluster(name).cloned() else {
        return Action::Nothing;
    };
    let Some((status, state)) = node.clusters.state(name) else {
        return Action::Nothing;
    };
    if status == Status::RecoveryRequired {
        // Not started: only a restart of the daemon brings it back.
        return Action::Nothing;
    }
    let alive = node.clusters.peers.alive(timings.suspect);
    let digests = node.clusters.peers.digests(name, &alive);
    // Under a steady stream of writes the leader is always a step ahead; only a point it
    // reported that is still not reached after the suspect time means a lost message.
    let leader_point = digests
        .iter()
        .find(|(id, _)| *id == meta.view.leader)
        .filter(|(_, d)| d.primary)
        .map(|(_, d)| (d.epoch, d.seq));
    let reached = |(epoch, seq): (u64, u64)| meta.view.epoch >= epoch && meta.seq >= seq;
    let trailing = {
        let mut locals = node.clusters.locals();
        let Some(local) = locals.get_mut(name) else {
            return Action::Nothing;
        };
        if let Some((_, epoch, seq)) = local.trailing {
            if reached((epoch, seq)) {
                local.trailing = None;
            }
        }
        if local.trailing.is_none() {
            local.trailing = leader_point
                .filter(|p| !reached(*p))
                .map(|(epoch, seq)| (Instant::now(), epoch, seq));
        }
        local
            .trailing
            .is_some_and(|(since, _, _)| since.elapsed() > timings.suspect)
    };
    let just_installed = node
        .clusters
        .locals()
        .get(name)
        .and_then(|l| l.installed)
        .is_some_and(|at| at.elapsed() < timings.suspect);
    decide(&Situation {
        me: node.clusters.me(),
        meta: &meta,
        status,
        state,
        alive: &alive,
        digests: &digests,
        trailing,
        just_installed,
    })
}

async fn act(node: &Node, name: &str, action: Action) {
    match action {
        Action::Nothing => {}
        Action::Evict(dead) => views::evict(node, name, &dead).await,
        Action::TakeOver(group) => views::take_over(node, name, &group).await,
        Action::Rejoin(via) => {
            node.log
                .line(&format!("cluster '{name}': rejoining through {via}"));
            if let Err(e) = member::rejoin(node, name, &via).await {
                node.log.line(&format!(
                    "WARNING: cluster '{name}': rejoin through {via} failed: {e}"
                ));
            }
        }
    }
}
