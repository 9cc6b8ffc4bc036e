//! CREATE of a sharded table (spec §8.4, §8.5).

use std::collections::{BTreeMap, BTreeSet};

use super::ddl;
use super::wrapper::wrapper_ddl;
use super::{Action, Step, StepList, TableDdl};
use crate::ids::{ClusterName, NodeId};
use crate::placement::{internal_cluster_name, Placement, ShardTable};

/// The queue items of a CREATE, in PHP Buddy's order and text.
///
/// Nodes are visited in id order and each node's shards in ascending order.
/// The first (smallest) holder of a shard owns it: a single holder creates
/// the table; for a replica set, the first shard of the set creates its
/// internal cluster on the owner with `JOIN`s on the other holders waiting
/// for it, and the owner creates the table. Other holders never create it:
/// the owner's `ALTER CLUSTER … ADD`, grouped per cluster after all rows,
/// ships it. Wrappers come last on every node of `wrapper_nodes`, shards or
/// not. Rollbacks follow spec §9.5, except that the wrapper's rollback needs
/// `OPTION force=1` to work at all.
///
/// One addition to Buddy's list: the copies an `ALTER CLUSTER … ADD` ships to
/// the other holders must be undone there too (Buddy leaves them behind when
/// a CREATE is rolled back). Each other holder gets a no-op step carrying
/// `DROP TABLE IF EXISTS` of its copy as rollback, and the `ADD` waits for
/// those steps, so whenever the copy can exist its removal is on record.
pub fn create_steps(ddl: &TableDdl, placement: &Placement, wrapper_nodes: &[NodeId]) -> Vec<Step> {
    create_steps_with_existing(ddl, placement, wrapper_nodes, &BTreeSet::new())
}

/// [`create_steps`] when some internal clusters already exist because other
/// tables use the same replica sets: those are neither created nor joined
/// again (a second `JOIN` fails on the daemon), and their rollback leaves
/// them alone.
pub fn create_steps_with_existing(
    ddl: &TableDdl,
    placement: &Placement,
    wrapper_nodes: &[NodeId],
    existing: &BTreeSet<ClusterName>,
) -> Vec<Step> {
    let mut list = StepList::default();
    // Clusters in the order they were first needed, with their owner and
    // the shard tables waiting to be attached.
    let mut pending: Vec<(ClusterName, NodeId, Vec<ShardTable>, Vec<usize>)> = Vec::new();
    let mut seen: BTreeMap<ClusterName, usize> = BTreeMap::new();
    for (node, shards) in placement.rows() {
        for shard in shards {
            let replicas = placement.replicas(shard);
            if replicas.first() != Some(&node) {
                continue;
            }
            let create_table = ddl::create_shard(ddl, shard);
            let drop_table = ddl::drop_shard(&ddl.table, shard);
            if replicas.len() == 1 {
                list.ddl(&node, create_table, Some(drop_table));
                continue;
            }
            let cluster = internal_cluster_name(replicas);
            let slot = *seen.entry(cluster.clone()).or_insert_with(|| {
                if !existing.contains(&cluster) {
                    let created = list.ddl(
                        &node,
                        ddl::create_cluster_if_not_exists(&cluster),
                        Some(ddl::delete_cluster(&cluster)),
                    );
                    for other in &replicas[1..] {
                        list.push(
                            other,
                            Action::Ddl(ddl::join_cluster(&cluster, &node)),
                            Some(Action::Ddl(ddl::delete_cluster(&cluster))),
                            vec![created],
                        );
                    }
                }
                pending.push((cluster.clone(), node.clone(), Vec::new(), Vec::new()));
                pending.len() - 1
            });
            list.ddl(&node, create_table, Some(drop_table.clone()));
            pending[slot].2.push(ShardTable::new(&ddl.table, shard));
            for other in &replicas[1..] {
                let copy = list.push(
                    other,
                    Action::Noop,
                    Some(Action::Ddl(drop_table.clone())),
                    Vec::new(),
                );
                pending[slot].3.push(copy);
            }
        }
    }
    for (cluster, owner, tables, copies) in pending {
        let waits = list.cross_node(&owner, &copies);
        list.push(
            &owner,
            Action::Ddl(ddl::alter_cluster_add(&cluster, &tables)),
            Some(Action::Ddl(ddl::alter_cluster_drop(&cluster, &tables))),
            waits,
        );
    }
    let wrappers: BTreeSet<&NodeId> = wrapper_nodes.iter().collect();
    for node in wrappers {
        list.ddl(
            node,
            wrapper_ddl(ddl, placement, node),
            Some(ddl::drop_wrapper(&ddl.table)),
        );
    }
    list.into_steps()
}
