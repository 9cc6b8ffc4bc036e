//! DROP of a sharded table.

use std::collections::{BTreeMap, BTreeSet};

use super::ddl;
use super::{Step, StepList};
use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::{ClusterMap, Placement, ShardTable};

/// The queue items of a DROP: every wrapper first (so nothing routes to a
/// shard being removed), then the replicated shards are detached from the
/// clusters their smallest holder reports them in (one statement per
/// cluster), then every holder drops its copy after that detach, and finally
/// every cluster the drop leaves empty (and not in
/// `clusters_in_use_elsewhere`) is deleted once, after its detaches, by the
/// member with the fewest deletions so far.
///
/// A drop only moves forward, so there are no rollbacks. The daemon refuses
/// to DROP while a member is down, so every holder is live and no cluster
/// needs `pc.bootstrap` (PHP Buddy sends it on healthy clusters too).
pub fn drop_steps(
    table: &TableName,
    placement: &Placement,
    wrapper_nodes: &[NodeId],
    clusters: &ClusterMap,
    clusters_in_use_elsewhere: &BTreeSet<ClusterName>,
) -> Vec<Step> {
    let mut list = StepList::default();
    let wrappers: BTreeSet<&NodeId> = wrapper_nodes.iter().collect();
    for node in wrappers {
        list.ddl(node, ddl::drop_wrapper(table), None);
    }
    // One detach per (cluster, holder): a single `ALTER CLUSTER … DROP t1,t2,…`
    // detaches every shard of the table that shares the replica set.
    let mut groups: BTreeMap<(ClusterName, NodeId), Vec<u32>> = BTreeMap::new();
    for (shard, replicas) in placement.shards() {
        let holder = &replicas[0];
        if let Some(cluster) = clusters.cluster_of(holder, &ShardTable::new(table, shard)) {
            groups
                .entry((cluster.clone(), holder.clone()))
                .or_default()
                .push(shard);
        }
    }
    let mut detaches: BTreeMap<ClusterName, Vec<usize>> = BTreeMap::new();
    let mut detach_of_shard: BTreeMap<u32, usize> = BTreeMap::new();
    for ((cluster, holder), shards) in groups {
        let tables: Vec<ShardTable> = shards.iter().map(|s| ShardTable::new(table, *s)).collect();
        let index = list.ddl(&holder, ddl::alter_cluster_drop(&cluster, &tables), None);
        detaches.entry(cluster).or_default().push(index);
        for shard in shards {
            detach_of_shard.insert(shard, index);
        }
    }
    for (shard, replicas) in placement.shards() {
        for node in replicas {
            let after: Vec<usize> = detach_of_shard.get(&shard).copied().into_iter().collect();
            let wait_for = list.cross_node(node, &after);
            list.push(
                node,
                super::Action::Ddl(ddl::drop_shard(table, shard)),
                None,
                wait_for,
            );
        }
    }
    let mine: BTreeSet<String> = placement
        .shards()
        .map(|(shard, _)| ShardTable::new(table, shard).to_string())
        .collect();
    // Deleting a cluster takes about 5 s on real searchd (`golden/facts.md`
    // §7) and each node's queue runs one statement at a time: the deletions
    // are spread over the clusters' members, so they run side by side.
    let emptied: Vec<(ClusterName, Vec<usize>, BTreeSet<NodeId>)> = detaches
        .into_iter()
        .filter(|(cluster, indexes)| {
            let reporter = &list.steps[indexes[0]].node;
            clusters.tables_in(reporter, cluster).is_subset(&mine)
                && !clusters_in_use_elsewhere.contains(cluster)
        })
        .map(|(cluster, indexes)| {
            let members = placement
                .shards()
                .filter(|(shard, _)| {
                    detach_of_shard
                        .get(shard)
                        .is_some_and(|i| indexes.contains(i))
                })
                .flat_map(|(_, replicas)| replicas.iter().cloned())
                .collect();
            (cluster, indexes, members)
        })
        .collect();
    let mut deleting: BTreeMap<NodeId, usize> = BTreeMap::new();
    for (k, (cluster, indexes, members)) in emptied.iter().enumerate() {
        // The least busy member, preferring one that fewer of the clusters
        // still to come could use instead.
        let later = |m: &NodeId| emptied[k + 1..].iter().filter(|c| c.2.contains(m)).count();
        let Some(owner) = members
            .iter()
            .min_by_key(|m| {
                (
                    deleting.get(*m).copied().unwrap_or(0),
                    later(m),
                    (*m).clone(),
                )
            })
            .cloned()
        else {
            continue;
        };
        *deleting.entry(owner.clone()).or_default() += 1;
        let wait_for = list.cross_node(&owner, indexes);
        let deletion = list.push(
            &owner,
            super::Action::Ddl(ddl::delete_cluster(cluster)),
            None,
            wait_for,
        );
        // The deletion reaches every member in the cluster's primary
        // component; a member away then keeps the cluster, alone, once it
        // is back. Each other member deletes it for itself after the owner
        // (`unknown cluster`, done at once, where the owner's reached it).
        for member in members.iter().filter(|m| **m != owner) {
            let wait_for = list.cross_node(member, &[deletion]);
            list.push(
                member,
                super::Action::Ddl(ddl::delete_cluster(cluster)),
                None,
                wait_for,
            );
        }
    }
    list.into_steps()
}
