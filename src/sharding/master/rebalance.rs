//! When the master rebalances a table, and which replica sets it promotes.
//! Pure: the engine calls these with what the snapshot holds.
//!
//! A table is rebalanced when its committed placement does not fit the live
//! membership: a holder is down (RF ≥ 2: its copies are rebuilt on the
//! survivors), or a registered node holds nothing of it (copies move or are
//! added there), or a returned node is below its share. The planner
//! (`placement::plan_rebalance`) makes the fewest copies that reach a
//! balanced placement; `placement::rebalance_steps` turns that into steps
//! that copy, verify, switch routing and only then retire.

use std::collections::{BTreeMap, BTreeSet};

use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::{
    self, ClusterMap, Model, MoveReason, NodeSpec, NodeState, Placement, Step, StepContext,
    TableDdl, TableModel,
};
use crate::sharding::daemon::ClusterReport;
use crate::sharding::records::placement::{clusters_in_use, clusters_reported, placement_of};
use crate::sharding::records::{GroupName, MoveRecord, PlacementRow, TableState};
use crate::sharding::topology::Membership;

/// What to do about one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its placement fits the membership.
    Balanced,
    /// It should change but cannot now; the text says why (Manticore's log
    /// lines where there is one).
    Skip(String),
    Rebalance(Box<Planned>),
}

/// A rebalance ready to be enqueued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub steps: Vec<Step>,
    pub target: Placement,
    /// Nodes the plan involves that are down: their steps wait for them.
    pub deferred: Vec<NodeId>,
    /// The inactive holders that caused it, if any.
    pub inactive: Vec<NodeId>,
    pub reason: &'static str,
    pub copies: u64,
    /// The planner's moves, one per replica created or retired.
    pub moves: Vec<MoveRecord>,
    /// The fewest copies any plan needs (the planner's lower bound).
    pub lower_bound: u64,
}

/// How a move's reason reads for operators.
pub fn move_reason(reason: MoveReason) -> &'static str {
    match reason {
        MoveReason::RestoreRf | MoveReason::RetireDead => "node lost",
        MoveReason::Drain => "drain",
        MoveReason::BalanceNewNode => "node added",
        MoveReason::Balance => "balance",
        MoveReason::ExcessReplica => "excess replica",
    }
}

/// What the other tables and groups mean for this table's plan.
#[derive(Debug, Clone, Default)]
pub struct Neighbours {
    /// Internal clusters other tables use now.
    pub existing: BTreeSet<ClusterName>,
    /// Internal clusters other tables' shards are in, or that their running
    /// rebalances still put shards into: never deleted by this one.
    pub in_use: BTreeSet<ClusterName>,
}

impl Neighbours {
    /// From the committed placement of all tables, the clusters the nodes
    /// report (`observed`) and the clusters running rebalances still put
    /// shards into (`rebalancing`), seen from `table`.
    pub fn of(
        table: &TableName,
        rows: &[PlacementRow],
        observed: &ClusterMap,
        rebalancing: BTreeSet<ClusterName>,
    ) -> Self {
        let others: Vec<PlacementRow> =
            rows.iter().filter(|r| r.table != *table).cloned().collect();
        let existing = clusters_in_use(&others);
        let mut in_use = clusters_reported(observed, &others);
        in_use.extend(rebalancing);
        Self { existing, in_use }
    }
}

/// The node states the planner works with: live registered nodes accept
/// shards (those without even the table's wrapper are `new`), nodes that
/// are down (holders, or members the cluster remembers) are `inactive`. A live
/// node whose shardbuddy never registered cannot run steps and is left out
/// unless it already holds copies.
pub fn node_states(
    rows: &[PlacementRow],
    members: &Membership,
    registered: &BTreeSet<NodeId>,
    drained: &BTreeSet<NodeId>,
) -> BTreeMap<NodeId, NodeState> {
    // Nodes with a placement row hold the wrapper, shards or not.
    let holders: BTreeSet<NodeId> = rows.iter().map(|r| r.node.clone()).collect();
    let mut states = BTreeMap::new();
    for node in members.all.iter().chain(&members.active).chain(&holders) {
        let state = if !members.active.contains(node) {
            NodeState::Inactive
        } else if drained.contains(node) {
            NodeState::Draining
        } else if holders.contains(node) {
            NodeState::Active
        } else if registered.contains(node) {
            NodeState::New
        } else {
            continue;
        };
        states.insert(node.clone(), state);
    }
    states
}

/// What the plan of a table depends on besides its own placement.
#[derive(Debug, Clone, Copy)]
pub struct Cluster<'a> {
    pub members: &'a Membership,
    /// Nodes whose shardbuddy registered.
    pub registered: &'a BTreeSet<NodeId>,
    /// Nodes an operator drained.
    pub drained: &'a BTreeSet<NodeId>,
    /// What the live nodes report of their replication clusters.
    pub clusters: &'a ClusterMap,
}

/// Decides about `table`, whose committed placement is `rows`, in `cluster`;
/// `group` is the name the rebalance's group will have.
pub fn consider(
    table: &TableName,
    state: &TableState,
    rows: &[PlacementRow],
    cluster: Cluster<'_>,
    group: &GroupName,
) -> Verdict {
    let Cluster {
        members,
        registered,
        drained,
        clusters,
    } = cluster;
    let Ok(current) = placement_of(rows) else {
        return Verdict::Skip(format!(
            "Skipping rebalance for table {table}: its placement metadata cannot be read"
        ));
    };
    let states = node_states(rows, members, registered, drained);
    let inactive: Vec<NodeId> = current
        .nodes()
        .into_iter()
        .filter(|n| states.get(n) == Some(&NodeState::Inactive))
        .collect();
    let rf = u32::try_from(current.max_replicas()).unwrap_or(u32::MAX);
    if !inactive.is_empty() {
        if let Some(why) = cannot_heal(table, &current, &states, rf, members) {
            return Verdict::Skip(why);
        }
    }
    let Some(model) = table_model(table, &current, &states, rf) else {
        return Verdict::Skip(format!(
            "Skipping rebalance for table {table}: its placement does not fit the cluster's members"
        ));
    };
    let plan = placement::plan_rebalance(&model);
    let Some(table_plan) = plan.tables.into_iter().next() else {
        return Verdict::Balanced;
    };
    // A live member without a placement row has no wrapper (it was away
    // when the table was made, or joined after): a rebalance that moves
    // nothing still creates it there.
    let unwrapped = states.values().any(|s| *s == NodeState::New);
    if table_plan.moves.is_empty() && !unwrapped {
        return Verdict::Balanced;
    }
    // Where each shard is detached from is what its holders report.
    if let Some(node) = current
        .nodes()
        .into_iter()
        .find(|n| members.active.contains(n) && !clusters.knows(n))
    {
        return Verdict::Skip(format!(
            "Skipping rebalance for table {table}: node {node} did not report its replication \
             clusters; trying again"
        ));
    }
    let ddl = table_ddl(table, state);
    let steps = placement::rebalance_steps(
        &ddl,
        &table_plan,
        &StepContext {
            nodes: &states,
            clusters,
            salt: group.as_str(),
        },
    );
    let deferred: BTreeSet<NodeId> = steps
        .iter()
        .map(|s| s.node.clone())
        .filter(|n| !members.active.contains(n))
        .collect();
    Verdict::Rebalance(Box::new(Planned {
        steps,
        target: table_plan.target,
        deferred: deferred.into_iter().collect(),
        reason: reason(&current, &inactive, &states),
        inactive,
        copies: table_plan.totals.copies,
        moves: move_records(&table_plan.moves),
        lower_bound: table_plan.lower_bound,
    }))
}

/// The planner's model of the cluster with this one table at its current
/// placement; `None` when the placement does not fit the members.
fn table_model(
    table: &TableName,
    current: &Placement,
    states: &BTreeMap<NodeId, NodeState>,
    rf: u32,
) -> Option<Model> {
    let nodes: Vec<NodeSpec> = states
        .iter()
        .map(|(n, s)| NodeSpec::new(n.clone(), *s))
        .collect();
    let model = TableModel::new(
        table.clone(),
        current.shard_count(),
        rf,
        Some(current.clone()),
    );
    Model::new(nodes, vec![model]).ok()
}

/// The table's DDL as the steps recreate it.
fn table_ddl(table: &TableName, state: &TableState) -> TableDdl {
    TableDdl {
        table: table.clone(),
        columns: (!state.structure.is_empty()).then(|| state.structure.clone()),
        extra: state.extra.clone(),
    }
}

/// The plan's moves as the group record keeps them.
fn move_records(moves: &[placement::Move]) -> Vec<MoveRecord> {
    moves
        .iter()
        .map(|m| MoveRecord {
            shard: m.shard,
            from: m.from.clone(),
            to: m.to.clone(),
            reason: move_reason(m.reason).to_string(),
        })
        .collect()
}

/// Why the copies lost with inactive nodes cannot be made again now (the
/// `Skipping rebalance …` line), if they cannot.
fn cannot_heal(
    table: &TableName,
    current: &Placement,
    states: &BTreeMap<NodeId, NodeState>,
    rf: u32,
    members: &Membership,
) -> Option<String> {
    let live = states.values().filter(|s| s.accepts_shards()).count();
    if rf == 1 {
        return Some(format!(
            "Skipping rebalance for table {table}: RF=1 and nodes are inactive"
        ));
    }
    if live < rf as usize {
        return Some(format!(
            "Skipping rebalance for table {table}: only {live} active nodes"
        ));
    }
    let (shard, unsafe_set) = majority_unreachable(current, &members.active)?;
    Some(format!(
        "Skipping rebalance for table {table}: the unreachable copies of shard {shard} ({}) \
         could still be a majority of its replica set; waiting for them to return",
        join(&unsafe_set)
    ))
}

/// What a rebalance is for, as its log line says.
fn reason(
    current: &Placement,
    inactive: &[NodeId],
    states: &BTreeMap<NodeId, NodeState>,
) -> &'static str {
    let draining = current
        .nodes()
        .iter()
        .any(|n| states.get(n) == Some(&NodeState::Draining));
    if !inactive.is_empty() {
        "node lost"
    } else if draining {
        "drain"
    } else if states.values().any(|s| *s == NodeState::New) {
        "node added"
    } else {
        "balance"
    }
}

/// A shard whose unreachable copies are more than half of its replica set:
/// they may be alive behind a partition and form a primary component, so
/// nothing may take over their shard (Galera needs a strict majority).
fn majority_unreachable(
    current: &Placement,
    live: &BTreeSet<NodeId>,
) -> Option<(u32, Vec<NodeId>)> {
    current.shards().find_map(|(shard, replicas)| {
        let down: Vec<NodeId> = replicas
            .iter()
            .filter(|n| !live.contains(*n))
            .cloned()
            .collect();
        (2 * down.len() > replicas.len()).then_some((shard, down))
    })
}

/// A replica set that lost members, as the master sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Degraded {
    pub cluster: ClusterName,
    /// Its members that are up, in id order.
    pub survivors: Vec<NodeId>,
    /// Its members that are down.
    pub down: Vec<NodeId>,
    /// Its members that are up and reported their clusters without it: they
    /// deleted it (a DROP or a move emptied it while the survivors were
    /// away) and can never again be part of it.
    pub left: Vec<NodeId>,
}

impl Degraded {
    /// Whether the survivors may be made a primary component: the members
    /// that are down are no more than half of the set, so they cannot be one
    /// by themselves, wherever they are.
    pub fn may_promote(&self) -> bool {
        let all = self.survivors.len() + self.down.len() + self.left.len();
        !self.survivors.is_empty() && 2 * self.down.len() <= all
    }
}

/// Every replication cluster a live node runs, other than `user_cluster`,
/// whose members include nodes that are down or that no longer run it: what
/// promotion decides from. The members are the cluster's own (`nodes_set`),
/// so a cluster a rebalance made counts as much as one CREATE made.
pub fn degraded_sets(
    reports: &BTreeMap<NodeId, Vec<ClusterReport>>,
    live: &BTreeSet<NodeId>,
    user_cluster: Option<&ClusterName>,
) -> Vec<Degraded> {
    let mut sets: BTreeMap<ClusterName, BTreeSet<NodeId>> = BTreeMap::new();
    for report in reports.values().flatten() {
        if Some(&report.name) != user_cluster {
            sets.entry(report.name.clone())
                .or_default()
                .extend(report.nodes_set.iter().cloned());
        }
    }
    let runs = |node: &NodeId, cluster: &ClusterName| {
        reports
            .get(node)
            .is_none_or(|r| r.iter().any(|r| r.name == *cluster))
    };
    sets.into_iter()
        .filter_map(|(cluster, set)| {
            let (up, down): (Vec<NodeId>, Vec<NodeId>) =
                set.into_iter().partition(|n| live.contains(n));
            let (survivors, left): (Vec<NodeId>, Vec<NodeId>) =
                up.into_iter().partition(|n| runs(n, &cluster));
            (!down.is_empty() || !left.is_empty()).then_some(Degraded {
                cluster,
                survivors,
                down,
                left,
            })
        })
        .collect()
}

fn join(nodes: &[NodeId]) -> String {
    nodes
        .iter()
        .map(NodeId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// `Rebalancing due to inactive nodes: <ids>` (Manticore's log line).
pub fn inactive_line(inactive: &[NodeId]) -> String {
    format!("Rebalancing due to inactive nodes: {}", join(inactive))
}
