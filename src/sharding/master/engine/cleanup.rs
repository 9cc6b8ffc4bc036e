//! The cleanup: objects on a node that no metadata accounts for (a shard
//! table left by a failed rollback, a wrapper of a table dropped while its
//! node was away, an empty internal cluster) are removed through the queue,
//! like every other change to a node.
//!
//! It acts only on a cluster at rest (no operation open, no request waiting)
//! and only on what it found in two sweeps in a row, each at rest: an object
//! an operation makes is placed once the operation is done, or removed by
//! its rollback, so it is never taken for an orphan twice. Each table's
//! orphans go into a group of that table, so a CREATE of the table waits for
//! its cleanup; an empty cluster a CREATE would make again is kept from it
//! while its deletion is queued (`needs_a_cluster_being_deleted`).

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{NodeId, TableName};
use crate::placement::{Action, Ddl, Step};
use crate::sharding::holdings::{self, Holdings, Orphan};
use crate::sharding::master::command::{Command, Event};
use crate::sharding::master::snapshot::Snapshot;
use crate::sharding::records::{GroupKind, GroupName, GroupRecord, OpKind, TableStatus};

use super::{enqueue_group, EngineConfig, MasterEngine};

/// The table a cleanup of empty clusters is filed under (clusters belong to
/// no table). A sharded table of this name waits for such a cleanup like
/// for its own.
const CLUSTERS: &str = "sharding_cleanup";

impl MasterEngine {
    /// On a round that read what the nodes hold: queues the removal of the
    /// orphans seen at rest in this sweep and the one before.
    pub(super) fn sweep(&mut self, snap: &Snapshot, out: &mut Vec<Command>) {
        let Some(held) = &snap.holdings else {
            return;
        };
        let started = out.iter().any(|c| matches!(c, Command::Enqueue(_)));
        if started || !at_rest(snap) {
            self.suspects.clear();
            return;
        }
        let placed = holdings::placed(&snap.placement);
        let found: BTreeSet<Orphan> = holdings::orphans(&placed, held, snap.scope.cluster())
            .into_iter()
            .filter(|o| o.removable() && no_data_at_stake(o, snap, &placed, held))
            .collect();
        let confirmed: Vec<Orphan> = found.intersection(&self.suspects).cloned().collect();
        self.suspects = found.difference(&self.suspects).cloned().collect();
        let mut by_table: BTreeMap<TableName, Vec<Orphan>> = BTreeMap::new();
        for orphan in confirmed {
            let table = match &orphan {
                Orphan::Shard { shard, .. } => shard.table.clone(),
                Orphan::Wrapper { table, .. } => table.clone(),
                Orphan::Cluster { .. } => match TableName::parse(CLUSTERS) {
                    Ok(t) => t,
                    Err(_) => continue,
                },
            };
            by_table.entry(table).or_default().push(orphan);
        }
        for (table, orphans) in by_table {
            self.enqueue_cleanup(snap, &table, &orphans, out);
        }
    }

    fn enqueue_cleanup(
        &mut self,
        snap: &Snapshot,
        table: &TableName,
        orphans: &[Orphan],
        out: &mut Vec<Command>,
    ) {
        let first = self.next_id();
        let group = GroupName::new(GroupKind::Cleanup, table, first);
        let steps = removal_steps(orphans);
        let rows = enqueue_group(self, &group, first, &steps, snap.now_ms);
        let mut record =
            GroupRecord::committed(GroupKind::Cleanup, table, self.epoch, &self.me, snap.now_ms);
        record.removes = orphans.iter().map(ToString::to_string).collect();
        out.push(Command::Enqueue(rows));
        out.push(Command::PutGroup(group.clone(), record.clone()));
        out.push(Command::WakeExecutors);
        out.push(Command::Log(Event::Orphans {
            group: group.clone(),
            removes: record.removes,
        }));
        self.groups_seen.insert(group, snap.now);
    }

    /// A cleanup is done once each of its rows ran, or failed for good, or
    /// waits for a node that is down: those orphans stay and are found
    /// again by a later sweep (the group goes, so it holds nothing).
    pub(super) fn cleanup_progress(
        &mut self,
        snap: &Snapshot,
        config: &EngineConfig,
        name: &GroupName,
        rec: &GroupRecord,
        out: &mut Vec<Command>,
    ) {
        let live = snap.live();
        let left = snap.unfinished(name);
        if !left
            .iter()
            .all(|r| config.retry.is_final(r) || !live.contains(&r.node))
        {
            return;
        }
        if left.is_empty() {
            let mut done = rec.clone();
            if done.complete(snap.now_ms).is_ok() {
                out.push(Command::PutGroup(name.clone(), done));
                out.push(Command::Log(Event::Cleaned {
                    group: name.clone(),
                    removed: rec.removes.len(),
                }));
            }
            return;
        }
        for row in left {
            let error = if live.contains(&row.node) {
                snap.failures
                    .get(&row.id)
                    .map_or_else(|| "no reason recorded".into(), |f| f.error.clone())
            } else {
                "the node is down".into()
            };
            out.push(Command::Log(Event::OrphanLeft {
                group: name.clone(),
                node: row.node.clone(),
                statement: row.action.to_query_text(),
                error,
            }));
        }
        out.push(Command::PurgeGroup(name.clone()));
    }
}

/// Whether removing `orphan` loses nothing: a shard table is removed only
/// when every placed copy of its shard is on a live node that was read
/// holding it (a stale copy may be the last one while a holder is down), or
/// when its table is neither placed nor recorded as created (a table whose
/// placement is missing but whose state says it exists is an operator's
/// matter, not the cleanup's).
fn no_data_at_stake(
    orphan: &Orphan,
    snap: &Snapshot,
    placed: &holdings::Placed,
    held: &BTreeMap<NodeId, Holdings>,
) -> bool {
    let Orphan::Shard { shard, .. } = orphan else {
        return true;
    };
    let Some(by_node) = placed.get(&shard.table) else {
        return !snap
            .tables
            .get(&shard.table)
            .is_some_and(|t| t.kind == OpKind::Create && t.status == TableStatus::Done);
    };
    let holders: Vec<&NodeId> = by_node
        .iter()
        .filter(|(_, shards)| shards.contains(&shard.shard))
        .map(|(node, _)| node)
        .collect();
    !holders.is_empty()
        && holders
            .iter()
            .all(|n| held.get(*n).is_some_and(|h| h.shards.contains(shard)))
}

/// No operation open, no request waiting, and no queue row of an unknown
/// group (rows of finished groups never run again).
fn at_rest(snap: &Snapshot) -> bool {
    snap.groups.values().all(|g| g.status.is_final())
        && snap
            .tables
            .values()
            .all(|t| !matches!(t.status, TableStatus::Requested | TableStatus::Processing))
        && snap.unfinished.keys().all(|g| snap.groups.contains_key(g))
}

/// The statements that remove `orphans`: wrappers first, then, once every
/// wrapper is gone, shard tables and clusters.
fn removal_steps(orphans: &[Orphan]) -> Vec<Step> {
    let step = |node, ddl, wait_for| Step {
        node,
        action: Action::Ddl(ddl),
        rollback: None,
        wait_for,
    };
    let mut steps: Vec<Step> = orphans
        .iter()
        .filter_map(|o| match o {
            Orphan::Wrapper { node, table } => Some(step(
                node.clone(),
                Ddl::DropWrapper {
                    table: table.clone(),
                },
                Vec::new(),
            )),
            _ => None,
        })
        .collect();
    let wrappers: Vec<usize> = (0..steps.len()).collect();
    for orphan in orphans {
        let ddl = match orphan {
            Orphan::Shard { shard, .. } => Ddl::DropShard {
                shard: shard.clone(),
            },
            Orphan::Cluster { cluster, .. } => Ddl::DeleteCluster {
                cluster: cluster.clone(),
            },
            Orphan::Wrapper { .. } => continue,
        };
        steps.push(step(orphan.node().clone(), ddl, wrappers.clone()));
    }
    steps
}
