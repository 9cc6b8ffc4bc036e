//! CREATE of a sharded table (spec §8.4, §8.5).

use std::collections::{BTreeMap, BTreeSet};

use super::ddl;
use super::wrapper::wrapper_ddl;
use super::{Action, Step, StepList, TableDdl};
use crate::ids::{ClusterName, NodeId};
use crate::placement::names::fresh_cluster_name;
use crate::placement::{internal_cluster_name, Placement, ShardTable};

/// Tables per `ALTER CLUSTER … ADD`. Real searchd's cost of one statement
/// grows faster than the list (`golden/facts.md` §8: 1 table 13–18 ms, 100
/// tables 0.3–3.4 s, 300 tables 2.7 s, 3000 tables no answer within 60 s);
/// the fit through those points (`sim/src/cost.rs`) is cheapest per table
/// around 40.
pub const ADD_BATCH: usize = 40;

/// Shards of one replica set above which the set's shards are spread over
/// several clusters, one per member as owner. Attaching is serialised per
/// cluster (Galera orders it totally), about 9 ms per table at best, so 3000
/// shards in one cluster take 28 s of attaching on one node; every further
/// cluster costs each other member one `JOIN` (about 1 s), which pays off
/// from a few hundred shards on.
pub const SHARDS_PER_CLUSTER: usize = 300;

/// The queue items of a CREATE, in PHP Buddy's text.
///
/// A single holder creates its shard's table. The shards of a replica set go
/// into its internal cluster (`internal_cluster_name`); a set with more than
/// [`SHARDS_PER_CLUSTER`] shards is split into up to one cluster per member,
/// the further ones named after the table. Each cluster has an owner that
/// creates it (unless it exists because another table uses it: then it is
/// neither created nor joined again, and its rollback leaves it alone),
/// creates the tables and attaches them in batches of [`ADD_BATCH`] once the
/// other members have joined; the other members never create the tables, the
/// owner's `ALTER CLUSTER … ADD` ships them. Owners are chosen so that joins
/// are spread over the nodes (each node's queue runs one statement at a time,
/// and a `JOIN` costs about a second); PHP Buddy makes the smallest holder
/// own every set, which piles the joins up on the largest nodes. Wrappers
/// come last on every node of `wrapper_nodes`, shards or not. Rollbacks
/// follow spec §9.5, except that the wrapper's rollback needs
/// `OPTION force=1` to work at all.
///
/// One addition to Buddy's list: the copies an `ALTER CLUSTER … ADD` ships to
/// the other holders must be undone there too (Buddy leaves them behind when
/// a CREATE is rolled back), and must not replace a table that was there
/// before (the daemon overwrites a same-named table silently). Each other
/// holder gets a step that checks no such table exists and carries
/// `DROP TABLE IF EXISTS` of its copy as rollback, and the `ADD` waits for
/// those steps, so whenever the copy can exist its removal is on record.
pub fn create_steps(ddl: &TableDdl, placement: &Placement, wrapper_nodes: &[NodeId]) -> Vec<Step> {
    create_steps_with_existing(ddl, placement, wrapper_nodes, &BTreeSet::new())
}

/// One cluster a CREATE fills.
struct Chunk {
    cluster: ClusterName,
    members: Vec<NodeId>,
    owner: NodeId,
    shards: Vec<u32>,
    exists: bool,
}

impl Chunk {
    /// The members that receive the tables from the owner.
    fn others(&self) -> impl Iterator<Item = &NodeId> {
        self.members.iter().filter(|m| **m != self.owner)
    }
}

/// [`create_steps`] when some internal clusters already exist because other
/// tables use the same replica sets.
pub fn create_steps_with_existing(
    ddl: &TableDdl,
    placement: &Placement,
    wrapper_nodes: &[NodeId],
    existing: &BTreeSet<ClusterName>,
) -> Vec<Step> {
    let mut list = StepList::default();
    let chunks = chunks(ddl, placement, existing);
    // Every node's queue runs one statement at a time, so the steps come in
    // phases across all clusters: create the clusters, join them, create
    // the tables, attach them. A node then never waits on another with
    // work of its own still queued behind the wait.
    let created: Vec<Option<usize>> = chunks
        .iter()
        .map(|chunk| {
            (!chunk.exists).then(|| {
                list.ddl(
                    &chunk.owner,
                    ddl::create_cluster_if_not_exists(&chunk.cluster),
                    Some(ddl::delete_cluster(&chunk.cluster)),
                )
            })
        })
        .collect();
    for (chunk, created) in chunks.iter().zip(&created) {
        let Some(created) = created else { continue };
        for other in chunk.others() {
            list.push(
                other,
                Action::Ddl(ddl::join_cluster(&chunk.cluster, &chunk.owner)),
                Some(Action::Ddl(ddl::delete_cluster(&chunk.cluster))),
                vec![*created],
            );
        }
    }
    for (node, shards) in placement.rows() {
        for shard in shards {
            if placement.replicas(shard) == [node.clone()] {
                list.ddl(
                    &node,
                    ddl::create_shard(ddl, shard),
                    Some(ddl::drop_shard(&ddl.table, shard)),
                );
            }
        }
    }
    // The copies an ADD ships, each with its removal on record, by shard.
    let mut copies: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for chunk in &chunks {
        for &shard in &chunk.shards {
            list.ddl(
                &chunk.owner,
                ddl::create_shard(ddl, shard),
                Some(ddl::drop_shard(&ddl.table, shard)),
            );
            for other in chunk.others() {
                let copy = list.push(
                    other,
                    Action::ExpectAbsent {
                        table: ShardTable::new(&ddl.table, shard).to_string(),
                    },
                    Some(Action::Ddl(ddl::drop_shard(&ddl.table, shard))),
                    Vec::new(),
                );
                copies.entry(shard).or_default().push(copy);
            }
        }
    }
    for chunk in &chunks {
        for batch in chunk.shards.chunks(ADD_BATCH) {
            let shipped: Vec<usize> = batch
                .iter()
                .flat_map(|s| copies.get(s).into_iter().flatten().copied())
                .collect();
            let tables: Vec<ShardTable> = batch
                .iter()
                .map(|&s| ShardTable::new(&ddl.table, s))
                .collect();
            let waits = list.cross_node(&chunk.owner, &shipped);
            list.push(
                &chunk.owner,
                Action::Ddl(ddl::alter_cluster_add(&chunk.cluster, &tables)),
                Some(Action::Ddl(ddl::alter_cluster_drop(
                    &chunk.cluster,
                    &tables,
                ))),
                waits,
            );
        }
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

/// The clusters of the replicated shards, replica sets in order of their
/// first shard, with owners that spread the joins.
fn chunks(ddl: &TableDdl, placement: &Placement, existing: &BTreeSet<ClusterName>) -> Vec<Chunk> {
    let mut sets: Vec<(Vec<NodeId>, Vec<u32>)> = Vec::new();
    for (shard, replicas) in placement.shards() {
        if replicas.len() < 2 {
            continue;
        }
        match sets.iter_mut().find(|(set, _)| set.as_slice() == replicas) {
            Some((_, shards)) => shards.push(shard),
            None => sets.push((replicas.to_vec(), vec![shard])),
        }
    }
    let mut joins: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut owned: BTreeMap<NodeId, usize> = BTreeMap::new();
    let mut out = Vec::new();
    for (set, shards) in sets {
        let count = shards
            .len()
            .div_ceil(SHARDS_PER_CLUSTER)
            .clamp(1, set.len());
        let per_chunk = shards.len().div_ceil(count);
        for (i, part) in shards.chunks(per_chunk).enumerate() {
            let shared = internal_cluster_name(&set);
            let exists = i == 0 && existing.contains(&shared);
            // The member that has joined the most so far owns the cluster
            // (it joins nothing more), then the one owning the fewest.
            let owner = set
                .iter()
                .min_by_key(|m| {
                    (
                        std::cmp::Reverse(joins.get(*m).copied().unwrap_or(0)),
                        owned.get(*m).copied().unwrap_or(0),
                        (*m).clone(),
                    )
                })
                .cloned()
                .unwrap_or_else(|| set[0].clone());
            *owned.entry(owner.clone()).or_default() += 1;
            if !exists {
                for m in set.iter().filter(|m| **m != owner) {
                    *joins.entry(m.clone()).or_default() += 1;
                }
            }
            let cluster = if i == 0 {
                shared
            } else {
                fresh_cluster_name(&format!("{}#{i}", ddl.table), &set, &owner)
            };
            out.push(Chunk {
                cluster,
                members: set.clone(),
                owner,
                shards: part.to_vec(),
                exists,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TableName;
    use crate::placement::initial_placement;

    fn ddl() -> TableDdl {
        TableDdl {
            table: TableName::parse("t").unwrap(),
            columns: Some("id bigint".into()),
            extra: String::new(),
        }
    }

    #[test]
    fn a_large_replica_set_is_spread_over_one_cluster_per_member_attached_in_batches() {
        let nodes: Vec<NodeId> = ["a:1", "b:1", "c:1"].map(NodeId::new).to_vec();
        let placement = initial_placement(&nodes, 3000, 3).unwrap();
        let steps = create_steps(&ddl(), &placement, &nodes);
        let of = |prefix: &str| -> Vec<(&str, String)> {
            steps
                .iter()
                .map(|s| (s.node.as_str(), s.action.to_query_text()))
                .filter(|(_, q)| q.starts_with(prefix))
                .collect()
        };
        // One cluster per member, each owned (created) by a different node:
        // the set's own and two named after the table.
        let created = of("CREATE CLUSTER");
        let owners: BTreeSet<&str> = created.iter().map(|(n, _)| *n).collect();
        assert_eq!(owners.len(), 3, "{created:?}");
        assert!(created[0]
            .1
            .contains(internal_cluster_name(&nodes).as_str()));
        assert!(created[1..].iter().all(|(_, q)| q.contains(" rs_")));
        // Every node joins the two clusters it does not own.
        let joins = of("JOIN CLUSTER");
        for node in &nodes {
            assert_eq!(joins.iter().filter(|(n, _)| *n == node.as_str()).count(), 2);
        }
        // Every shard attached once, never more than a batch per statement,
        // each by its cluster's owner.
        let adds = of("ALTER CLUSTER");
        let mut attached = BTreeSet::new();
        for (_, q) in &adds {
            let list = q.split(" ADD ").nth(1).unwrap();
            let tables: Vec<&str> = list.split(',').collect();
            assert!(tables.len() <= ADD_BATCH, "{q}");
            for t in tables {
                assert!(attached.insert(t.to_string()), "{t} twice");
            }
        }
        assert_eq!(attached.len(), 3000);
        assert_eq!(adds.len(), 3 * 1000usize.div_ceil(ADD_BATCH));
    }

    #[test]
    fn small_sets_keep_one_cluster_and_spread_their_joins() {
        let nodes: Vec<NodeId> = ["a:1", "b:1", "c:1"].map(NodeId::new).to_vec();
        let placement = initial_placement(&nodes, 3, 2).unwrap();
        let steps = create_steps(&ddl(), &placement, &nodes);
        let joins: Vec<&str> = steps
            .iter()
            .filter(|s| s.action.to_query_text().starts_with("JOIN CLUSTER"))
            .map(|s| s.node.as_str())
            .collect();
        let distinct: BTreeSet<&str> = joins.iter().copied().collect();
        assert_eq!((joins.len(), distinct.len()), (3, 3), "{joins:?}");
        assert!(!steps
            .iter()
            .any(|s| s.action.to_query_text().contains(" rs_")));
    }
}
