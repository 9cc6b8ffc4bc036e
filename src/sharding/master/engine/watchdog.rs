//! The master's health monitor for rebalances, on its own clock:
//!
//! * a rebalance that makes no progress (no step done, no attempt made) for
//!   `SHARDBUDDY_STALL_S` while no step of it is running on a node whose
//!   shardbuddy beats is *stalled*: it is undone like a failed one (and
//!   planned again); a paused one is never stalled, and a step a live
//!   process is running (a state transfer may take hours) is progress;
//! * a table whose rebalance failed (a step failed for good, a node it
//!   needed left, or it stalled) is tried again after
//!   `SHARDBUDDY_REBALANCE_RETRY_S`, doubled after each further failure
//!   (at most 16 times), and no more after `SHARDBUDDY_REBALANCE_ATTEMPTS`
//!   failures in a row, until an operator runs `REBALANCE TABLE` (or a
//!   rebalance of it completes).
//!
//! Both are kept in memory: a new master starts with a clean slate.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::ids::{NodeId, TableName};
use crate::sharding::records::{GroupName, QueueRow, QueueStatus};

use super::RebalanceConfig;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Failures {
    last: Instant,
    count: u32,
}

/// Whether automatic rebalancing may start a table's rebalance now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    Free,
    /// Its last rebalance failed too recently.
    BackingOff,
    /// This many rebalances of it failed in a row.
    GaveUp(u32),
}

#[derive(Debug, Default)]
pub struct Watchdog {
    failures: BTreeMap<TableName, Failures>,
    /// Per running rebalance: what its progress looked like, and since when.
    marks: BTreeMap<GroupName, (u64, Instant)>,
}

impl Watchdog {
    /// A rebalance of `table` failed (and is being undone).
    pub fn failed(&mut self, table: &TableName, now: Instant) {
        let f = self.failures.entry(table.clone()).or_insert(Failures {
            last: now,
            count: 0,
        });
        f.last = now;
        f.count = f.count.saturating_add(1);
    }

    /// A rebalance of `table` completed, or an operator asked for one: the
    /// failures before it no longer count.
    pub fn cleared(&mut self, table: &TableName) {
        self.failures.remove(table);
    }

    pub fn hold(&self, table: &TableName, now: Instant, config: &RebalanceConfig) -> Hold {
        let Some(f) = self.failures.get(table) else {
            return Hold::Free;
        };
        if f.count >= config.attempts {
            return Hold::GaveUp(f.count);
        }
        let wait = config
            .retry_after
            .saturating_mul(1 << f.count.saturating_sub(1).min(4));
        if now.saturating_duration_since(f.last) < wait {
            Hold::BackingOff
        } else {
            Hold::Free
        }
    }

    /// How long the running rebalance `name` (its unfinished rows; first
    /// watched at `watched`) has made no progress while nothing of it runs
    /// on a live process, once that reaches `limit`; `beating` says whether
    /// a node's shardbuddy beats.
    pub fn stalled(
        &mut self,
        name: &GroupName,
        unfinished: &[QueueRow],
        (watched, now): (Instant, Instant),
        limit: Duration,
        beating: impl Fn(&NodeId) -> bool,
    ) -> Option<Duration> {
        let tries: u64 = unfinished.iter().map(|r| u64::from(r.tries)).sum();
        let left = u64::try_from(unfinished.len()).unwrap_or(u64::MAX);
        let mark = left << 32 | (tries & 0xffff_ffff);
        let since = match self.marks.get(name) {
            Some((m, since)) if *m == mark => *since,
            Some(_) => {
                self.marks.insert(name.clone(), (mark, now));
                return None;
            }
            None => {
                self.marks.insert(name.clone(), (mark, watched));
                watched
            }
        };
        let quiet = now.saturating_duration_since(since);
        let running = unfinished
            .iter()
            .any(|r| r.status == QueueStatus::Processing && beating(&r.node));
        (quiet >= limit && !running).then_some(quiet)
    }

    /// Forgets the progress of `name` (paused, or finished): its quiet time
    /// starts again when it runs.
    pub fn rest(&mut self, name: &GroupName) {
        self.marks.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::Action;

    fn config() -> RebalanceConfig {
        RebalanceConfig {
            delay: Duration::ZERO,
            parallel: 1,
            retry_after: Duration::from_secs(10),
            automatic: true,
            attempts: 3,
            stall_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn failures_back_off_doubling_then_give_up_until_cleared() {
        let t = TableName::parse("t").unwrap();
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let mut w = Watchdog::default();
        assert_eq!(w.hold(&t, t0, &config()), Hold::Free);
        w.failed(&t, t0);
        assert_eq!(w.hold(&t, s(9), &config()), Hold::BackingOff);
        assert_eq!(w.hold(&t, s(10), &config()), Hold::Free);
        w.failed(&t, s(10));
        assert_eq!(w.hold(&t, s(29), &config()), Hold::BackingOff);
        assert_eq!(w.hold(&t, s(30), &config()), Hold::Free);
        w.failed(&t, s(30));
        assert_eq!(w.hold(&t, s(10_000), &config()), Hold::GaveUp(3));
        w.cleared(&t);
        assert_eq!(w.hold(&t, s(10_001), &config()), Hold::Free);
    }

    fn row(id: u64, node: &str, status: QueueStatus, tries: u32) -> QueueRow {
        QueueRow {
            id,
            node: NodeId::new(node),
            action: Action::Noop,
            rollback: None,
            wait_for_id: 0,
            group: GroupName::from("rebalance_t_1"),
            tries,
            status,
            created_at: 0,
            updated_at: 0,
            duration: 0,
        }
    }

    #[test]
    fn only_a_quiet_group_with_nothing_running_on_a_live_process_stalls() {
        let g = GroupName::from("rebalance_t_1");
        let t0 = Instant::now();
        let s = |n: u64| t0 + Duration::from_secs(n);
        let limit = Duration::from_secs(60);
        let mut w = Watchdog::default();
        let waiting = [row(1, "a", QueueStatus::Created, 0)];
        // Watched from when the group was started.
        assert_eq!(w.stalled(&g, &waiting, (t0, s(59)), limit, |_| true), None);
        assert_eq!(
            w.stalled(&g, &waiting, (t0, s(60)), limit, |_| true),
            Some(Duration::from_secs(60))
        );
        // An attempt is progress.
        let retried = [row(1, "a", QueueStatus::Error, 1)];
        assert_eq!(w.stalled(&g, &retried, (t0, s(61)), limit, |_| true), None);
        assert_eq!(w.stalled(&g, &retried, (t0, s(120)), limit, |_| true), None);
        // A step a live process runs is progress however long it takes;
        // one whose process is gone is not.
        let running = [row(1, "a", QueueStatus::Processing, 1)];
        assert_eq!(w.stalled(&g, &running, (t0, s(121)), limit, |_| true), None);
        assert_eq!(w.stalled(&g, &running, (t0, s(500)), limit, |_| true), None);
        assert!(w
            .stalled(&g, &running, (t0, s(500)), limit, |_| false)
            .is_some());
        // Resting (paused) starts the quiet time again.
        w.rest(&g);
        assert_eq!(
            w.stalled(&g, &running, (s(501), s(501)), limit, |_| false),
            None
        );
    }
}
