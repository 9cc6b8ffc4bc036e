//! The minimal-movement assignment of one table's replicas to its eligible
//! nodes.
//!
//! The problem is a min-cost flow: every shard needs `needed` replicas on
//! distinct nodes, node `i` must end with `floor(q_i)` or `ceil(q_i)` of them
//! (see `balance`), and a replica costs one copy unless the node already has
//! it. Starting from the current holders, every unit of imbalance (a shard
//! short of replicas, a node above its target) is routed to a node below its
//! target along a cheapest augmenting path; successive cheapest paths give a
//! minimum-cost result.
//!
//! Phase 1 takes the paths of one copy that almost every case consists of
//! (a copy straight onto a node that lacks the shard, or a move from a node
//! above its target to one below it) without any search. No augmenting path
//! is cheaper than one copy while only such paths have been taken, so each is
//! a cheapest path. Phase 2 handles what phase 1 leaves: it searches the
//! residual graph with Bellman-Ford (SPFA), which also finds the longer
//! chains needed when every node with room already holds the shard in
//! question, and finally cancels any negative cycle, so the result is a
//! minimum-cost flow. See `README.md` for the bound this reaches.

use std::collections::VecDeque;

use super::balance::{quotas, Quota};

/// One table's assignment problem over its eligible nodes `0..nodes`,
/// numbered in node-id order.
pub(super) struct Problem<'a> {
    pub weights: &'a [u64],
    /// Current eligible holders of every available shard.
    pub holders: &'a [Vec<usize>],
    /// Replicas every shard must end with.
    pub needed: u64,
    /// All shard indexes, cheapest to move first.
    pub preference: &'a [usize],
}

/// Final holders of every shard, ascending.
pub(super) fn solve(problem: &Problem<'_>) -> Vec<Vec<usize>> {
    let mut state = State::new(problem);
    state.trim_surplus_replicas();
    state.choose_targets();
    let all_placed = state.place_missing_replicas();
    let all_shed = state.shed_surplus(problem.preference);
    if !(all_placed && all_shed) {
        state.augment_along_cheapest_paths();
        state.cancel_negative_cycles();
    }
    state.final_holders()
}

struct State {
    nodes: usize,
    shards: usize,
    needed: u64,
    /// `holds[i * shards + s]`: node `i` holds shard `s` in the working state.
    holds: Vec<bool>,
    /// Same layout: node `i` held shard `s` before planning.
    original: Vec<bool>,
    node_count: Vec<u64>,
    /// Holders of every shard in the working state, ascending.
    shard_holders: Vec<Vec<usize>>,
    quota: Vec<Quota>,
    /// Node `i` takes `ceil(q_i)` instead of `floor(q_i)`.
    has_slot: Vec<bool>,
}

/// A vertex of the residual graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vertex {
    Shard(usize),
    Node(usize),
    /// The pool of `ceil` slots: `node → slot` takes one, `slot → node`
    /// gives one back.
    Slot,
}

const UNREACHED: i64 = i64::MAX;

impl State {
    fn new(problem: &Problem<'_>) -> Self {
        let nodes = problem.weights.len();
        let shards = problem.holders.len();
        let mut holds = vec![false; nodes * shards];
        let mut node_count = vec![0; nodes];
        let mut shard_holders = Vec::with_capacity(shards);
        for (s, holders) in problem.holders.iter().enumerate() {
            for &i in holders {
                holds[i * shards + s] = true;
                node_count[i] += 1;
            }
            let mut sorted = holders.clone();
            sorted.sort_unstable();
            shard_holders.push(sorted);
        }
        let total = problem.needed * shards as u64;
        Self {
            nodes,
            shards,
            needed: problem.needed,
            original: holds.clone(),
            holds,
            node_count,
            shard_holders,
            quota: quotas(total, problem.weights, shards as u64),
            has_slot: vec![false; nodes],
        }
    }

    fn holds(&self, node: usize, shard: usize) -> bool {
        self.holds[node * self.shards + shard]
    }

    fn original(&self, node: usize, shard: usize) -> bool {
        self.original[node * self.shards + shard]
    }

    fn set(&mut self, node: usize, shard: usize, held: bool) {
        debug_assert_ne!(self.holds(node, shard), held);
        self.holds[node * self.shards + shard] = held;
        let holders = &mut self.shard_holders[shard];
        match (held, holders.binary_search(&node)) {
            (true, Err(at)) => {
                holders.insert(at, node);
                self.node_count[node] += 1;
            }
            (false, Ok(at)) => {
                holders.remove(at);
                self.node_count[node] -= 1;
            }
            _ => debug_assert!(false, "holders out of step with the matrix"),
        }
    }

    fn shard_count(&self, shard: usize) -> u64 {
        self.shard_holders[shard].len() as u64
    }

    fn target(&self, node: usize) -> u64 {
        self.quota[node].floor + u64::from(self.has_slot[node])
    }

    fn deficit(&self, node: usize) -> u64 {
        self.target(node).saturating_sub(self.node_count[node])
    }

    fn surplus(&self, node: usize) -> u64 {
        self.node_count[node].saturating_sub(self.target(node))
    }

    /// A shard with more replicas than needed (a hand-edited placement)
    /// sheds them from the nodes furthest above their floor.
    fn trim_surplus_replicas(&mut self) {
        for s in 0..self.shards {
            while self.shard_count(s) > self.needed {
                let Some(node) = (0..self.nodes)
                    .filter(|&i| self.holds(i, s))
                    .max_by_key(|&i| {
                        (
                            self.node_count[i] as i128 - self.quota[i].floor as i128,
                            std::cmp::Reverse(i),
                        )
                    })
                else {
                    break;
                };
                self.set(node, s, false);
            }
        }
    }

    /// Hands out the `ceil` slots: first to nodes that already hold at least
    /// their ceiling (each such slot saves a move), then by how close the
    /// quota is to its ceiling, then by node order.
    fn choose_targets(&mut self) {
        let total = self.needed * self.shards as u64;
        let floors: u64 = self.quota.iter().map(|q| q.floor).sum();
        let slots = total.saturating_sub(floors) as usize;
        let mut candidates: Vec<usize> = (0..self.nodes)
            .filter(|&i| self.quota[i].remainder > 0)
            .collect();
        candidates.sort_by_key(|&i| {
            (
                std::cmp::Reverse(self.node_count[i] >= self.quota[i].ceil()),
                std::cmp::Reverse(self.quota[i].remainder),
                i,
            )
        });
        for &i in candidates.iter().take(slots) {
            self.has_slot[i] = true;
        }
    }

    /// Phase 1a: every missing replica goes straight to the node with the
    /// most room that lacks the shard. Returns false if some could not.
    fn place_missing_replicas(&mut self) -> bool {
        let mut all_placed = true;
        for s in 0..self.shards {
            while self.shard_count(s) < self.needed {
                let Some(node) = (0..self.nodes)
                    .filter(|&i| !self.holds(i, s) && self.deficit(i) > 0)
                    .max_by_key(|&i| (self.deficit(i), std::cmp::Reverse(i)))
                else {
                    all_placed = false;
                    break;
                };
                self.set(node, s, true);
            }
        }
        all_placed
    }

    /// Phase 1b: nodes above their target hand a shard (cheapest first) to a
    /// node below its target that lacks it. Returns false if some node could
    /// not shed everything this way.
    fn shed_surplus(&mut self, preference: &[usize]) -> bool {
        // What each node can give, cheapest first. Nodes with a surplus
        // only lose shards here, so the lists only shrink.
        let mut offers: Vec<Vec<usize>> = vec![Vec::new(); self.nodes];
        for &s in preference {
            for &i in &self.shard_holders[s] {
                offers[i].push(s);
            }
        }
        let mut stuck = vec![false; self.nodes];
        loop {
            let Some(from) = (0..self.nodes)
                .filter(|&i| !stuck[i] && self.surplus(i) > 0)
                .max_by_key(|&i| (self.surplus(i), std::cmp::Reverse(i)))
            else {
                return !stuck.iter().any(|s| *s);
            };
            let movable = |to: usize| {
                offers[from]
                    .iter()
                    .position(|&s| !self.holds(to, s))
                    .map(|at| (to, at))
            };
            let best = (0..self.nodes)
                .filter(|&i| self.deficit(i) > 0)
                .max_by_key(|&i| (self.deficit(i), std::cmp::Reverse(i)));
            // The best receiver almost always works; the sorted list is only
            // needed when it already holds everything `from` could give.
            let choice = best.and_then(movable).or_else(|| {
                let mut receivers: Vec<usize> =
                    (0..self.nodes).filter(|&i| self.deficit(i) > 0).collect();
                receivers.sort_by_key(|&i| (std::cmp::Reverse(self.deficit(i)), i));
                receivers.into_iter().find_map(movable)
            });
            match choice {
                Some((to, at)) => {
                    let s = offers[from].remove(at);
                    self.set(from, s, false);
                    self.set(to, s, true);
                }
                None => stuck[from] = true,
            }
        }
    }

    fn is_supply(&self, v: Vertex) -> bool {
        match v {
            Vertex::Shard(s) => self.shard_count(s) < self.needed,
            Vertex::Node(i) => self.surplus(i) > 0,
            Vertex::Slot => false,
        }
    }

    fn vertex_count(&self) -> usize {
        self.shards + self.nodes + 1
    }

    fn index(&self, v: Vertex) -> usize {
        match v {
            Vertex::Shard(s) => s,
            Vertex::Node(i) => self.shards + i,
            Vertex::Slot => self.shards + self.nodes,
        }
    }

    fn vertex(&self, index: usize) -> Vertex {
        if index < self.shards {
            Vertex::Shard(index)
        } else if index < self.shards + self.nodes {
            Vertex::Node(index - self.shards)
        } else {
            Vertex::Slot
        }
    }

    /// Residual edges out of `v` with their cost in copies.
    fn for_each_edge(&self, v: Vertex, mut visit: impl FnMut(Vertex, i64)) {
        match v {
            Vertex::Shard(s) => {
                for i in (0..self.nodes).filter(|&i| !self.holds(i, s)) {
                    visit(Vertex::Node(i), if self.original(i, s) { 0 } else { 1 });
                }
            }
            Vertex::Node(i) => {
                for s in (0..self.shards).filter(|&s| self.holds(i, s)) {
                    visit(Vertex::Shard(s), if self.original(i, s) { 0 } else { -1 });
                }
                if self.quota[i].remainder > 0 && !self.has_slot[i] {
                    visit(Vertex::Slot, 0);
                }
            }
            Vertex::Slot => {
                for j in (0..self.nodes).filter(|&j| self.has_slot[j]) {
                    visit(Vertex::Node(j), 0);
                }
            }
        }
    }

    fn apply_edge(&mut self, from: Vertex, to: Vertex) {
        match (from, to) {
            (Vertex::Shard(s), Vertex::Node(i)) => self.set(i, s, true),
            (Vertex::Node(i), Vertex::Shard(s)) => self.set(i, s, false),
            (Vertex::Node(i), Vertex::Slot) => self.has_slot[i] = true,
            (Vertex::Slot, Vertex::Node(j)) => self.has_slot[j] = false,
            _ => debug_assert!(false, "no residual edge {from:?} -> {to:?}"),
        }
    }

    /// Phase 2: successive cheapest augmenting paths until no node is above
    /// its target and no shard is short of replicas.
    fn augment_along_cheapest_paths(&mut self) {
        loop {
            let sources: Vec<usize> = (0..self.vertex_count())
                .filter(|&v| self.is_supply(self.vertex(v)))
                .collect();
            if sources.is_empty() {
                return;
            }
            match self.shortest_paths(&sources) {
                Search::Paths { dist, parent } => {
                    let Some(end) = (0..self.nodes)
                        .filter(|&i| self.deficit(i) > 0)
                        .map(|i| self.index(Vertex::Node(i)))
                        .filter(|&v| dist[v] != UNREACHED)
                        .min_by_key(|&v| (dist[v], v))
                    else {
                        debug_assert!(false, "a supply without any augmenting path");
                        return;
                    };
                    match trace_back(&parent, end) {
                        Some(path) => self.apply_path(&path),
                        // A parent loop is a negative cycle SPFA had not
                        // flagged yet; cancelling it is progress too.
                        None => self.apply_path(&extract_cycle(&parent, end, parent.len())),
                    }
                }
                Search::NegativeCycle(cycle) => self.apply_path(&cycle),
            }
        }
    }

    /// Removes every negative-cost cycle left in the residual graph, so the
    /// final assignment is a minimum-cost one.
    fn cancel_negative_cycles(&mut self) {
        let all: Vec<usize> = (0..self.vertex_count()).collect();
        while let Search::NegativeCycle(cycle) = self.shortest_paths(&all) {
            self.apply_path(&cycle);
        }
    }

    fn apply_path(&mut self, path: &[usize]) {
        for pair in path.windows(2) {
            self.apply_edge(self.vertex(pair[0]), self.vertex(pair[1]));
        }
    }

    /// SPFA from `sources` (distance 0). A vertex relaxed `V` times proves a
    /// negative cycle, which is returned as a closed vertex sequence.
    fn shortest_paths(&self, sources: &[usize]) -> Search {
        let count = self.vertex_count();
        let mut dist = vec![UNREACHED; count];
        let mut parent: Vec<Option<usize>> = vec![None; count];
        let mut relaxed = vec![0usize; count];
        let mut queued = vec![false; count];
        let mut queue = VecDeque::new();
        for &v in sources {
            dist[v] = 0;
            queued[v] = true;
            queue.push_back(v);
        }
        while let Some(v) = queue.pop_front() {
            queued[v] = false;
            let base = dist[v];
            let mut cycle_at = None;
            self.for_each_edge(self.vertex(v), |to, cost| {
                let w = self.index(to);
                if cycle_at.is_none() && base + cost < dist[w] {
                    dist[w] = base + cost;
                    parent[w] = Some(v);
                    relaxed[w] += 1;
                    if relaxed[w] >= count {
                        cycle_at = Some(w);
                    } else if !queued[w] {
                        queued[w] = true;
                        queue.push_back(w);
                    }
                }
            });
            if let Some(w) = cycle_at {
                return Search::NegativeCycle(extract_cycle(&parent, w, count));
            }
        }
        Search::Paths { dist, parent }
    }

    fn final_holders(self) -> Vec<Vec<usize>> {
        self.shard_holders
    }
}

enum Search {
    Paths {
        dist: Vec<i64>,
        parent: Vec<Option<usize>>,
    },
    NegativeCycle(Vec<usize>),
}

/// The path from a source to `end` in forward order, or `None` if the
/// parent links loop.
fn trace_back(parent: &[Option<usize>], end: usize) -> Option<Vec<usize>> {
    let mut path = vec![end];
    let mut v = end;
    while let Some(prev) = parent[v] {
        if path.len() > parent.len() {
            return None;
        }
        path.push(prev);
        v = prev;
    }
    path.reverse();
    Some(path)
}

/// Walks `count` parent links back from `start` to land inside the cycle,
/// then collects it in forward order, first vertex repeated at the end.
fn extract_cycle(parent: &[Option<usize>], start: usize, count: usize) -> Vec<usize> {
    let mut v = start;
    for _ in 0..count {
        v = parent[v].unwrap_or(v);
    }
    let mut cycle = vec![v];
    let mut u = parent[v].unwrap_or(v);
    while u != v {
        cycle.push(u);
        u = parent[u].unwrap_or(v);
    }
    cycle.push(v);
    cycle.reverse();
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(weights: &[u64], holders: &[Vec<usize>], needed: u64) -> Vec<Vec<usize>> {
        let preference: Vec<usize> = (0..holders.len()).collect();
        solve(&Problem {
            weights,
            holders,
            needed,
            preference: &preference,
        })
    }

    fn copies(before: &[Vec<usize>], after: &[Vec<usize>]) -> usize {
        before
            .iter()
            .zip(after)
            .map(|(b, a)| a.iter().filter(|n| !b.contains(n)).count())
            .sum()
    }

    #[test]
    fn balanced_input_is_left_alone() {
        let holders = vec![vec![0, 1], vec![1, 2], vec![0, 2]];
        assert_eq!(run(&[1, 1, 1], &holders, 2), holders);
    }

    #[test]
    fn lost_replicas_go_to_the_nodes_with_room() {
        // Node 2 died; its replicas of shards 1 and 2 are gone.
        let holders = vec![vec![0, 1], vec![1], vec![0]];
        let after = run(&[1, 1], &holders, 2);
        assert_eq!(after, vec![vec![0, 1], vec![0, 1], vec![0, 1]]);
    }

    /// Every node with room already holds the shard that lost a replica, so
    /// one copy cannot do: a chain of two is the minimum (see README).
    #[test]
    fn chain_when_the_only_node_with_room_holds_the_shard() {
        let holders = vec![vec![0, 1], vec![0, 1], vec![2]];
        let after = run(&[1, 1, 1], &holders, 2);
        assert_eq!(copies(&holders, &after), 2);
        for h in &after {
            assert_eq!(h.len(), 2);
        }
        let loads: Vec<usize> = (0..3)
            .map(|i| after.iter().filter(|h| h.contains(&i)).count())
            .collect();
        assert_eq!(loads, vec![2, 2, 2]);
    }

    #[test]
    fn weighted_chain() {
        // Weights 20, 2, 8, 10 over 10 shards with 2 replicas: targets are
        // 10, 1, 4, 5. Node 0 lacks only shard 9, which node 1 does not
        // have, so node 1's surplus must travel through node 2.
        let mut holders: Vec<Vec<usize>> = vec![vec![0, 1], vec![0, 1]];
        holders.extend((2..5).map(|_| vec![0, 2]));
        holders.extend((5..9).map(|_| vec![0, 3]));
        holders.push(vec![2, 3]);
        let after = run(&[20, 2, 8, 10], &holders, 2);
        assert_eq!(copies(&holders, &after), 2);
        let loads: Vec<usize> = (0..4)
            .map(|i| after.iter().filter(|h| h.contains(&i)).count())
            .collect();
        assert_eq!(loads, vec![10, 1, 4, 5]);
    }

    #[test]
    fn surplus_replicas_are_trimmed() {
        let holders = vec![vec![0, 1, 2], vec![0]];
        let after = run(&[1, 1, 1], &holders, 1);
        assert!(after.iter().all(|h| h.len() == 1));
        assert_eq!(copies(&holders, &after), 0);
    }
}
