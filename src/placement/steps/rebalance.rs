//! A rebalance plan as queue steps: copy → verify → switch → retire, with
//! every write landing on the copy that is shipped, and every copy shipped by
//! a state transfer (`JOIN CLUSTER`), the one way searchd copies a table that
//! is being written to as one consistent whole.
//!
//! The steps come in phases; each phase waits for the one before it, and
//! within a phase all shards proceed in parallel:
//!
//! 1. **Route to donors.** Every changed shard that is in a replication
//!    cluster is routed, in the wrappers of every live node, to its donor
//!    alone. From here until phase 7 writes reach only the copy that will be
//!    shipped, so none is lost when the shard leaves its cluster.
//! 2. **Detach** those shards from the clusters the donors report them in
//!    (after `pc.bootstrap` when the live members no longer form a majority).
//! 3. **Temporary copies.** A shard whose donor does not stay a holder is
//!    first copied to one new holder through a temporary cluster: create it
//!    on the donor, add the shard, join it from the target (the join ships
//!    the table), verify the copy.
//! 4. **Route to the new donors** of those shards, then (5) detach them from
//!    the temporary clusters and delete those.
//! 6. **New replica sets.** The donor of each new replica set creates a
//!    cluster of the plan's own (never a name used before: a node that was
//!    away may still run an old cluster under its old name) and adds the
//!    shards while it is the only member, so nothing is shipped yet; every
//!    other holder then joins it, which ships the shards as they are at that
//!    moment with every later write, and each copy is verified.
//! 7. **Final wrappers** on every node, the full replica lists restored.
//! 8. **Retire** the replicas that are no longer wanted and delete the old
//!    clusters the plan leaves empty.
//!
//! Rollback is possible until phase 8 starts; retiring only happens after
//! every new copy is verified and routed to.

use std::collections::{BTreeMap, BTreeSet};

use super::create::create_steps_with_existing;
use super::ddl::{self, Ddl};
use super::wrapper::{routed_wrapper, Route, Routing};
use super::{Action, Step, StepContext, StepList, TableDdl};
use crate::ids::{ClusterName, NodeId};
use crate::placement::names::{fresh_cluster_name, temp_cluster_name};
use crate::placement::plan::donor;
use crate::placement::{NodeState, Placement, ShardTable, TablePlan};

/// The steps that take `plan.current` to `plan.target`. A plan without a
/// current placement is a CREATE, with wrappers on every live node.
pub fn rebalance_steps(ddl: &TableDdl, plan: &TablePlan, ctx: &StepContext<'_>) -> Vec<Step> {
    let state = |n: &NodeId| ctx.nodes.get(n).copied().unwrap_or(NodeState::Inactive);
    let Some(current) = &plan.current else {
        let live: Vec<NodeId> = ctx
            .nodes
            .keys()
            .filter(|n| state(n).is_live())
            .cloned()
            .collect();
        return create_steps_with_existing(ddl, &plan.target, &live, &ctx.clusters.names());
    };
    let changes: Vec<ShardChange> = current
        .shards()
        .filter_map(|(shard, _)| ShardChange::new(ddl, current, &plan.target, shard, &state, ctx))
        .collect();
    let mut builder = Builder {
        ddl,
        list: StepList::default(),
        wrappers: ctx
            .nodes
            .iter()
            .map(|(node, s)| {
                let existing =
                    (*s != NodeState::New).then(|| super::wrapper_ddl(ddl, current, node));
                (node.clone(), existing)
            })
            .collect(),
    };
    let live_nodes: Vec<NodeId> = ctx
        .nodes
        .keys()
        .filter(|n| state(n).is_live())
        .cloned()
        .collect();
    let all_nodes: Vec<NodeId> = ctx.nodes.keys().cloned().collect();
    let mirrors = current.max_replicas() >= 2 || plan.target.max_replicas() >= 2;

    // 1. Route clustered shards to their donors.
    let mut routing = Routing {
        mirrors,
        shards: Routing::of(current).shards,
    };
    for change in changes.iter().filter(|c| c.old_cluster.is_some()) {
        routing.shards.insert(
            change.shard,
            Route {
                holders: vec![change.donor.clone()],
                clustered: true,
            },
        );
    }
    let routed = if changes.iter().any(|c| c.old_cluster.is_some()) {
        builder.switch_wrappers(&live_nodes, &routing, &[])
    } else {
        Vec::new()
    };

    // 2. Detach from the old clusters, grouped per (cluster, donor).
    let mut detaches: BTreeMap<ClusterName, Vec<usize>> = BTreeMap::new();
    let mut detach_of_shard: BTreeMap<u32, usize> = BTreeMap::new();
    for ((cluster, donor), group) in grouped(&changes, |c| {
        c.old_cluster.clone().map(|h| (h, c.donor.clone()))
    }) {
        let mut wait_for = builder.list.cross_node(&donor, &routed);
        let old = &group[0].old;
        let live_members = old.iter().filter(|n| state(n).is_live()).count();
        if 2 * live_members <= old.len() && !detaches.contains_key(&cluster) {
            let index = builder
                .list
                .ddl(&donor, ddl::bootstrap_cluster(&cluster), None);
            builder.list.steps[index].wait_for = std::mem::take(&mut wait_for);
        }
        let tables: Vec<ShardTable> = group.iter().map(|c| c.table.clone()).collect();
        let index = builder.list.push(
            &donor,
            Action::Ddl(ddl::alter_cluster_drop(&cluster, &tables)),
            Some(Action::Ddl(ddl::alter_cluster_add(&cluster, &tables))),
            wait_for,
        );
        detaches.entry(cluster).or_default().push(index);
        for change in group {
            detach_of_shard.insert(change.shard, index);
        }
    }

    // 3. Copy shards whose donor leaves through temporary clusters.
    let mut barrier: Vec<usize> = detaches.values().flatten().copied().collect();
    let mut temp_verifies = Vec::new();
    for change in &changes {
        let Some((temp, target)) = &change.temp else {
            continue;
        };
        builder.list.ddl(
            &change.donor,
            ddl::create_cluster(temp),
            Some(ddl::delete_cluster(temp)),
        );
        let added = builder.list.ddl(
            &change.donor,
            ddl::alter_cluster_add(temp, std::slice::from_ref(&change.table)),
            Some(ddl::alter_cluster_drop(
                temp,
                std::slice::from_ref(&change.table),
            )),
        );
        builder.rollback_only(target, ddl::drop_shard(&ddl.table, change.shard));
        builder.list.push(
            target,
            Action::Ddl(ddl::join_temp_cluster(temp, &change.donor)),
            Some(Action::Ddl(ddl::delete_cluster(temp))),
            vec![added],
        );
        temp_verifies.push(builder.verify(target, &change.table, &change.donor, &[]));
    }

    // 4. Route those shards to their new donors; 5. leave the temporary
    // clusters.
    let mut temp_detach_of_shard: BTreeMap<u32, usize> = BTreeMap::new();
    if !temp_verifies.is_empty() {
        for change in &changes {
            let holders = match &change.temp {
                Some((_, target)) => vec![target.clone()],
                None if change.old_cluster.is_some() => vec![change.donor.clone()],
                None => continue,
            };
            routing.shards.insert(
                change.shard,
                Route {
                    holders,
                    clustered: change.temp.is_some(),
                },
            );
        }
        let rerouted = builder.switch_wrappers(&live_nodes, &routing, &temp_verifies);
        for change in &changes {
            let Some((temp, _)) = &change.temp else {
                continue;
            };
            let wait_for = builder.list.cross_node(&change.donor, &rerouted);
            let index = builder.list.push(
                &change.donor,
                Action::Ddl(ddl::alter_cluster_drop(
                    temp,
                    std::slice::from_ref(&change.table),
                )),
                Some(Action::Ddl(ddl::alter_cluster_add(
                    temp,
                    std::slice::from_ref(&change.table),
                ))),
                wait_for,
            );
            builder
                .list
                .ddl(&change.donor, ddl::delete_cluster(temp), None);
            temp_detach_of_shard.insert(change.shard, index);
        }
    }
    barrier.extend(temp_verifies);
    barrier.extend(temp_detach_of_shard.values());

    // 6. New replica sets: a fresh cluster on the donor, joined by the
    // other holders.
    for ((cluster, owner), group) in grouped(&changes, |c| {
        c.new_cluster.clone().map(|h| (h, c.attach_donor().clone()))
    }) {
        let detached: Vec<usize> = group
            .iter()
            .filter_map(|c| {
                temp_detach_of_shard
                    .get(&c.shard)
                    .or(detach_of_shard.get(&c.shard))
            })
            .copied()
            .collect();
        let wait_for = builder.list.cross_node(&owner, &detached);
        builder.list.push(
            &owner,
            Action::Ddl(ddl::create_cluster_if_not_exists(&cluster)),
            Some(Action::Ddl(ddl::delete_cluster(&cluster))),
            wait_for,
        );
        let tables: Vec<ShardTable> = group.iter().map(|c| c.table.clone()).collect();
        let added = builder.list.ddl(
            &owner,
            ddl::alter_cluster_add(&cluster, &tables),
            Some(ddl::alter_cluster_drop(&cluster, &tables)),
        );
        barrier.push(added);
        for member in group[0].new.iter().filter(|m| **m != owner) {
            for change in group.iter().filter(|c| c.added.contains(member)) {
                builder.rollback_only(member, ddl::drop_shard(&ddl.table, change.shard));
            }
            let wait_for = builder.list.cross_node(member, &[added]);
            let joined = builder.list.push(
                member,
                Action::Ddl(ddl::join_cluster(&cluster, &owner)),
                Some(Action::Ddl(ddl::delete_cluster(&cluster))),
                wait_for,
            );
            for change in &group {
                barrier.push(builder.verify(member, &change.table, &owner, &[joined]));
            }
        }
    }

    // 7. Final wrappers everywhere.
    let settled = builder.switch_wrappers(&all_nodes, &Routing::of(&plan.target), &barrier);
    let settled_live: Vec<usize> = settled
        .into_iter()
        .filter(|&i| state(&builder.list.steps[i].node).is_live())
        .collect();

    // 8. Retire, then delete the old clusters the plan leaves empty.
    let deleted: BTreeSet<ClusterName> = detaches
        .keys()
        .filter(|cluster| {
            let leaving: BTreeSet<String> = changes
                .iter()
                .filter(|c| c.old_cluster.as_ref() == Some(*cluster))
                .map(|c| c.table.to_string())
                .collect();
            changes
                .iter()
                .filter(|c| c.old_cluster.as_ref() == Some(*cluster))
                .all(|c| {
                    ctx.clusters
                        .tables_in(&c.donor, cluster)
                        .is_subset(&leaving)
                })
        })
        .cloned()
        .collect();
    for change in &changes {
        for node in &change.retired {
            if state(node).is_live() {
                let wait_for = builder.list.cross_node(node, &settled_live);
                builder.list.push(
                    node,
                    Action::Ddl(ddl::drop_shard(&ddl.table, change.shard)),
                    None,
                    wait_for,
                );
                continue;
            }
            // Runs when the node returns: it may still hold the shard in
            // the old cluster, which makes a plain DROP fail. A cluster this
            // plan deletes is gone on the live members, so the returning
            // node, the only one still having it, deletes it for itself
            // (the tables stay as local tables); a cluster still in use is
            // rejoined on return, and the shard detached from it.
            let mut wait_for = builder.list.cross_node(node, &settled_live);
            if let Some(cluster) = &change.old_cluster {
                let after: Vec<usize> = detach_of_shard
                    .get(&change.shard)
                    .copied()
                    .into_iter()
                    .collect();
                wait_for.extend(builder.list.cross_node(node, &after));
                wait_for.sort_unstable();
                wait_for.dedup();
                let leave = if deleted.contains(cluster) {
                    ddl::delete_cluster(cluster)
                } else {
                    ddl::alter_cluster_drop(cluster, std::slice::from_ref(&change.table))
                };
                builder.list.push(node, Action::Ddl(leave), None, wait_for);
                wait_for = Vec::new();
            }
            builder.list.push(
                node,
                Action::Ddl(ddl::drop_shard(&ddl.table, change.shard)),
                None,
                wait_for,
            );
        }
    }
    for (cluster, indexes) in detaches {
        if !deleted.contains(&cluster) {
            continue;
        }
        let Some(owner) = changes
            .iter()
            .find(|c| c.old_cluster.as_ref() == Some(&cluster))
            .map(|c| c.donor.clone())
        else {
            continue;
        };
        let owner = &owner;
        let mut after = indexes;
        after.extend(settled_live.iter().copied());
        let wait_for = builder.list.cross_node(owner, &after);
        builder.list.push(
            owner,
            Action::Ddl(ddl::delete_cluster(&cluster)),
            None,
            wait_for,
        );
    }
    builder.list.into_steps()
}

/// One shard whose replica set changes.
struct ShardChange {
    shard: u32,
    table: ShardTable,
    old: Vec<NodeId>,
    new: Vec<NodeId>,
    /// The live holder whose copy is shipped first.
    donor: NodeId,
    /// The cluster the donor reports the shard in.
    old_cluster: Option<ClusterName>,
    /// The cluster the plan makes for the new replica set.
    new_cluster: Option<ClusterName>,
    /// When the donor does not stay: the temporary cluster and the new
    /// holder it carries the shard to, which then donates to the others.
    temp: Option<(ClusterName, NodeId)>,
    added: Vec<NodeId>,
    retired: Vec<NodeId>,
}

impl ShardChange {
    fn new(
        ddl: &TableDdl,
        current: &Placement,
        target: &Placement,
        shard: u32,
        state: &dyn Fn(&NodeId) -> NodeState,
        ctx: &StepContext<'_>,
    ) -> Option<Self> {
        let old = current.replicas(shard);
        let new = target.replicas(shard);
        if old == new {
            return None;
        }
        // A shard without a live replica cannot change (the planner keeps
        // it as it is).
        let donor = donor(old, new, state)?.clone();
        let added: Vec<NodeId> = new.iter().filter(|n| !old.contains(n)).cloned().collect();
        let temp = (!new.contains(&donor))
            .then(|| added.first())
            .flatten()
            .map(|to| {
                let name = temp_cluster_name(ctx.salt, &ddl.table, shard, &donor, to);
                (name, to.clone())
            });
        let table = ShardTable::new(&ddl.table, shard);
        let attach_donor = temp.as_ref().map_or(&donor, |(_, to)| to);
        let new_cluster = (new.len() >= 2).then(|| fresh_cluster_name(ctx.salt, new, attach_donor));
        Some(Self {
            shard,
            old_cluster: ctx.clusters.cluster_of(&donor, &table).cloned(),
            table,
            old: old.to_vec(),
            new: new.to_vec(),
            donor,
            new_cluster,
            temp,
            added,
            retired: old.iter().filter(|n| !new.contains(n)).cloned().collect(),
        })
    }

    /// The holder that attaches the shard to its new cluster.
    fn attach_donor(&self) -> &NodeId {
        self.temp.as_ref().map_or(&self.donor, |(_, to)| to)
    }
}

struct Builder<'a> {
    ddl: &'a TableDdl,
    list: StepList,
    /// The wrapper in force on each node as of the steps so far; `None` for
    /// a node that has no wrapper yet.
    wrappers: BTreeMap<NodeId, Option<Ddl>>,
}

impl Builder<'_> {
    /// Replaces the wrapper on each of `nodes` whose text changes (one
    /// drop-and-create request; a node without one gets it created), waiting
    /// for `after`. Returns the indexes of those steps.
    fn switch_wrappers(
        &mut self,
        nodes: &[NodeId],
        routing: &Routing,
        after: &[usize],
    ) -> Vec<usize> {
        let mut creates = Vec::new();
        for node in nodes {
            let wrapper = routed_wrapper(self.ddl, routing, node);
            let previous = self.wrappers.get(node).cloned().flatten();
            if previous.as_ref() == Some(&wrapper) {
                continue;
            }
            let wait_for = self.list.cross_node(node, after);
            let (action, rollback) = match previous {
                Some(previous) => (swap(&wrapper), swap(&previous)),
                None => (wrapper.clone(), ddl::drop_wrapper(&self.ddl.table)),
            };
            creates.push(self.list.push(
                node,
                Action::Ddl(action),
                Some(Action::Ddl(rollback)),
                wait_for,
            ));
            self.wrappers.insert(node.clone(), Some(wrapper));
        }
        creates
    }

    /// A step that only carries `rollback` for `node`.
    fn rollback_only(&mut self, node: &NodeId, rollback: Ddl) -> usize {
        self.list
            .push(node, Action::Noop, Some(Action::Ddl(rollback)), Vec::new())
    }

    fn verify(
        &mut self,
        node: &NodeId,
        table: &ShardTable,
        source: &NodeId,
        after: &[usize],
    ) -> usize {
        let wait_for = self.list.cross_node(node, after);
        let action = Action::VerifyCopy {
            table: table.to_string(),
            source: source.clone(),
        };
        self.list.push(node, action, None, wait_for)
    }
}

/// The swap that puts `wrapper` (a `CreateWrapper`) in place of the
/// current one, in one request.
fn swap(wrapper: &Ddl) -> Ddl {
    match wrapper {
        Ddl::CreateWrapper { table, definition } => Ddl::SwapWrapper {
            table: table.clone(),
            definition: definition.clone(),
        },
        other => other.clone(),
    }
}

/// Changes grouped by `key`, groups in order of first appearance.
fn grouped<K: PartialEq>(
    changes: &[ShardChange],
    key: impl Fn(&ShardChange) -> Option<K>,
) -> Vec<(K, Vec<&ShardChange>)> {
    let mut groups: Vec<(K, Vec<&ShardChange>)> = Vec::new();
    for change in changes {
        let Some(k) = key(change) else { continue };
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(change),
            None => groups.push((k, vec![change])),
        }
    }
    groups
}
