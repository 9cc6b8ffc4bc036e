//! Shared by the placement test binaries: a topology generator and checks
//! written independently of the planner (own quota arithmetic, own lower
//! bound, own optimality certificate, own step-order analysis).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use shardbuddy::ids::{NodeId, TableName};
use shardbuddy::placement::{
    initial_placement, Action, Ddl, Model, NodeSpec, NodeState, Placement, ShardSize, Step,
    TableModel, TablePlan,
};

/// splitmix64: tiny, fast and good enough to derive test topologies from a
/// seed that proptest shrinks.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

pub fn node_id(i: usize) -> NodeId {
    NodeId::new(format!("10.0.{}.{}:9312", i / 200, i % 200 + 1))
}

/// Limits of a generated topology.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_nodes: u64,
    pub max_shards: u64,
    pub max_rf: u64,
}

/// A random table history: placed on some nodes (by the initial algorithm
/// or at random, possibly under-replicated), then nodes fail, join, drain,
/// return; weights and sizes sometimes.
pub fn generate(seed: u64, limits: Limits) -> Model {
    let mut rng = Rng::new(seed);
    let rf = 1 + rng.below(limits.max_rf) as u32;
    let shards = log_uniform(&mut rng, limits.max_shards) as u32;
    let base = (rf as u64).max(log_uniform(&mut rng, limits.max_nodes)) as usize;
    let base_ids: Vec<NodeId> = (0..base).map(node_id).collect();
    let placement = if rng.chance(70) {
        initial_placement(&base_ids, shards, rf).expect("rf <= base nodes")
    } else {
        random_placement(&mut rng, &base_ids, shards, rf)
    };
    let fail = [0, 5, 10, 30, 60][rng.below(5) as usize];
    let drain = [0, 0, 5, 20][rng.below(4) as usize];
    let mut nodes: Vec<NodeSpec> = base_ids
        .iter()
        .map(|id| {
            let state = if rng.chance(fail) {
                NodeState::Inactive
            } else if rng.chance(drain) {
                NodeState::Draining
            } else {
                NodeState::Active
            };
            NodeSpec::new(id.clone(), state)
        })
        .collect();
    let room = limits.max_nodes.saturating_sub(base as u64);
    let added = if room > 0 && rng.chance(50) {
        rng.below(room.min(10) + 1)
    } else {
        0
    };
    for i in 0..added as usize {
        let state = if rng.chance(70) {
            NodeState::New
        } else {
            NodeState::Active
        };
        nodes.push(NodeSpec::new(node_id(base + i), state));
    }
    if rng.chance(30) {
        for node in &mut nodes {
            node.weight = Some(1 + rng.below(4) as u32);
        }
    }
    let mut table = TableModel::new(TableName::parse("t").unwrap(), shards, rf, Some(placement));
    if rng.chance(30) {
        for s in 0..shards {
            table.sizes.insert(
                s,
                ShardSize {
                    rows: Some(rng.below(1_000_000)),
                    bytes: Some(rng.below(1 << 30)),
                },
            );
        }
    }
    Model::new(nodes, vec![table]).expect("generated models are consistent")
}

/// From 1 to `max`, every order of magnitude about equally likely, so
/// small topologies (where corner cases live) are common and the largest
/// still come up.
fn log_uniform(rng: &mut Rng, max: u64) -> u64 {
    let bits = 64 - max.leading_zeros() as u64;
    let ceiling = 1u64 << (1 + rng.below(bits));
    (1 + rng.below(ceiling)).min(max)
}

fn random_placement(rng: &mut Rng, nodes: &[NodeId], shards: u32, rf: u32) -> Placement {
    let mut map = BTreeMap::new();
    for s in 0..shards {
        let count = 1 + rng.below(u64::from(rf)) as usize;
        let mut pool: Vec<NodeId> = nodes.to_vec();
        let mut chosen = Vec::new();
        // Skewed picks make overloaded nodes likely.
        for _ in 0..count {
            let span = if rng.chance(50) {
                pool.len().min(3)
            } else {
                pool.len()
            };
            let k = rng.below(span as u64) as usize;
            chosen.push(pool.remove(k));
        }
        map.insert(s, chosen);
    }
    Placement::new(map).expect("distinct picks")
}

pub fn states(model: &Model) -> BTreeMap<NodeId, NodeState> {
    model.states()
}

/// `floor` and `ceil` of each eligible node's quota, computed by bisection
/// on λ over exact fractions (the planner uses iterative capping).
pub fn quota_bounds(total: u64, weights: &[u64], cap: u64) -> Vec<(u64, u64)> {
    if weights.is_empty() {
        return Vec::new();
    }
    // Find the set of capped nodes: node i is capped iff λ·w_i >= cap at the
    // λ solving Σ min(cap, λ·w_i) = total. Try each candidate λ = cap / w_j.
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(weights[i]));
    for capped in 0..=weights.len() {
        let rest: u128 = order[capped..]
            .iter()
            .map(|&i| u128::from(weights[i]))
            .sum();
        let rest_total = i128::from(total as i64) - i128::from(cap as i64) * capped as i128;
        if rest_total < 0 {
            continue;
        }
        let rest_total = rest_total as u128;
        // λ = rest_total / rest; valid if the heaviest uncapped node fits
        // and the lightest capped one would not.
        let fits = order
            .get(capped)
            .is_none_or(|&i| rest_total * u128::from(weights[i]) <= u128::from(cap) * rest);
        let needs_cap = capped == 0
            || rest == 0
            || rest_total * u128::from(weights[order[capped - 1]]) >= u128::from(cap) * rest;
        if fits && needs_cap {
            return (0..weights.len())
                .map(|i| {
                    if order[..capped].contains(&i) || rest == 0 {
                        let q = if order[..capped].contains(&i) { cap } else { 0 };
                        (q, q)
                    } else {
                        let num = rest_total * u128::from(weights[i]);
                        let floor = (num / rest) as u64;
                        (floor, floor + u64::from(num % rest != 0))
                    }
                })
                .collect();
        }
    }
    panic!("no λ for total={total} weights={weights:?} cap={cap}");
}

/// What the checks found, for the summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub copies: u64,
    pub above_simple_bound: u64,
}

/// Everything the acceptance criteria require of one table's plan.
pub fn check_plan(model: &Model, plan: &TablePlan) -> Result<Stats, String> {
    let state = |n: &NodeId| model.node(n).map_or(NodeState::Inactive, |s| s.state);
    let table = &model.tables()[0];
    let current = plan
        .current
        .as_ref()
        .ok_or("plan without current placement")?;
    let target = &plan.target;
    let eligible: Vec<&NodeSpec> = model.nodes().filter(|n| n.state.accepts_shards()).collect();
    let rf = table.rf as usize;
    let needed = rf.min(eligible.len());

    // Availability and replica counts.
    let mut available = Vec::new();
    for (shard, before) in current.shards() {
        let after = target.replicas(shard);
        let live_before = before.iter().filter(|n| state(n).is_live()).count();
        if live_before == 0 {
            if after != before {
                return Err(format!("unavailable shard {shard} changed"));
            }
            continue;
        }
        available.push(shard);
        let on_eligible = after.iter().filter(|n| state(n).accepts_shards()).count();
        if on_eligible != needed {
            return Err(format!(
                "shard {shard}: {on_eligible} replicas on eligible nodes, want {needed}"
            ));
        }
        let draining_before = before
            .iter()
            .filter(|n| state(n) == NodeState::Draining)
            .count();
        let draining_after = after
            .iter()
            .filter(|n| state(n) == NodeState::Draining)
            .count();
        let want_draining = (rf.saturating_sub(eligible.len())).min(draining_before);
        if draining_after != want_draining {
            return Err(format!(
                "shard {shard}: {draining_after} draining replicas kept, want {want_draining}"
            ));
        }
        if after
            .iter()
            .any(|n| !before.contains(n) && !state(n).accepts_shards())
        {
            return Err(format!(
                "shard {shard}: placed on a node that does not accept shards"
            ));
        }
    }

    // Balance: every eligible node within its quota.
    let total = (needed * available.len()) as u64;
    let weights: Vec<u64> = eligible
        .iter()
        .map(|n| u64::from(n.weight.unwrap_or(1)))
        .collect();
    let bounds = quota_bounds(total, &weights, available.len() as u64);
    let position: BTreeMap<&NodeId, usize> = eligible
        .iter()
        .enumerate()
        .map(|(i, n)| (&n.id, i))
        .collect();
    let loads = |p: &Placement| {
        let mut load = vec![0u64; eligible.len()];
        for s in &available {
            for r in p.replicas(*s) {
                if let Some(&i) = position.get(r) {
                    load[i] += 1;
                }
            }
        }
        load
    };
    let target_load = loads(target);
    for ((node, (floor, ceil)), &l) in eligible.iter().zip(&bounds).zip(&target_load) {
        if l < *floor || l > *ceil {
            return Err(format!(
                "node {} holds {l}, quota [{floor}, {ceil}]",
                node.id
            ));
        }
    }

    // Moves turn current into target, never dropping below the start.
    let mut replicas: BTreeMap<u32, BTreeSet<NodeId>> = current
        .shards()
        .map(|(s, r)| (s, r.iter().cloned().collect()))
        .collect();
    let live_of = |set: &BTreeSet<NodeId>| set.iter().filter(|n| state(n).is_live()).count();
    let start: BTreeMap<u32, usize> = replicas.iter().map(|(s, r)| (*s, live_of(r))).collect();
    let mut copies = 0u64;
    for m in &plan.moves {
        let set = replicas
            .get_mut(&m.shard)
            .ok_or("move of an unknown shard")?;
        if let Some(to) = &m.to {
            if !set.insert(to.clone()) {
                return Err(format!("move {m:?} copies onto a holder"));
            }
            copies += 1;
            let source = m.source.as_ref().ok_or("copy without a source")?;
            if !current.replicas(m.shard).contains(source) || !state(source).is_live() {
                return Err(format!(
                    "move {m:?} copies from a node that held no live copy"
                ));
            }
        }
        if let Some(from) = &m.from {
            if !set.remove(from) {
                return Err(format!("move {m:?} retires a non-holder"));
            }
        }
        if live_of(set) < start[&m.shard].min(rf) {
            return Err(format!(
                "shard {} drops below its starting replicas at {m:?}",
                m.shard
            ));
        }
    }
    for (shard, set) in &replicas {
        let want: BTreeSet<NodeId> = target.replicas(*shard).iter().cloned().collect();
        if *set != want {
            return Err(format!("moves do not reach the target for shard {shard}"));
        }
    }
    if plan.totals.copies != copies {
        return Err("totals.copies disagrees with the moves".into());
    }

    // Minimal movement: the simple bound, or a certificate of optimality.
    let current_load = loads(current);
    let bound = simple_bound(total, &bounds, &current_load);
    if plan.lower_bound != bound {
        return Err(format!(
            "the plan reports the lower bound {}, computed independently it is {bound}",
            plan.lower_bound
        ));
    }
    let mut stats = Stats {
        copies,
        above_simple_bound: 0,
    };
    if copies < bound {
        return Err(format!("{copies} copies is below the lower bound {bound}"));
    }
    if copies > bound {
        stats.above_simple_bound = 1;
        let holders = |p: &Placement| -> Vec<Vec<usize>> {
            available
                .iter()
                .map(|s| {
                    p.replicas(*s)
                        .iter()
                        .filter_map(|r| position.get(r).copied())
                        .collect()
                })
                .collect()
        };
        if let Some(cycle) = improving_cycle(&holders(current), &holders(target), &bounds) {
            return Err(format!(
                "{copies} copies (bound {bound}) and the plan can be improved: {cycle:?}"
            ));
        }
    }
    Ok(stats)
}

/// Copies lost replicas force plus what nodes above their quota must shed,
/// with the `ceil` slots given where they save most: `T − max Σ min(t_i, c_i)`.
pub fn simple_bound(total: u64, bounds: &[(u64, u64)], load: &[u64]) -> u64 {
    let floors: u64 = bounds.iter().map(|b| b.0).sum();
    let slots = total - floors;
    let kept_at_floor: u64 = bounds.iter().zip(load).map(|(b, c)| b.0.min(*c)).sum();
    let gain = bounds
        .iter()
        .zip(load)
        .filter(|(b, c)| b.1 > b.0 && **c >= b.1)
        .count() as u64;
    total - kept_at_floor - gain.min(slots)
}

/// Optimality certificate: a feasible flow is minimum-cost iff its residual
/// graph has no negative cycle. Vertices: shards, nodes, the ceil-slot pool.
/// Returns a witness when the plan could be cheaper.
pub fn improving_cycle(
    before: &[Vec<usize>],
    after: &[Vec<usize>],
    bounds: &[(u64, u64)],
) -> Option<Vec<usize>> {
    let shards = before.len();
    let nodes = bounds.len();
    let slot = shards + nodes;
    let count = slot + 1;
    let load: Vec<u64> = (0..nodes)
        .map(|i| after.iter().filter(|h| h.contains(&i)).count() as u64)
        .collect();
    let mut edges: Vec<(usize, usize, i64)> = Vec::new();
    for s in 0..shards {
        for i in 0..nodes {
            let was = before[s].contains(&i);
            if after[s].contains(&i) {
                edges.push((shards + i, s, if was { 0 } else { -1 }));
            } else {
                edges.push((s, shards + i, if was { 0 } else { 1 }));
            }
        }
    }
    for (i, (floor, ceil)) in bounds.iter().enumerate() {
        if ceil > floor {
            if load[i] == *ceil {
                edges.push((slot, shards + i, 0));
            } else {
                edges.push((shards + i, slot, 0));
            }
        }
    }
    let mut dist = vec![0i64; count];
    let mut parent = vec![usize::MAX; count];
    let mut last = usize::MAX;
    for _ in 0..count {
        last = usize::MAX;
        for &(u, v, w) in &edges {
            if dist[u] + w < dist[v] {
                dist[v] = dist[u] + w;
                parent[v] = u;
                last = v;
            }
        }
        if last == usize::MAX {
            return None;
        }
    }
    let mut v = last;
    for _ in 0..count {
        v = parent[v];
    }
    let mut cycle = vec![v];
    let mut u = parent[v];
    while u != v {
        cycle.push(u);
        u = parent[u];
    }
    Some(cycle)
}

/// Step-order analysis: `before[i]` holds every step that must complete
/// before step `i` (its waits, earlier steps of its node, transitively).
pub struct Order {
    before: Vec<Vec<u64>>,
}

impl Order {
    pub fn new(steps: &[Step]) -> Result<Self, String> {
        let words = steps.len().div_ceil(64);
        let mut before: Vec<Vec<u64>> = Vec::with_capacity(steps.len());
        let mut last_on_node: BTreeMap<&NodeId, usize> = BTreeMap::new();
        for (i, step) in steps.iter().enumerate() {
            let mut set = vec![0u64; words];
            let mut direct: Vec<usize> = step.wait_for.clone();
            if let Some(&prev) = last_on_node.get(&step.node) {
                direct.push(prev);
            }
            for d in direct {
                if d >= i {
                    return Err(format!("step {i} waits for a later step {d}"));
                }
                set[d / 64] |= 1 << (d % 64);
                for (w, bits) in set.iter_mut().zip(&before[d]) {
                    *w |= bits;
                }
            }
            last_on_node.insert(&step.node, i);
            before.push(set);
        }
        Ok(Self { before })
    }

    /// Step `a` is guaranteed to complete before step `b` starts.
    pub fn precedes(&self, a: usize, b: usize) -> bool {
        self.before[b][a / 64] & (1 << (a % 64)) != 0
    }
}

fn query(step: &Step) -> String {
    step.action.to_query_text()
}

/// A step that puts a wrapper in place (created, or swapped for another).
fn is_wrapper_create(step: &Step) -> bool {
    matches!(
        step.action,
        Action::Ddl(Ddl::CreateWrapper { .. } | Ddl::SwapWrapper { .. })
    )
}

/// The nodes a wrapper text routes `shard_table` to.
fn routed_nodes(wrapper: &str, shard_table: &str) -> Option<Vec<String>> {
    for clause in wrapper.split_whitespace() {
        if clause == format!("local='{shard_table}'") {
            return Some(vec!["<local>".into()]);
        }
        let Some(value) = clause
            .strip_prefix("agent='")
            .and_then(|c| c.strip_suffix('\''))
        else {
            continue;
        };
        let value = value.split('[').next().unwrap_or(value);
        let mirrors: Vec<&str> = value.split('|').collect();
        if mirrors
            .iter()
            .any(|m| m.ends_with(&format!(":{shard_table}")))
        {
            return Some(
                mirrors
                    .iter()
                    .map(|m| m.trim_end_matches(&format!(":{shard_table}")).to_string())
                    .collect(),
            );
        }
    }
    None
}

/// The data-safety rules of the step list of a plan.
pub fn check_steps(
    plan: &TablePlan,
    steps: &[Step],
    states: &BTreeMap<NodeId, NodeState>,
) -> Result<(), String> {
    let order = Order::new(steps)?;
    let live = |n: &NodeId| states.get(n).is_some_and(|s| s.is_live());
    let table = plan.table.as_str();
    for m in &plan.moves {
        let shard_table = format!("system.{table}_s{}", m.shard);
        let verifies: Vec<usize> = steps
            .iter()
            .enumerate()
            .filter(|(_, s)| matches!(&s.action, Action::VerifyCopy { table, .. } if *table == shard_table))
            .map(|(i, _)| i)
            .collect();
        if let Some(to) = &m.to {
            if !verifies.iter().any(|&i| steps[i].node == *to) {
                return Err(format!(
                    "{m:?}: no row-count verification on the new holder"
                ));
            }
        }
        // Retiring a copy comes after every verification of the shard and
        // after every live node's last wrapper.
        let retire = format!("DROP TABLE IF EXISTS {shard_table}");
        for (i, step) in steps.iter().enumerate().filter(|(_, s)| query(s) == retire) {
            if let Some(v) = verifies.iter().find(|&&v| !order.precedes(v, i)) {
                return Err(format!(
                    "step {i} drops {shard_table} before verification {v}"
                ));
            }
            for (w, wrapper) in steps
                .iter()
                .enumerate()
                .filter(|(_, s)| is_wrapper_create(s) && live(&s.node))
            {
                if !order.precedes(w, i) && step.node != wrapper.node {
                    return Err(format!(
                        "step {i} drops {shard_table} before wrapper {w} is in place"
                    ));
                }
            }
        }
    }
    // No lost writes: while a shard leaves a cluster, every live node routes
    // it to one node, and no live wrapper changes concurrently.
    for (d, detach) in steps.iter().enumerate() {
        let text = query(detach);
        let Some(rest) = text.strip_prefix("ALTER CLUSTER ") else {
            continue;
        };
        let Some((_, tables)) = rest.split_once(" DROP ") else {
            continue;
        };
        if !live(&detach.node) {
            continue;
        }
        for shard_table in tables.split(',') {
            for node in states.keys().filter(|n| live(n)) {
                let wrappers: Vec<usize> = steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.node == *node && is_wrapper_create(s))
                    .map(|(i, _)| i)
                    .collect();
                let latest = wrappers.iter().rev().find(|&&w| order.precedes(w, d));
                if let Some(&w) = latest {
                    let routed = routed_nodes(&query(&steps[w]), shard_table).unwrap_or_default();
                    if routed.len() > 1 {
                        return Err(format!(
                            "detach {d} of {shard_table} while node {node} routes it to {routed:?}"
                        ));
                    }
                }
                // A wrapper that may run during or after the detach and
                // routes the shard to several nodes must wait for the shard
                // to be attached to its new cluster.
                let attaches: Vec<usize> = steps
                    .iter()
                    .enumerate()
                    .filter(|(a, s)| {
                        let q = query(s);
                        order.precedes(d, *a)
                            && q.starts_with("ALTER CLUSTER ")
                            && !q.starts_with("ALTER CLUSTER temp_move_")
                            && q.split_once(" ADD ")
                                .is_some_and(|(_, t)| t.split(',').any(|t| t == shard_table))
                    })
                    .map(|(a, _)| a)
                    .collect();
                for &w in wrappers.iter().filter(|&&w| !order.precedes(w, d)) {
                    let routed = routed_nodes(&query(&steps[w]), shard_table).unwrap_or_default();
                    if routed.len() > 1 && !attaches.iter().any(|&a| order.precedes(a, w)) {
                        return Err(format!(
                            "wrapper {w} on {node} routes {shard_table} to {routed:?} before it is attached again after detach {d}"
                        ));
                    }
                }
            }
        }
    }
    // A rollback-only step precedes every JOIN of a temporary cluster.
    for (j, step) in steps.iter().enumerate() {
        if query(step).starts_with("JOIN CLUSTER temp_move_") {
            let carried = steps[..j]
                .iter()
                .any(|s| s.node == step.node && s.action == Action::Noop && s.rollback.is_some());
            if !carried {
                return Err(format!(
                    "temporary join {j} has no rollback carrier before it"
                ));
            }
        }
    }
    Ok(())
}
