//! Which of this node's queue rows runs next — the pure core of the executor.
//!
//! Rows run strictly in id order: the first row that cannot run yet ends the
//! pass (a later row may depend on it implicitly, e.g. an `ALTER CLUSTER …
//! ADD` on the same node as the `CREATE TABLE` before it). Rows that will
//! never run are passed over instead of blocking the node forever (PHP Buddy
//! bug 10): rows of finished, aborted or stale groups, rows whose final try
//! failed (the master aborts their group), and orphans of a master that died
//! before committing.

use std::collections::{BTreeMap, BTreeSet};

use crate::sharding::config::RetryPolicy;
use crate::sharding::records::{
    epoch_of, GroupName, GroupRecord, GroupStatus, Lease, QueueRow, QueueStatus,
};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Run the row at this index of the input.
    Run(usize),
    /// Nothing can run now; try again at the given time (ms) or on the next
    /// poll.
    Wait {
        reason: String,
        retry_at_ms: Option<i64>,
    },
    /// No row is pending.
    Idle,
}

/// Whether a group lets its rows run.
enum Gate {
    Open,
    /// Never: pass over the row.
    Closed,
    /// Not yet: stop the pass.
    Hold(String),
    /// An operator paused the group: pass over its rows (other groups' rows
    /// on this node go on; the group's own later rows are passed over too).
    Paused,
}

fn gate(row: &QueueRow, groups: &BTreeMap<GroupName, GroupRecord>, lease: &Lease) -> Gate {
    match groups.get(&row.group) {
        // The master writes rows first and the commit record last: a row of
        // the current epoch without a record is being written right now; an
        // older one was left by a master that died before committing.
        None if epoch_of(row.id) >= lease.epoch => {
            Gate::Hold(format!("group '{}' is not committed yet", row.group))
        }
        None => Gate::Closed,
        Some(g) if g.status != GroupStatus::Committed => Gate::Closed,
        Some(g) if g.is_paused() => Gate::Paused,
        Some(g) if g.owned_by(lease.epoch, &lease.node) => Gate::Open,
        // A committed group of an earlier master: the new master adopts it
        // (re-stamping the record) or discards it; wait for that decision.
        Some(g) => Gate::Hold(format!(
            "group '{}' belongs to master epoch {}, the lease is at epoch {}",
            row.group, g.epoch, lease.epoch
        )),
    }
}

/// Picks the next row to run.
///
/// * `rows`: this node's rows that are not `processed`, sorted by id;
/// * `waits`: the status of every row some of them wait for (`None` = the row
///   no longer exists, which only happens after its group finished);
/// * `lease`: the current master lease; without one nothing runs.
pub fn next_row(
    rows: &[QueueRow],
    groups: &BTreeMap<GroupName, GroupRecord>,
    waits: &BTreeMap<u64, Option<QueueStatus>>,
    lease: Option<&Lease>,
    policy: &RetryPolicy,
    now_ms: i64,
) -> Decision {
    let Some(lease) = lease else {
        return Decision::Wait {
            reason: "no master lease".into(),
            retry_at_ms: None,
        };
    };
    let mut failed_groups: BTreeSet<&GroupName> = BTreeSet::new();
    for (i, row) in rows.iter().enumerate() {
        if row.status == QueueStatus::Processed {
            continue;
        }
        match gate(row, groups, lease) {
            Gate::Closed | Gate::Paused => continue,
            Gate::Hold(reason) => {
                return Decision::Wait {
                    reason,
                    retry_at_ms: None,
                }
            }
            Gate::Open => {}
        }
        if failed_groups.contains(&row.group) {
            continue;
        }
        if policy.is_final(row) {
            // The group is lost: none of its later rows may run here, even
            // before the master marks it aborted.
            failed_groups.insert(&row.group);
            continue;
        }
        if row.status == QueueStatus::Error {
            let backoff = i64::try_from(policy.backoff(row.tries).as_millis()).unwrap_or(i64::MAX);
            let at = row.updated_at.saturating_add(backoff);
            if now_ms < at {
                return Decision::Wait {
                    reason: format!("row {} failed {} time(s), backing off", row.id, row.tries),
                    retry_at_ms: Some(at),
                };
            }
        }
        if row.wait_for_id != 0 {
            match waits.get(&row.wait_for_id) {
                Some(None) | Some(Some(QueueStatus::Processed)) => {}
                _ => {
                    return Decision::Wait {
                        reason: format!("row {} waits for row {}", row.id, row.wait_for_id),
                        retry_at_ms: None,
                    }
                }
            }
        }
        return Decision::Run(i);
    }
    Decision::Idle
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{NodeId, TableName};
    use crate::placement::Action;
    use crate::sharding::records::{queue_id, GroupKind};
    use std::time::Duration;

    const POLICY: RetryPolicy = RetryPolicy {
        max_tries: 3,
        base_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
    };

    fn lease(epoch: u64) -> Lease {
        Lease {
            node: NodeId::new("m"),
            epoch,
            beat: 0,
        }
    }

    fn row(epoch: u64, seq: u64, group: &str) -> QueueRow {
        QueueRow::fresh(
            queue_id(epoch, seq),
            NodeId::new("n"),
            Action::Noop,
            None,
            0,
            &GroupName::from(group),
            0,
        )
    }

    fn group(status: GroupStatus, epoch: u64) -> GroupRecord {
        let mut g = GroupRecord::committed(
            GroupKind::Create,
            &TableName::parse("t").unwrap(),
            epoch,
            &NodeId::new("m"),
            0,
        );
        g.status = status;
        g
    }

    fn groups(v: &[(&str, GroupStatus, u64)]) -> BTreeMap<GroupName, GroupRecord> {
        v.iter()
            .map(|(n, s, e)| (GroupName::from(*n), group(*s, *e)))
            .collect()
    }

    fn decide(rows: &[QueueRow], g: &BTreeMap<GroupName, GroupRecord>, epoch: u64) -> Decision {
        next_row(
            rows,
            g,
            &BTreeMap::new(),
            Some(&lease(epoch)),
            &POLICY,
            1_000,
        )
    }

    #[test]
    fn runs_the_first_committed_row() {
        let g = groups(&[("g", GroupStatus::Committed, 1)]);
        assert_eq!(
            decide(&[row(1, 1, "g"), row(1, 2, "g")], &g, 1),
            Decision::Run(0)
        );
        assert_eq!(decide(&[], &g, 1), Decision::Idle);
    }

    #[test]
    fn uncommitted_rows_of_the_current_epoch_hold_the_queue() {
        let g = groups(&[("old", GroupStatus::Committed, 2)]);
        let rows = [row(2, 1, "new"), row(2, 2, "old")];
        assert!(matches!(decide(&rows, &g, 2), Decision::Wait { .. }));
    }

    #[test]
    fn orphans_of_a_dead_master_and_finished_groups_are_passed_over() {
        let g = groups(&[
            ("aborted", GroupStatus::Aborting, 2),
            ("live", GroupStatus::Committed, 2),
        ]);
        let rows = [row(1, 1, "orphan"), row(2, 1, "aborted"), row(2, 2, "live")];
        assert_eq!(decide(&rows, &g, 2), Decision::Run(2));
    }

    #[test]
    fn groups_of_an_earlier_master_wait_for_adoption() {
        let g = groups(&[("g", GroupStatus::Committed, 1)]);
        assert!(matches!(
            decide(&[row(1, 1, "g")], &g, 2),
            Decision::Wait { .. }
        ));
        let mut other_master = groups(&[("g", GroupStatus::Committed, 2)]);
        other_master.get_mut(&GroupName::from("g")).unwrap().master = NodeId::new("x");
        assert!(matches!(
            decide(&[row(2, 1, "g")], &other_master, 2),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn failed_rows_back_off_and_final_failures_are_passed_over() {
        let g = groups(&[("g", GroupStatus::Committed, 1)]);
        let mut failed = row(1, 1, "g");
        failed.status = QueueStatus::Error;
        failed.tries = 1;
        failed.updated_at = 950;
        let rows = [failed.clone(), row(1, 2, "g")];
        assert_eq!(
            decide(&rows, &g, 1),
            Decision::Wait {
                reason: format!("row {} failed 1 time(s), backing off", failed.id),
                retry_at_ms: Some(1_050)
            }
        );
        let mut later = rows.clone();
        later[0].updated_at = 800;
        assert_eq!(decide(&later, &g, 1), Decision::Run(0));
        later[0].tries = 3;
        // A final failure loses the group: its later rows do not run …
        assert_eq!(decide(&later, &g, 1), Decision::Idle);
        // … but other groups' rows do.
        let g2 = groups(&[
            ("g", GroupStatus::Committed, 1),
            ("h", GroupStatus::Committed, 1),
        ]);
        let mut other = later.to_vec();
        other.push(row(1, 3, "h"));
        assert_eq!(decide(&other, &g2, 1), Decision::Run(2));
    }

    #[test]
    fn waits_for_other_rows_are_honoured() {
        let g = groups(&[("g", GroupStatus::Committed, 1)]);
        let mut r = row(1, 5, "g");
        r.wait_for_id = queue_id(1, 1);
        let rows = [r];
        let lease = lease(1);
        let run = |status: Option<Option<QueueStatus>>| {
            let waits: BTreeMap<u64, Option<QueueStatus>> =
                status.into_iter().map(|s| (queue_id(1, 1), s)).collect();
            next_row(&rows, &g, &waits, Some(&lease), &POLICY, 0)
        };
        assert!(matches!(
            run(Some(Some(QueueStatus::Processing))),
            Decision::Wait { .. }
        ));
        assert!(matches!(run(None), Decision::Wait { .. }));
        assert_eq!(run(Some(Some(QueueStatus::Processed))), Decision::Run(0));
        assert_eq!(run(Some(None)), Decision::Run(0));
    }

    #[test]
    fn rows_of_a_paused_group_are_passed_over_and_run_again_once_resumed() {
        let mut g = groups(&[
            ("r", GroupStatus::Committed, 1),
            ("h", GroupStatus::Committed, 1),
        ]);
        let r = g.get_mut(&GroupName::from("r")).unwrap();
        r.kind = GroupKind::Rebalance;
        r.rebalance = Some(crate::sharding::records::RebalanceRecord::default());
        r.pause().unwrap();
        let rows = [row(1, 1, "r"), row(1, 2, "r"), row(1, 3, "h")];
        assert_eq!(decide(&rows, &g, 1), Decision::Run(2));
        assert_eq!(decide(&rows[..2], &g, 1), Decision::Idle);
        g.get_mut(&GroupName::from("r")).unwrap().resume().unwrap();
        assert_eq!(decide(&rows, &g, 1), Decision::Run(0));
    }
}
