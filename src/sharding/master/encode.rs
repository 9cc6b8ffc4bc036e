//! Turns planned steps into queue rows.
//!
//! A row can wait for one other row (`wait_for_id`). A step on node N that
//! depends on a step of the same node needs no wait at all (each node runs
//! its rows strictly in id order); of several dependencies on another node
//! only the last one counts, for the same reason; a step that depends on
//! several other nodes gets one no-op "barrier" row per extra node, placed
//! just before it on N.

use std::collections::BTreeMap;

use crate::ids::NodeId;
use crate::placement::{Action, Step};
use crate::sharding::records::{GroupName, QueueRow};

pub fn encode_steps(
    steps: &[Step],
    group: &GroupName,
    mut next_id: impl FnMut() -> u64,
    now_ms: i64,
) -> Vec<QueueRow> {
    let mut rows = Vec::with_capacity(steps.len());
    // Id of the row that completes each step.
    let mut step_ids: Vec<u64> = Vec::with_capacity(steps.len());
    for step in steps {
        // Of several dependencies on one node only the last matters: that
        // node runs its rows in order.
        let mut last_per_node: BTreeMap<&NodeId, usize> = BTreeMap::new();
        for &dep in step.wait_for.iter().filter(|&&d| d < step_ids.len()) {
            if steps[dep].node != step.node {
                let slot = last_per_node.entry(&steps[dep].node).or_insert(dep);
                *slot = (*slot).max(dep);
            }
        }
        let mut foreign: Vec<u64> = last_per_node.values().map(|&dep| step_ids[dep]).collect();
        foreign.sort_unstable();
        let last = foreign.pop().unwrap_or(0);
        for wait in foreign {
            rows.push(QueueRow::fresh(
                next_id(),
                step.node.clone(),
                Action::Noop,
                None,
                wait,
                group,
                now_ms,
            ));
        }
        let id = next_id();
        rows.push(QueueRow::fresh(
            id,
            step.node.clone(),
            step.action.clone(),
            step.rollback.clone(),
            last,
            group,
            now_ms,
        ));
        step_ids.push(id);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::Ddl;

    fn sql(text: &str) -> Action {
        Action::Ddl(Ddl::Other(text.into()))
    }

    fn step(node: &str, text: &str, wait_for: Vec<usize>) -> Step {
        Step {
            node: NodeId::new(node),
            action: sql(text),
            rollback: Some(sql(&format!("undo {text}"))),
            wait_for,
        }
    }

    #[test]
    fn waits_become_row_ids_and_extra_waits_become_barriers() {
        let steps = vec![
            step("a", "s0", vec![]),
            step("b", "s1", vec![]),
            step("a", "s2", vec![0]),
            step("c", "s3", vec![0, 1, 2]),
        ];
        let mut next = 0;
        let group = GroupName::from("g");
        let rows = encode_steps(
            &steps,
            &group,
            || {
                next += 1;
                next
            },
            7,
        );
        let shape = crate::sharding::testing::shapes(&rows);
        let noop = Action::Noop.to_query_text();
        assert_eq!(
            shape,
            vec![
                (1, "a", "s0".to_string(), 0),
                (2, "b", "s1".to_string(), 0),
                // Same-node dependencies are implied by id order.
                (3, "a", "s2".to_string(), 0),
                // Waits on `a` (steps 0 and 2) reduce to the last one; `b`
                // needs a barrier.
                (4, "c", noop, 2),
                (5, "c", "s3".to_string(), 3),
            ]
        );
        assert!(rows.iter().all(|r| r.group == group && r.created_at == 7));
        assert_eq!(rows[4].rollback, Some(sql("undo s3")));
        assert_eq!(rows[3].rollback, None);
    }
}
