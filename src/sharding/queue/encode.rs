//! Turns planned steps into queue rows.
//!
//! A row can wait for one other row (`wait_for_id`). A step on node N that
//! depends on a step of the same node needs no wait at all (each node runs
//! its rows strictly in id order); a step that depends on steps of several
//! other nodes gets one no-op "barrier" row per extra dependency, placed just
//! before it on N.

use crate::placement::{Action, Step};
use crate::sharding::queue::row::{QueueRow, QueueStatus};

pub fn encode_steps(
    steps: &[Step],
    group: &str,
    mut next_id: impl FnMut() -> u64,
    now_ms: i64,
) -> Vec<QueueRow> {
    let mut rows = Vec::with_capacity(steps.len());
    // Id of the row that completes each step.
    let mut step_ids: Vec<u64> = Vec::with_capacity(steps.len());
    let row =
        |id: u64, node: &crate::ids::NodeId, query: String, rollback: String, wait: u64| QueueRow {
            id,
            node: node.clone(),
            query,
            rollback_query: rollback,
            wait_for_id: wait,
            operation_group: group.to_string(),
            tries: 0,
            status: QueueStatus::Created,
            created_at: now_ms,
            updated_at: now_ms,
            duration: 0,
        };
    for step in steps {
        let mut foreign: Vec<u64> = step
            .wait_for
            .iter()
            .filter(|&&dep| dep < step_ids.len() && steps[dep].node != step.node)
            .map(|&dep| step_ids[dep])
            .collect();
        foreign.sort_unstable();
        foreign.dedup();
        let last = foreign.pop().unwrap_or(0);
        for wait in foreign {
            rows.push(row(
                next_id(),
                &step.node,
                Action::Noop.to_query_text(),
                String::new(),
                wait,
            ));
        }
        let id = next_id();
        let rollback = step
            .rollback
            .as_ref()
            .map(Action::to_query_text)
            .unwrap_or_default();
        rows.push(row(
            id,
            &step.node,
            step.action.to_query_text(),
            rollback,
            last,
        ));
        step_ids.push(id);
    }
    rows
}
