//! Reference counting of internal clusters across operations in flight.
//!
//! Tables whose replica sets are the same nodes share an internal cluster.
//! A plan decides from the clusters it sees whether to create one (CREATE),
//! add to it, or delete it once it holds nothing else (DROP, rebalance); the
//! steps run later, on several nodes. Two operations planned from the same
//! view of a shared cluster can therefore undo each other: a DROP that saw
//! its cluster empty deletes it under a CREATE planned to use it (the CREATE
//! then fails with `unknown cluster`, or succeeds with shards that are no
//! longer replicated), and the rollback of a CREATE that made a cluster
//! deletes it under a table that joined it meanwhile.
//!
//! So an operation holds the internal clusters it works on from the moment
//! it is planned until its group is finished, and a CREATE, DROP or
//! rebalance of another table that would work on one of them waits (its
//! request keeps its own timeout). [`InFlight`] is that record for one
//! master step: the clusters of every open group, plus those of each
//! operation planned earlier in the step.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{ClusterName, TableName};
use crate::placement::{ClusterMap, ShardTable};
use crate::sharding::master::snapshot::Snapshot;
use crate::sharding::records::placement::{clusters_in_use, placement_of};
use crate::sharding::records::{GroupKind, PlacementRow};

/// The internal clusters held by each table's operation under way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InFlight {
    held: BTreeMap<TableName, BTreeSet<ClusterName>>,
}

impl InFlight {
    /// The clusters of the open groups in `snap`. A rebalance whose
    /// placement is committed and that only waits for nodes that are down
    /// holds nothing: what is left of it only cleans up on those nodes.
    pub fn of(snap: &Snapshot) -> Self {
        let map = snap.cluster_map();
        let mut in_flight = Self::default();
        let open = snap.groups.values().filter(|g| {
            !(g.status.is_final() || (g.kind == GroupKind::Rebalance && g.is_settled()))
        });
        for group in open {
            let clusters = clusters_of(&map, &group.table, &snap.placement_of(&group.table));
            in_flight.hold(&group.table, clusters);
        }
        in_flight
    }

    /// Records that the operation just planned for `table` holds `clusters`.
    pub fn hold(&mut self, table: &TableName, clusters: BTreeSet<ClusterName>) {
        if !clusters.is_empty() {
            self.held.entry(table.clone()).or_default().extend(clusters);
        }
    }

    /// The operation of another table that holds one of `clusters`: its
    /// table and the first shared cluster.
    pub fn holder_of(
        &self,
        table: &TableName,
        clusters: &BTreeSet<ClusterName>,
    ) -> Option<(TableName, ClusterName)> {
        self.held
            .iter()
            .filter(|(other, _)| *other != table)
            .find_map(|(other, held)| {
                let shared = held.intersection(clusters).next()?;
                Some((other.clone(), shared.clone()))
            })
    }
}

/// The internal clusters the shards of `table` (placement `rows`) are in:
/// the ones their holders report, and the ones CREATE names after their
/// replica sets (a holder may not have reported a shard that is still being
/// made). Rows that cannot be read count every cluster they might use.
pub fn clusters_of(
    map: &ClusterMap,
    table: &TableName,
    rows: &[PlacementRow],
) -> BTreeSet<ClusterName> {
    let mut clusters = clusters_in_use(rows);
    if let Ok(placement) = placement_of(rows) {
        for (shard, replicas) in placement.shards() {
            let shard = ShardTable::new(table, shard);
            clusters.extend(
                replicas
                    .iter()
                    .filter_map(|node| map.cluster_of(node, &shard))
                    .cloned(),
            );
        }
    }
    clusters
}
