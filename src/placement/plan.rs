//! From a model to a rebalance plan: target placements, moves with reasons,
//! totals.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::model::{Model, NodeState, ShardSize, TableModel};
use super::solve::{solve, Problem};
use super::{initial_placement, Placement};
use crate::ids::{NodeId, TableName};

/// Why a replica is created or retired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MoveReason {
    /// Replaces a replica lost on an inactive node (or one the placement
    /// never had), bringing the shard back to its replication factor.
    RestoreRf,
    /// Replaces a replica on a draining node.
    Drain,
    /// Moves a replica onto a node in state `new`.
    BalanceNewNode,
    /// Moves a replica from a node above its quota to one below it.
    Balance,
    /// Forgets a replica on an inactive node after its replacement exists.
    RetireDead,
    /// Removes a replica beyond the replication factor.
    ExcessReplica,
}

/// One replica change. A move with both ends copies the shard to `to`,
/// verifies it, switches routing, and only then retires `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Move {
    pub shard: u32,
    /// The replica that goes away, if any.
    pub from: Option<NodeId>,
    /// The replica that is created, if any.
    pub to: Option<NodeId>,
    /// The live node the data is copied from when `to` is set.
    pub source: Option<NodeId>,
    pub reason: MoveReason,
}

/// What a plan costs, for one table or for all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Replica copies the plan creates.
    pub copies: u64,
    /// Replicas the plan retires.
    pub retired: u64,
    /// Shards with at least one move.
    pub shards_touched: u64,
    /// Rows copied, when every copied shard's row count is known.
    pub rows_to_copy: Option<u64>,
    /// Bytes copied, when every copied shard's size is known.
    pub bytes_to_copy: Option<u64>,
    /// Shards with no live replica: nothing can be copied, they stay where
    /// they are and are unreadable until a holder returns.
    pub unavailable_shards: u64,
    /// Available shards left with fewer live replicas than their RF because
    /// too few nodes accept shards.
    pub under_replicated_shards: u64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.copies += other.copies;
        self.retired += other.retired;
        self.shards_touched += other.shards_touched;
        self.rows_to_copy = sum_known(self.rows_to_copy, other.rows_to_copy);
        self.bytes_to_copy = sum_known(self.bytes_to_copy, other.bytes_to_copy);
        self.unavailable_shards += other.unavailable_shards;
        self.under_replicated_shards += other.under_replicated_shards;
    }
}

fn sum_known(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    Some(a?.saturating_add(b?))
}

/// The plan of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TablePlan {
    pub table: TableName,
    pub shards: u32,
    pub rf: u32,
    /// `None` when the table is new and `target` is its initial placement.
    pub current: Option<Placement>,
    pub target: Placement,
    /// Ordered: restoring RF first, then drains, then balance, then
    /// retirements; by shard within each reason.
    pub moves: Vec<Move>,
    pub unavailable: Vec<u32>,
    pub under_replicated: Vec<u32>,
    pub totals: Totals,
    /// The fewest copies any plan needs to reach a balanced placement
    /// (`README.md`, "Lower bound"): lost replicas plus what nodes above
    /// their quota must shed. `totals.copies` equals it whenever it is
    /// reachable.
    pub lower_bound: u64,
}

/// The plan of every table of a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebalancePlan {
    pub tables: Vec<TablePlan>,
    pub totals: Totals,
}

impl RebalancePlan {
    pub fn is_empty(&self) -> bool {
        self.tables
            .iter()
            .all(|t| t.moves.is_empty() && t.current.is_some())
    }
}

/// Plans every table of `model` independently (each table is balanced on
/// its own, as Buddy and Citus' colocation groups are).
pub fn plan_rebalance(model: &Model) -> RebalancePlan {
    let tables: Vec<TablePlan> = model
        .tables()
        .iter()
        .map(|t| plan_table(model, t))
        .collect();
    let mut totals = Totals {
        rows_to_copy: Some(0),
        bytes_to_copy: Some(0),
        ..Totals::default()
    };
    for table in &tables {
        totals.add(&table.totals);
    }
    RebalancePlan { tables, totals }
}

fn plan_table(model: &Model, table: &TableModel) -> TablePlan {
    let eligible: Vec<&NodeId> = model
        .nodes()
        .filter(|n| n.state.accepts_shards())
        .map(|n| &n.id)
        .collect();
    let Some(current) = &table.placement else {
        let ids: Vec<NodeId> = eligible.into_iter().cloned().collect();
        // `Model::new` checked that enough nodes accept shards.
        let target = initial_placement(&ids, table.shards, table.rf)
            .expect("the model guarantees an initial placement exists");
        return TablePlan {
            table: table.name.clone(),
            shards: table.shards,
            rf: table.rf,
            current: None,
            target,
            moves: Vec::new(),
            unavailable: Vec::new(),
            under_replicated: Vec::new(),
            totals: Totals {
                rows_to_copy: Some(0),
                bytes_to_copy: Some(0),
                ..Totals::default()
            },
            lower_bound: 0,
        };
    };
    let view = View::new(model, current);
    let target_indexes = target_replicas(&view, table);
    let target = view.placement(&target_indexes);
    let state = |id: &NodeId| model.node(id).map_or(NodeState::Inactive, |n| n.state);
    let changed: Vec<u32> = (0..table.shards)
        .filter(|&s| view.current[s as usize] != target_indexes[s as usize])
        .collect();
    let moves = moves_between(current, &target, &changed, &state);
    let unavailable: Vec<u32> = (0..table.shards)
        .filter(|&s| view.live_count(&view.current[s as usize]) == 0)
        .collect();
    let under_replicated: Vec<u32> = (0..table.shards)
        .filter(|&s| {
            let live = view.live_count(&target_indexes[s as usize]);
            live > 0 && live < table.rf as usize
        })
        .collect();
    let totals = table_totals(&moves, &table.sizes, &unavailable, &under_replicated);
    let lower_bound = copy_lower_bound(&view, table);
    TablePlan {
        table: table.name.clone(),
        shards: table.shards,
        rf: table.rf,
        current: Some(current.clone()),
        target,
        moves,
        unavailable,
        under_replicated,
        totals,
        lower_bound,
    }
}

/// `T − max Σ min(t_i, c_i)`: `T` replicas of the available shards are
/// wanted on the eligible nodes, node `i` ends with `t_i ∈ {⌊q_i⌋, ⌈q_i⌉}`
/// of them and can keep at most `min(t_i, c_i)` of the `c_i` it holds now;
/// the `⌈q_i⌉` slots go first to the nodes that hold at least that many.
fn copy_lower_bound(view: &View<'_>, table: &TableModel) -> u64 {
    let eligible: Vec<usize> = (0..view.ids.len())
        .filter(|&i| view.states[i].accepts_shards())
        .collect();
    let available: Vec<&Vec<usize>> = view
        .current
        .iter()
        .filter(|holders| view.live_count(holders) > 0)
        .collect();
    if eligible.is_empty() || available.is_empty() {
        return 0;
    }
    let needed = u64::from(table.rf).min(eligible.len() as u64);
    let total = needed * available.len() as u64;
    let weights: Vec<u64> = eligible.iter().map(|&i| view.weights[i]).collect();
    let quotas = super::balance::quotas(total, &weights, available.len() as u64);
    let held: Vec<u64> = eligible
        .iter()
        .map(|&i| available.iter().filter(|h| h.contains(&i)).count() as u64)
        .collect();
    let floors: u64 = quotas.iter().map(|q| q.floor).sum();
    let slots = total.saturating_sub(floors);
    let kept_at_floor: u64 = quotas.iter().zip(&held).map(|(q, c)| q.floor.min(*c)).sum();
    let gain = quotas
        .iter()
        .zip(&held)
        .filter(|(q, c)| q.ceil() > q.floor && **c >= q.ceil())
        .count() as u64;
    total.saturating_sub(kept_at_floor + gain.min(slots))
}

/// One table's current placement as indexes into the model's nodes (in id
/// order), so planning compares integers instead of node id strings.
struct View<'m> {
    ids: Vec<&'m NodeId>,
    states: Vec<NodeState>,
    weights: Vec<u64>,
    /// Per shard, the holders' indexes, ascending (= id order).
    current: Vec<Vec<usize>>,
}

impl<'m> View<'m> {
    fn new(model: &'m Model, current: &Placement) -> Self {
        let nodes: Vec<_> = model.nodes().collect();
        let index: BTreeMap<&NodeId, usize> =
            nodes.iter().enumerate().map(|(i, n)| (&n.id, i)).collect();
        Self {
            ids: nodes.iter().map(|n| &n.id).collect(),
            states: nodes.iter().map(|n| n.state).collect(),
            weights: nodes.iter().map(|n| n.effective_weight()).collect(),
            // `Model::new` checked that every replica is a listed node.
            current: current
                .shards()
                .map(|(_, replicas)| {
                    replicas
                        .iter()
                        .filter_map(|r| index.get(r).copied())
                        .collect()
                })
                .collect(),
        }
    }

    fn live_count(&self, holders: &[usize]) -> usize {
        holders
            .iter()
            .filter(|&&i| self.states[i].is_live())
            .count()
    }

    fn placement(&self, replicas: &[Vec<usize>]) -> Placement {
        let shards = replicas
            .iter()
            .enumerate()
            .map(|(s, holders)| {
                (
                    s as u32,
                    holders.iter().map(|&i| self.ids[i].clone()).collect(),
                )
            })
            .collect();
        Placement::from_canonical(shards)
    }
}

/// The target holders of every shard: balanced, minimal-movement replicas
/// on eligible nodes, plus the replicas that must stay where they are
/// because nothing can replace them (see README, "Policies").
fn target_replicas(view: &View<'_>, table: &TableModel) -> Vec<Vec<usize>> {
    let eligible: Vec<usize> = (0..view.ids.len())
        .filter(|&i| view.states[i].accepts_shards())
        .collect();
    let mut position = vec![None; view.ids.len()];
    for (p, &i) in eligible.iter().enumerate() {
        position[i] = Some(p);
    }
    let available: Vec<usize> = (0..view.current.len())
        .filter(|&s| view.live_count(&view.current[s]) > 0)
        .collect();
    let holders: Vec<Vec<usize>> = available
        .iter()
        .map(|&s| {
            view.current[s]
                .iter()
                .filter_map(|&i| position[i])
                .collect()
        })
        .collect();
    let weights: Vec<u64> = eligible.iter().map(|&i| view.weights[i]).collect();
    let needed = u64::from(table.rf).min(eligible.len() as u64);
    let mut preference: Vec<usize> = (0..available.len()).collect();
    preference.sort_by_key(|&k| {
        let size = table
            .sizes
            .get(&(available[k] as u32))
            .copied()
            .unwrap_or_default();
        (
            size.bytes.unwrap_or(u64::MAX),
            size.rows.unwrap_or(u64::MAX),
            available[k],
        )
    });
    let solved = solve(&Problem {
        weights: &weights,
        holders: &holders,
        needed,
        preference: &preference,
    });

    // Draining replicas stay only while too few nodes accept shards.
    let room = (table.rf as usize).saturating_sub(eligible.len());
    let mut target = view.current.clone();
    for ((&s, before), after) in available.iter().zip(&holders).zip(solved) {
        let replicas = &view.current[s];
        let draining: Vec<usize> = replicas
            .iter()
            .copied()
            .filter(|&i| view.states[i] == NodeState::Draining)
            .collect();
        let kept = &draining[..room.min(draining.len())];
        let mut next: Vec<usize> = after.iter().map(|&p| eligible[p]).collect();
        next.extend_from_slice(kept);
        if *before == after && kept.len() == draining.len() {
            // Keep dead replicas of shards nothing happens to: the node
            // catches up through its replication cluster when it returns.
            next.extend(
                replicas
                    .iter()
                    .copied()
                    .filter(|&i| !view.states[i].is_live()),
            );
        }
        next.sort_unstable();
        target[s] = next;
    }
    target
}

/// Pairs each shard's created replicas with its retired ones: lost replicas
/// first, then draining ones, then balance moves.
fn moves_between(
    current: &Placement,
    target: &Placement,
    changed: &[u32],
    state: &dyn Fn(&NodeId) -> NodeState,
) -> Vec<Move> {
    let mut moves = Vec::new();
    for &shard in changed {
        let before = current.replicas(shard);
        let after = target.replicas(shard);
        let added: Vec<&NodeId> = after.iter().filter(|n| !before.contains(n)).collect();
        let mut removed: Vec<&NodeId> = before.iter().filter(|n| !after.contains(n)).collect();
        let rank = |n: &NodeId| match state(n) {
            NodeState::Inactive => 0,
            NodeState::Draining => 1,
            NodeState::Active | NodeState::New => 2,
        };
        removed.sort_by_key(|n| (rank(n), (*n).clone()));
        let source = donor(before, after, state).cloned();
        for pair in 0..added.len().max(removed.len()) {
            let from = removed.get(pair).copied();
            let to = added.get(pair).copied();
            let reason = match (from.map(state), to.map(state)) {
                (None, _) | (Some(NodeState::Inactive), Some(_)) => MoveReason::RestoreRf,
                (Some(NodeState::Draining), Some(_)) => MoveReason::Drain,
                (Some(_), Some(NodeState::New)) => MoveReason::BalanceNewNode,
                (Some(_), Some(_)) => MoveReason::Balance,
                (Some(NodeState::Inactive), None) => MoveReason::RetireDead,
                (Some(_), None) => MoveReason::ExcessReplica,
            };
            moves.push(Move {
                shard,
                from: from.cloned(),
                to: to.cloned(),
                source: to.and(source.clone()),
                reason,
            });
        }
    }
    moves.sort_by(|a, b| {
        (a.reason, a.shard, &a.to, &a.from).cmp(&(b.reason, b.shard, &b.to, &b.from))
    });
    moves
}

/// The live replica a shard's new copies are made from: the smallest live
/// holder that stays (it is then a member of the new replication cluster),
/// otherwise the smallest live holder.
pub(super) fn donor<'a>(
    before: &'a [NodeId],
    after: &[NodeId],
    state: &dyn Fn(&NodeId) -> NodeState,
) -> Option<&'a NodeId> {
    let live = || before.iter().filter(|n| state(n).is_live());
    live().find(|n| after.contains(n)).or_else(|| live().next())
}

fn table_totals(
    moves: &[Move],
    sizes: &BTreeMap<u32, ShardSize>,
    unavailable: &[u32],
    under_replicated: &[u32],
) -> Totals {
    let copied: Vec<ShardSize> = moves
        .iter()
        .filter(|m| m.to.is_some())
        .map(|m| sizes.get(&m.shard).copied().unwrap_or_default())
        .collect();
    let touched: BTreeSet<u32> = moves.iter().map(|m| m.shard).collect();
    Totals {
        copies: copied.len() as u64,
        retired: moves.iter().filter(|m| m.from.is_some()).count() as u64,
        shards_touched: touched.len() as u64,
        rows_to_copy: copied
            .iter()
            .try_fold(0u64, |sum, s| Some(sum.saturating_add(s.rows?))),
        bytes_to_copy: copied
            .iter()
            .try_fold(0u64, |sum, s| Some(sum.saturating_add(s.bytes?))),
        unavailable_shards: unavailable.len() as u64,
        under_replicated_shards: under_replicated.len() as u64,
    }
}
