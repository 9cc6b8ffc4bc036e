//! How far a group has come, and what undoing it takes.

use std::collections::BTreeSet;

use crate::ids::NodeId;
use crate::sharding::config::RetryPolicy;
use crate::sharding::records::{GroupName, QueueRow, QueueStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Every row is processed.
    Done,
    /// A row failed for good.
    Failed {
        row: u64,
        node: NodeId,
    },
    /// The deadline passed first.
    TimedOut,
    Running,
}

/// Assesses a committed group from its unfinished rows.
pub fn assess(unfinished: &[QueueRow], policy: &RetryPolicy, deadline_passed: bool) -> Progress {
    if let Some(failed) = unfinished.iter().find(|r| policy.is_final(r)) {
        return Progress::Failed {
            row: failed.id,
            node: failed.node.clone(),
        };
    }
    if unfinished.is_empty() {
        return Progress::Done;
    }
    if deadline_passed {
        return Progress::TimedOut;
    }
    Progress::Running
}

/// Whether an aborted group has settled: no live node is still executing one
/// of its rows (a row that was `processing` on a node that died is unknown,
/// and is undone like a processed one).
pub fn settled(unfinished: &[QueueRow], live: &BTreeSet<NodeId>) -> bool {
    !unfinished
        .iter()
        .any(|r| r.status == QueueStatus::Processing && live.contains(&r.node))
}

/// The rows to undo, newest first: processed rows, and rows whose outcome is
/// unknown because their node died while running them. A row that failed
/// never took effect (its statement errored), so it is not undone — undoing it
/// could destroy something that existed before (e.g. a conflicting table).
pub fn to_undo<'a>(rows: &'a [QueueRow], live: &BTreeSet<NodeId>) -> Vec<&'a QueueRow> {
    let mut undo: Vec<&QueueRow> = rows
        .iter()
        .filter(|r| r.rollback.is_some())
        .filter(|r| {
            r.status == QueueStatus::Processed
                || (r.status == QueueStatus::Processing && !live.contains(&r.node))
        })
        .collect();
    undo.sort_by_key(|r| std::cmp::Reverse(r.id));
    undo
}

/// Builds the rollback rows for `undo` (newest first), each on the node that
/// ran the forward step. Rollbacks on live nodes form one chain in reverse
/// forward order; rollbacks on dead nodes wait for nothing and run, in their
/// node's own order, when the node is back — they must not hold up the
/// cleanup of the live nodes.
pub fn rollback_rows(
    undo: &[&QueueRow],
    live: &BTreeSet<NodeId>,
    mut next_id: impl FnMut() -> u64,
    group: &GroupName,
    now_ms: i64,
) -> Vec<QueueRow> {
    let mut rows = Vec::with_capacity(undo.len());
    let mut previous_live = 0;
    for forward in undo {
        let Some(action) = forward.rollback.clone() else {
            continue;
        };
        let id = next_id();
        let is_live = live.contains(&forward.node);
        rows.push(QueueRow::fresh(
            id,
            forward.node.clone(),
            action,
            None,
            if is_live { previous_live } else { 0 },
            group,
            now_ms,
        ));
        if is_live {
            previous_live = id;
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::{Action, Ddl};
    use std::time::Duration;

    const POLICY: RetryPolicy = RetryPolicy {
        max_tries: 2,
        base_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(10),
    };

    fn sql(text: &str) -> Action {
        Action::Ddl(Ddl::Other(text.into()))
    }

    fn row(id: u64, node: &str, status: QueueStatus, rollback: &str) -> QueueRow {
        let mut r = QueueRow::fresh(
            id,
            NodeId::new(node),
            sql(&format!("do {id}")),
            (!rollback.is_empty()).then(|| sql(rollback)),
            0,
            &GroupName::from("g"),
            0,
        );
        r.status = status;
        r.tries = if status == QueueStatus::Error { 2 } else { 1 };
        r
    }

    fn live(v: &[&str]) -> BTreeSet<NodeId> {
        v.iter().map(|s| NodeId::new(*s)).collect()
    }

    #[test]
    fn progress_of_a_group() {
        use QueueStatus::*;
        assert_eq!(assess(&[], &POLICY, true), Progress::Done);
        let running = [row(2, "b", Created, "")];
        assert_eq!(assess(&running, &POLICY, false), Progress::Running);
        assert_eq!(assess(&running, &POLICY, true), Progress::TimedOut);
        let failed = [row(2, "b", Error, "")];
        assert_eq!(
            assess(&failed, &POLICY, false),
            Progress::Failed {
                row: 2,
                node: NodeId::new("b")
            }
        );
    }

    #[test]
    fn undo_order_and_chaining() {
        use QueueStatus::*;
        let rows = [
            row(1, "a", Processed, "undo 1"),
            row(2, "b", Processed, "undo 2"),
            row(3, "c", Processing, "undo 3"),
            row(4, "a", Error, "undo 4"),
            row(5, "b", Created, "undo 5"),
            row(6, "a", Processed, ""),
            row(7, "b", Processed, "undo 7"),
        ];
        let alive = live(&["a", "b"]);
        assert!(settled(&rows, &alive));
        assert!(!settled(&rows, &live(&["a", "b", "c"])));
        let undo = to_undo(&rows, &alive);
        assert_eq!(
            undo.iter().map(|r| r.id).collect::<Vec<_>>(),
            vec![7, 3, 2, 1]
        );
        let mut next = 100;
        let rb = rollback_rows(
            &undo,
            &alive,
            || {
                next += 1;
                next
            },
            &GroupName::from("g_rollback"),
            5,
        );
        let shape = crate::sharding::testing::shapes(&rb);
        assert_eq!(
            shape,
            vec![
                (101, "b", "undo 7".to_string(), 0),
                (102, "c", "undo 3".to_string(), 0),
                (103, "b", "undo 2".to_string(), 101),
                (104, "a", "undo 1".to_string(), 103),
            ]
        );
    }
}
