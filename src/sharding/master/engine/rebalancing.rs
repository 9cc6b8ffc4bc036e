//! The engine's rebalancing: promoting replica sets that lost their
//! majority, starting rebalances, and following them to the new placement.

use std::collections::BTreeSet;
use std::time::Duration;

use super::watchdog::Hold;
use super::{abort, enqueue_group, MasterEngine};
use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::ClusterMap;
use crate::placement::{Action, Ddl};
use crate::sharding::master::command::{Command, Event};
use crate::sharding::master::engine::EngineConfig;
use crate::sharding::master::rebalance::{self, Planned, Verdict};
use crate::sharding::master::snapshot::Snapshot;
use crate::sharding::records::placement::rows_of;
use crate::sharding::records::{
    GroupKind, GroupName, GroupRecord, GroupStatus, PlacementRow, QueueRow, RebalanceRecord,
    StopKind, TableState, TableStatus,
};
use crate::sharding::topology::Membership;

/// How soon an internal cluster is promoted again when it is still seen
/// non-primary (the statement may still be on its way).
const PROMOTE_AGAIN_AFTER: Duration = Duration::from_secs(2);

impl MasterEngine {
    /// Makes the surviving copies of replica sets that lost their majority
    /// writable again, as soon as a survivor reports `non-primary`: before
    /// any copying starts. Only where the members that are down cannot be a
    /// majority of the set by themselves, so at most one side ever accepts
    /// writes. Members that are up but no longer run the cluster (they
    /// deleted it while the survivor was away) count as gone for good.
    pub(super) fn promote(&mut self, snap: &Snapshot, out: &mut Vec<Command>) {
        let Some(members) = snap.members.as_ref().filter(|m| m.primary) else {
            return;
        };
        for set in rebalance::degraded_sets(&snap.clusters, &members.active, snap.scope.cluster()) {
            if !set.may_promote() {
                continue;
            }
            let non_primary = set.survivors.iter().find(|n| {
                snap.clusters.get(*n).is_some_and(|reports| {
                    reports
                        .iter()
                        .any(|r| r.name == set.cluster && r.status == "non-primary")
                })
            });
            let Some(node) = non_primary else {
                continue;
            };
            let recent = self
                .promoted
                .get(&set.cluster)
                .is_some_and(|at| snap.now.duration_since(*at) < PROMOTE_AGAIN_AFTER);
            if recent {
                continue;
            }
            self.promoted.insert(set.cluster.clone(), snap.now);
            out.push(Command::Bootstrap {
                node: node.clone(),
                cluster: set.cluster.clone(),
            });
            out.push(Command::Log(Event::Promoted {
                cluster: set.cluster,
                node: node.clone(),
                down: set.down,
                left: set.left,
            }));
        }
    }

    /// Starts rebalances of the tables whose placement does not fit the
    /// membership, one per table, up to the configured number at a time.
    pub(super) fn rebalance(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        out: &mut Vec<Command>,
    ) {
        let Some(members) = snap.members.as_ref().filter(|m| m.primary) else {
            return;
        };
        if snap.scope.cluster().is_none() || !config.rebalance.automatic {
            return;
        }
        let running = snap
            .groups
            .values()
            .filter(|g| g.kind == GroupKind::Rebalance && !g.status.is_final() && !g.is_settled())
            .count();
        let mut room = config.rebalance.parallel.saturating_sub(running);
        let clusters = snap.cluster_map();
        for table in snap
            .placement
            .iter()
            .map(|r| &r.table)
            .collect::<BTreeSet<_>>()
        {
            if room == 0 {
                break;
            }
            let Some(state) = snap.tables.get(table) else {
                continue;
            };
            if state.status != TableStatus::Done
                || self.started_now.contains(table)
                || self.busy(snap, config, table, out)
            {
                continue;
            }
            if held_by_stop(snap, table) {
                let why = format!(
                    "Skipping rebalance for table {table}: an operator stopped its rebalance; \
                     REBALANCE TABLE {table} starts one again"
                );
                self.log_skip(table, why, out);
                continue;
            }
            let rows = snap.placement_of(table);
            let (group, verdict) = self.consider(snap, table, state, &rows, members, &clusters);
            match verdict {
                Verdict::Balanced => {
                    self.skips.remove(table);
                    self.losses.remove(table);
                }
                Verdict::Skip(why) => self.log_skip(table, why, out),
                Verdict::Rebalance(planned) => {
                    if self.delayed(snap, config, table, &planned) {
                        continue;
                    }
                    self.skips.remove(table);
                    self.start_rebalance(snap, table, &rows, group, *planned, out);
                    room -= 1;
                }
            }
        }
    }

    /// Logs why `table` is not rebalanced, once per distinct reason.
    /// What a rebalance of `table` (placement `rows`) would do now, and the
    /// name its group will have, which it is planned under: the clusters it makes are named
    /// after it. The automatic rebalance, `REBALANCE TABLE` and `EXPLAIN
    /// REBALANCE` all plan here.
    pub(super) fn consider(
        &self,
        snap: &Snapshot,
        table: &TableName,
        state: &TableState,
        rows: &[PlacementRow],
        members: &Membership,
        clusters: &ClusterMap,
    ) -> (GroupName, Verdict) {
        let group = GroupName::new(GroupKind::Rebalance, table, self.peek_id());
        let verdict = rebalance::consider(
            table,
            state,
            rows,
            rebalance::Cluster {
                members,
                registered: &snap.registered,
                drained: &snap.drained,
                clusters,
            },
            &group,
        );
        (group, verdict)
    }

    fn log_skip(&mut self, table: &TableName, why: String, out: &mut Vec<Command>) {
        if self.skips.get(table) != Some(&why) {
            self.skips.insert(table.clone(), why.clone());
            out.push(Command::Log(Event::RebalanceSkipped(why)));
        }
    }

    /// Whether `table` has an operation under way, or its rebalances
    /// failed too recently or too often (logged once).
    fn busy(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        table: &TableName,
        out: &mut Vec<Command>,
    ) -> bool {
        let open = snap
            .open_groups_of(table)
            .any(|(_, g)| !(g.kind == GroupKind::Rebalance && g.is_settled()));
        if open {
            return true;
        }
        let held = match self.watchdog.hold(table, snap.now, &config.rebalance) {
            Hold::Free => false,
            Hold::BackingOff => true,
            Hold::GaveUp(count) => {
                let why = format!(
                    "Skipping rebalance for table {table}: its last {count} rebalances failed; \
                     REBALANCE TABLE {table} tries again"
                );
                self.log_skip(table, why, out);
                true
            }
        };
        held || self.shares_a_cluster_in_flight(snap, table)
    }

    /// A loss is acted on only once it has lasted the configured delay.
    fn delayed(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        table: &TableName,
        planned: &Planned,
    ) -> bool {
        if planned.inactive.is_empty() {
            self.losses.remove(table);
            return false;
        }
        let since = match self.losses.get(table) {
            Some((inactive, since)) if *inactive == planned.inactive => *since,
            _ => {
                self.losses
                    .insert(table.clone(), (planned.inactive.clone(), snap.now));
                snap.now
            }
        };
        snap.now.duration_since(since) < config.rebalance.delay
    }

    pub(super) fn start_rebalance(
        &mut self,
        snap: &Snapshot,
        table: &TableName,
        rows: &[PlacementRow],
        group: GroupName,
        planned: Planned,
        out: &mut Vec<Command>,
    ) -> usize {
        let scope = rows
            .first()
            .map(|r| r.scope.clone())
            .unwrap_or_else(|| snap.scope.clone());
        // Every node that holds or will hold the wrapper keeps a row, with
        // no shards where it holds none: a later DROP removes its wrapper.
        let mut nodes: BTreeSet<NodeId> = planned.target.nodes();
        nodes.extend(rows.iter().map(|r| r.node.clone()));
        nodes.extend(planned.steps.iter().map(|s| s.node.clone()));
        let nodes: Vec<NodeId> = nodes.into_iter().collect();
        let target = rows_of(&scope, table, &planned.target, &nodes)
            .into_iter()
            .map(|r| (r.node, r.shards))
            .collect();
        if !planned.inactive.is_empty() {
            out.push(Command::Log(Event::RebalanceDueToInactive(
                rebalance::inactive_line(&planned.inactive),
            )));
        }
        self.hold_clusters_of(snap, table);
        let first = self.next_id();
        debug_assert_eq!(group, GroupName::new(GroupKind::Rebalance, table, first));
        let rows = enqueue_group(&mut *self, &group, first, &planned.steps, snap.now_ms);
        let count = rows.len();
        let mut record = GroupRecord::committed(
            GroupKind::Rebalance,
            table,
            self.epoch,
            &self.me,
            snap.now_ms,
        );
        record.rebalance = Some(RebalanceRecord {
            target,
            reason: planned.reason.to_string(),
            deferred: planned.deferred.clone(),
            settled: false,
            steps_total: rows.len() as u64,
            work_total: rows
                .iter()
                .map(|r| super::operator::step_cost(&r.action))
                .sum(),
            moves: planned.moves.clone(),
            copies: planned.copies,
            ..RebalanceRecord::default()
        });
        out.push(Command::Enqueue(rows));
        out.push(Command::PutGroup(group.clone(), record));
        out.push(Command::WakeExecutors);
        out.push(Command::Log(Event::RebalanceStarted {
            table: table.clone(),
            group: group.clone(),
            reason: planned.reason,
            copies: planned.copies,
        }));
        self.groups_seen.insert(group, snap.now);
        count
    }

    /// Follows a committed rebalance: aborted when a step failed for good or
    /// a node it needs left; settled (its placement committed) once every
    /// step outside the deferred nodes is done; done when those are too.
    pub(super) fn rebalance_progress(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        name: &GroupName,
        rec: &GroupRecord,
        out: &mut Vec<Command>,
    ) {
        let Some(plan) = &rec.rebalance else {
            return;
        };
        let table = &rec.table;
        let unfinished = snap.unfinished(name);
        let deferred: BTreeSet<&NodeId> = plan.deferred.iter().collect();
        if let Some(error) = progress_error(snap, config, unfinished, rec, plan) {
            if plan.settled {
                // The placement is committed: what failed is the clean-up
                // on a node that was down. It is not undone.
                return give_up_deferred(snap, name, rec, error, out);
            }
            self.watchdog.failed(table, snap.now);
            return abort(name, rec, error, out);
        }
        if !plan.settled {
            if let Some(error) = self.stall(snap, config, name, rec, unfinished) {
                self.watchdog.failed(table, snap.now);
                return abort(name, rec, error, out);
            }
        }
        // Retired copies and emptied clusters do not hold the placement
        // back: the wrappers route to the new copies by then, and deleting a
        // cluster takes about 5 s on real searchd.
        let pending_here = unfinished
            .iter()
            .any(|r| !deferred.contains(&r.node) && !is_clean_up(r));
        if !plan.settled && !pending_here {
            let mut settled = rec.clone();
            if settled.settle().is_err() {
                return;
            }
            let rows = target_rows(snap, table, plan);
            // The placement first: a master that stops between the two
            // writes leaves a group that is settled again by the next one
            // (the same placement written again), never a settled group
            // whose placement was not written.
            self.watchdog.cleared(table);
            out.push(Command::ReplacePlacement(table.clone(), rows));
            out.push(Command::PutGroup(name.clone(), settled));
            out.push(Command::Log(Event::RebalanceCompleted {
                table: table.clone(),
            }));
            out.push(Command::StepAgain);
            return;
        }
        let forgotten = snap.forgotten();
        if plan.settled
            && !unfinished.is_empty()
            && unfinished.iter().all(|r| forgotten.contains(&r.node))
        {
            return forget(snap, name, rec, &forgotten, out);
        }
        if plan.settled && unfinished.is_empty() {
            let mut done = rec.clone();
            let ended = if done.stop_requested().is_some() {
                done.stopped(snap.now_ms)
            } else {
                done.complete(snap.now_ms)
            };
            if ended.is_ok() {
                out.push(Command::PutGroup(name.clone(), done));
            }
        }
    }
}

impl MasterEngine {
    /// Why the running rebalance `name` is undone as stalled, if it is (see
    /// `watchdog`); a paused one rests.
    fn stall(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        name: &GroupName,
        rec: &GroupRecord,
        unfinished: &[QueueRow],
    ) -> Option<String> {
        if rec.is_paused() {
            self.watchdog.rest(name);
            return None;
        }
        let liveness = &self.liveness;
        let watched = self.groups_seen.get(name).copied().unwrap_or(snap.now);
        let quiet = self.watchdog.stalled(
            name,
            unfinished,
            (watched, snap.now),
            config.rebalance.stall_after,
            |node| liveness.beating(node, snap.now, config.liveness),
        )?;
        let deferred = rec
            .rebalance
            .as_ref()
            .map(|p| &p.deferred[..])
            .unwrap_or(&[]);
        let waiting = unfinished
            .iter()
            .filter(|r| !deferred.contains(&r.node))
            .map(|r| r.node.as_str())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
            .join(", ");
        Some(format!(
            "table '{}': the rebalance made no progress for {} s and none of its steps is running \
             (they wait on {waiting}); it is undone and planned again",
            rec.table,
            quiet.as_secs()
        ))
    }
}

/// Why a running rebalance has to end now, if it has: a step failed for
/// good, a node it needs left (before it settled), or an immediate stop.
fn progress_error(
    snap: &Snapshot,
    config: &EngineConfig,
    unfinished: &[QueueRow],
    rec: &GroupRecord,
    plan: &RebalanceRecord,
) -> Option<String> {
    let table = &rec.table;
    let live = snap.live();
    let deferred: BTreeSet<&NodeId> = plan.deferred.iter().collect();
    let failed = unfinished.iter().find(|r| config.retry.is_final(r));
    let left = unfinished
        .iter()
        .find(|r| !deferred.contains(&r.node) && !live.contains(&r.node));
    let error = match (failed, left) {
        (Some(row), _) => Some(format!(
            "table '{table}': rebalance failed on node {}: {}",
            row.node,
            snap.failures.get(&row.id).map_or_else(
                || "a step failed without a recorded reason".to_string(),
                |f| crate::sharding::wording::daemon_error(&f.error)
            )
        )),
        (None, Some(row)) if !plan.settled => Some(format!(
            "table '{table}': node {} left during the rebalance; it is undone and planned again",
            row.node
        )),
        _ => None,
    };
    // An immediate stop undoes the group like a failure would, until its
    // placement is committed (then it can only finish).
    error.or_else(|| {
        (rec.stop_requested() == Some(StopKind::Immediate) && !plan.settled)
            .then(|| format!("table '{table}': stopped by an operator (STOP REBALANCE IMMEDIATE)"))
    })
}

/// Ends a settled rebalance whose only steps left wait for nodes removed
/// from the cluster for good: they never run (executors run no row of a
/// finished group, and the group's rows go after the retention period), and
/// the nodes leave the table's placement.
fn forget(
    snap: &Snapshot,
    name: &GroupName,
    rec: &GroupRecord,
    forgotten: &BTreeSet<NodeId>,
    out: &mut Vec<Command>,
) {
    let mut done = rec.clone();
    if done.complete(snap.now_ms).is_err() {
        return;
    }
    let kept: Vec<PlacementRow> = snap
        .placement_of(&rec.table)
        .into_iter()
        .filter(|r| !forgotten.contains(&r.node))
        .collect();
    let nodes: Vec<NodeId> = snap
        .unfinished(name)
        .iter()
        .map(|r| r.node.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    out.push(Command::ReplacePlacement(rec.table.clone(), kept));
    out.push(Command::PutGroup(name.clone(), done));
    out.push(Command::Log(Event::Forgotten {
        table: rec.table.clone(),
        nodes,
    }));
}

/// The placement rows of the plan's target, in the table's scope.
fn target_rows(snap: &Snapshot, table: &TableName, plan: &RebalanceRecord) -> Vec<PlacementRow> {
    let scope = snap
        .placement_of(table)
        .first()
        .map(|r| r.scope.clone())
        .unwrap_or_else(|| snap.scope.clone());
    plan.target
        .iter()
        .map(|(node, shards)| PlacementRow {
            scope: scope.clone(),
            node: node.clone(),
            table: table.clone(),
            shards: shards.clone(),
        })
        .collect()
}

/// Whether an operator stopped the last rebalance of `table`: it is not
/// rebalanced automatically until `REBALANCE TABLE` (or a DROP) clears that.
fn held_by_stop(snap: &Snapshot, table: &TableName) -> bool {
    snap.groups
        .values()
        .any(|g| g.table == *table && g.status == GroupStatus::Stopped)
}

/// A step that only removes what the new placement no longer uses.
fn is_clean_up(row: &QueueRow) -> bool {
    matches!(
        row.action,
        Action::Ddl(Ddl::DeleteCluster { .. } | Ddl::DropShard { .. })
    )
}

/// Ends a settled rebalance whose clean-up on a returned node failed: its
/// remaining steps are not run; what they would have removed stays there.
fn give_up_deferred(
    snap: &Snapshot,
    name: &GroupName,
    rec: &GroupRecord,
    error: String,
    out: &mut Vec<Command>,
) {
    let mut done = rec.clone();
    if done.complete(snap.now_ms).is_err() {
        return;
    }
    done.error = Some(error.clone());
    out.push(Command::PutGroup(name.clone(), done));
    out.push(Command::Log(Event::CleanupFailed {
        table: rec.table.clone(),
        error,
    }));
}

/// The internal clusters rebalances under way still put shards into: the
/// ones their remaining steps create, join or add to (a rebalance makes
/// clusters of its own names, so the placement it aims at says nothing of
/// them).
pub(super) fn running_clusters(snap: &Snapshot) -> BTreeSet<ClusterName> {
    snap.groups
        .iter()
        .filter(|(_, g)| g.kind == GroupKind::Rebalance && !g.status.is_final())
        .flat_map(|(name, _)| snap.unfinished(name))
        .filter_map(|row| match &row.action {
            Action::Ddl(
                Ddl::CreateCluster { cluster, .. }
                | Ddl::JoinCluster { cluster, .. }
                | Ddl::JoinTempCluster { cluster, .. }
                | Ddl::AlterClusterAdd { cluster, .. },
            ) => Some(cluster.clone()),
            _ => None,
        })
        .collect()
}
