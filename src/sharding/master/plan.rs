//! One planner per group kind: what a CREATE or a DROP of a table does, from
//! the request, the live members and the committed placement of all tables.
//! Pure; the engine turns the steps into queue rows.

use std::collections::BTreeSet;

use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::{self, ClusterMap, Step, TableDdl};
use crate::sharding::records::placement::{placement_of, rows_of};
use crate::sharding::records::{OpRequest, PlacementRow, TableState};

/// A planned operation: its steps, the nodes involved, and (CREATE) the
/// placement rows to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub steps: Vec<Step>,
    pub nodes: Vec<NodeId>,
    pub placement: Option<Vec<PlacementRow>>,
}

/// The CREATE of `table`, or the user-facing reason it cannot be planned.
/// Replica sets another table already uses keep their internal cluster: it
/// is neither created again nor undone by this table's rollback. Nodes an
/// operator drained get the wrapper but no shard.
pub fn create(
    live: &BTreeSet<NodeId>,
    drained: &BTreeSet<NodeId>,
    table: &TableName,
    state: &TableState,
    request: &OpRequest,
    existing_clusters: &BTreeSet<ClusterName>,
) -> Result<Planned, String> {
    let nodes: Vec<NodeId> = live.iter().cloned().collect();
    if (request.rf as usize) > nodes.len() {
        return Err(format!(
            "The node count ({}) is lower than replication factor ({})",
            nodes.len(),
            request.rf
        ));
    }
    let eligible: Vec<NodeId> = nodes
        .iter()
        .filter(|n| !drained.contains(*n))
        .cloned()
        .collect();
    if (request.rf as usize) > eligible.len() {
        return Err(format!(
            "table '{table}': RF={} needs {} nodes that are not drained, {} are; undrain a node \
             with ALTER CLUSTER … UNDRAIN NODE",
            request.rf,
            request.rf,
            eligible.len()
        ));
    }
    let placement = placement::initial_placement(&eligible, request.shards, request.rf)
        .map_err(|e| e.to_string())?;
    let ddl = TableDdl {
        table: table.clone(),
        columns: (!state.structure.is_empty()).then(|| state.structure.clone()),
        extra: state.extra.clone(),
    };
    let steps = placement::create_steps_with_existing(&ddl, &placement, &nodes, existing_clusters);
    Ok(Planned {
        steps,
        placement: Some(rows_of(&request.scope, table, &placement, &nodes)),
        nodes,
    })
}

/// The DROP of `table` from its committed placement `mine`; when that is
/// lost, whatever the live nodes may hold. Each shard is detached from the
/// cluster its holders report it in (`clusters`; where a holder did not
/// report, the one CREATE put it in). A cluster is deleted once the drop
/// leaves it empty, unless it is in `in_use_elsewhere`. Nodes in `forgotten`
/// (removed from the cluster for good) get no step: nothing would run it.
pub fn drop(
    live: &BTreeSet<NodeId>,
    forgotten: &BTreeSet<NodeId>,
    table: &TableName,
    mine: &[PlacementRow],
    clusters: &ClusterMap,
    in_use_elsewhere: &BTreeSet<ClusterName>,
) -> Result<Planned, String> {
    let placement = placement_of(mine).map_err(|e| {
        format!(
            "table '{table}': its placement metadata is damaged ({e}); drop its wrappers and shards \
             with OPTION force=1 on every node"
        )
    })?;
    let mut nodes: BTreeSet<NodeId> = mine.iter().map(|r| r.node.clone()).collect();
    if nodes.is_empty() {
        nodes = live.clone();
    }
    let nodes: Vec<NodeId> = nodes.into_iter().collect();
    let clusters = clusters.or_derived(table, &placement);
    let steps = placement::drop_steps(table, &placement, &nodes, &clusters, in_use_elsewhere);
    Ok(Planned {
        steps: without_steps_on(steps, forgotten),
        nodes: nodes
            .into_iter()
            .filter(|n| !forgotten.contains(n))
            .collect(),
        placement: None,
    })
}

/// `steps` without those on `gone` nodes; a wait for a step that goes is
/// dropped with it (it would never be over).
fn without_steps_on(steps: Vec<Step>, gone: &BTreeSet<NodeId>) -> Vec<Step> {
    if gone.is_empty() {
        return steps;
    }
    let mut index = Vec::with_capacity(steps.len());
    let mut kept = 0;
    for step in &steps {
        index.push((!gone.contains(&step.node)).then_some(kept));
        if !gone.contains(&step.node) {
            kept += 1;
        }
    }
    steps
        .into_iter()
        .filter(|s| !gone.contains(&s.node))
        .map(|mut s| {
            s.wait_for = s
                .wait_for
                .iter()
                .filter_map(|w| index.get(*w).copied().flatten())
                .collect();
            s
        })
        .collect()
}
