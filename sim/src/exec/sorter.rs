//! The top-N match queue, reproducing searchd's binary-heap sorter step for step.
//!
//! searchd keeps the worst match at the heap root, rejects candidates no better than the root
//! once full, and flattens by popping the root into the tail of the output. Matches that compare
//! equal (same weight, same row id in different segments) therefore come out in an order that
//! depends on the push sequence — the order real clients observe for queries without ORDER BY.

use std::cmp::Ordering;

/// A bounded queue; `cmp(a, b)` orders matches from worst (`Less`) to best (`Greater`).
pub struct TopN<T, F: Fn(&T, &T) -> Ordering> {
    cap: usize,
    heap: Vec<T>,
    cmp: F,
    total: u64,
}

impl<T, F: Fn(&T, &T) -> Ordering> TopN<T, F> {
    pub fn new(cap: usize, cmp: F) -> Self {
        TopN {
            cap,
            heap: Vec::new(),
            cmp,
            total: 0,
        }
    }

    /// `a` is strictly worse than `b`.
    fn worse(&self, a: &T, b: &T) -> bool {
        (self.cmp)(a, b) == Ordering::Less
    }

    pub fn push(&mut self, entry: T) {
        self.total += 1;
        if self.cap == 0 {
            return;
        }
        if self.heap.len() == self.cap {
            if !self.worse(&self.heap[0], &entry) {
                return;
            }
            self.pop_root();
        }
        self.heap.push(entry);
        let mut i = self.heap.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if !self.worse(&self.heap[i], &self.heap[parent]) {
                break;
            }
            self.heap.swap(i, parent);
            i = parent;
        }
    }

    /// Matches pushed, including rejected ones.
    pub fn total(&self) -> u64 {
        self.total
    }

    fn pop_root(&mut self) -> Option<T> {
        let last = self.heap.len().checked_sub(1)?;
        self.heap.swap(0, last);
        let root = self.heap.pop();
        let used = self.heap.len();
        let mut i = 0;
        loop {
            let mut child = 2 * i + 1;
            if child >= used {
                break;
            }
            if child + 1 < used && self.worse(&self.heap[child + 1], &self.heap[child]) {
                child += 1;
            }
            if self.worse(&self.heap[child], &self.heap[i]) {
                self.heap.swap(child, i);
                i = child;
                continue;
            }
            break;
        }
        root
    }

    /// Best match first.
    pub fn into_sorted(mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.heap.len());
        while let Some(worst) = self.pop_root() {
            out.push(worst);
        }
        out.reverse();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (id, rowid) with searchd's relevance order: equal weights, lower row id is better.
    fn by_rowid(a: &(i64, u32), b: &(i64, u32)) -> Ordering {
        b.1.cmp(&a.1)
    }

    fn run(input: &[(i64, u32)], cap: usize) -> Vec<i64> {
        let mut q = TopN::new(cap, by_rowid);
        for m in input {
            q.push(*m);
        }
        q.into_sorted().into_iter().map(|m| m.0).collect()
    }

    #[test]
    fn reproduces_golden_unordered_outputs() {
        // single.69: documents 1 (seg 0), 4 and 5 (seg 1), 2 (seg 3) → 4, 1, 2, 5
        assert_eq!(run(&[(1, 0), (4, 0), (5, 1), (2, 0)], 20), vec![4, 1, 2, 5]);
        // single.75: id != 1 → 4, 2, 5
        assert_eq!(run(&[(4, 0), (5, 1), (2, 0)], 20), vec![4, 2, 5]);
        // single.77 / .78: two rowid-0 documents swap
        assert_eq!(run(&[(1, 0), (2, 0)], 20), vec![2, 1]);
        // system_tables.80: one document per segment rotates left
        assert_eq!(run(&[(9, 0), (10, 0), (11, 0)], 20), vec![10, 11, 9]);
        // system_tables.53: a full queue keeps its root against an equal newcomer
        assert_eq!(run(&[(1, 0), (2, 0)], 1), vec![1]);
    }

    #[test]
    fn distinct_keys_come_out_sorted() {
        let mut q = TopN::new(3, |a: &i64, b: &i64| b.cmp(a));
        for v in [5, 1, 9, 3, 7, 2] {
            q.push(v);
        }
        assert_eq!(q.total(), 6);
        assert_eq!(q.into_sorted(), vec![1, 2, 3]);
    }
}
