//! Placements and plans as per-node queue steps.
//!
//! A step runs on one node. Steps of the same node run in the order they are
//! listed (the queue's per-node id order, spec §9.3); `wait_for` adds the
//! dependencies on steps of other nodes. Rolling back runs the `rollback` of
//! every completed step in reverse list order.

mod create;
mod ddl;
mod drop;
mod rebalance;
mod wrapper;

use std::collections::BTreeMap;

pub use create::{create_steps, create_steps_with_existing};
pub use ddl::Ddl;
pub use drop::drop_steps;
pub use rebalance::rebalance_steps;
pub use wrapper::wrapper_ddl;

use super::{ClusterMap, NodeState};
use crate::ids::{NodeId, TableName};
use crate::sqltext::quote_literal;

/// What a sharded table looks like, for DDL generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDdl {
    pub table: TableName,
    /// The column list without parentheses, exactly as the user wrote it;
    /// `None` (or empty) for a table created without one.
    pub columns: Option<String>,
    /// Table options after the column list, verbatim (may be empty).
    pub extra: String,
}

/// One queue item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub node: NodeId,
    pub action: Action,
    /// How to undo the step; `None` when there is nothing to undo.
    pub rollback: Option<Action>,
    /// Indexes of earlier steps (any node) that must have completed first.
    pub wait_for: Vec<usize>,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// One statement for the node's daemon.
    Ddl(Ddl),
    /// The copy of `table` on this step's node must hold exactly the rows of
    /// the one on `source` (row count and a checksum of the ids) before the
    /// plan goes on.
    VerifyCopy { table: String, source: NodeId },
    /// Fails when a table of this name exists on the step's node: a copy
    /// that `ALTER CLUSTER … ADD` or `JOIN` is about to ship there would
    /// silently replace it (`golden/facts.md` §7).
    ExpectAbsent { table: String },
    /// Does nothing; exists to carry a rollback or to be waited for.
    Noop,
}

/// Marks the actions shardbuddy runs itself. searchd answers a statement
/// starting with it with a syntax error and hands it to its helper, which
/// does not claim it, so one sent by mistake changes nothing.
const MARKER: &str = "SHARDBUDDY";

impl Action {
    /// The text stored in the queue's `query`/`rollback_query` columns.
    pub fn to_query_text(&self) -> String {
        match self {
            Action::Ddl(ddl) => ddl.render(),
            Action::VerifyCopy { table, source } => {
                format!(
                    "{MARKER} VERIFY COPY {table} MATCH {}",
                    quote_literal(source.as_str())
                )
            }
            Action::ExpectAbsent { table } => format!("{MARKER} EXPECT ABSENT {table}"),
            Action::Noop => format!("{MARKER} NOOP"),
        }
    }

    /// Reads back what [`Action::to_query_text`] wrote. `None` for an empty
    /// text (no action); a text of no known form (also a malformed marked
    /// one) is [`Ddl::Other`], sent as it is.
    pub fn from_query_text(text: &str) -> Option<Action> {
        if text.is_empty() {
            return None;
        }
        Some(Self::marked(text).unwrap_or_else(|| Action::Ddl(Ddl::parse(text))))
    }

    fn marked(text: &str) -> Option<Action> {
        let rest = text.strip_prefix(MARKER)?.strip_prefix(' ')?;
        if rest == "NOOP" {
            return Some(Action::Noop);
        }
        if let Some(table) = rest.strip_prefix("EXPECT ABSENT ") {
            if table.is_empty() || table.contains(char::is_whitespace) {
                return None;
            }
            return Some(Action::ExpectAbsent {
                table: table.to_string(),
            });
        }
        let (table, source) = rest.strip_prefix("VERIFY COPY ")?.split_once(" MATCH ")?;
        if table.is_empty() || table.contains(char::is_whitespace) {
            return None;
        }
        Some(Action::VerifyCopy {
            table: table.to_string(),
            source: NodeId::new(unquote_literal(source)?),
        })
    }
}

/// The inverse of [`quote_literal`] for one whole literal.
pub(crate) fn unquote_literal(quoted: &str) -> Option<String> {
    let inner = quoted.strip_prefix('\'')?.strip_suffix('\'')?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '\'' => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// What rebalance steps need to know beyond the plan itself.
#[derive(Debug, Clone, Copy)]
pub struct StepContext<'a> {
    /// Every node of the cluster with its state. All of them get the final
    /// wrapper (inactive ones when they return); live ones also get the
    /// intermediate routing wrappers. Nodes in state `new` have no wrapper
    /// yet.
    pub nodes: &'a BTreeMap<NodeId, NodeState>,
    /// The replication clusters the live nodes run and the tables in each:
    /// where every shard is detached from, and which clusters the plan
    /// leaves empty.
    pub clusters: &'a ClusterMap,
    /// Unique to the operation (its group's name): the clusters the plan
    /// creates are named after it, so none is ever made twice.
    pub salt: &'a str,
}

/// Appends steps and hands back their indexes.
#[derive(Debug, Default)]
struct StepList {
    steps: Vec<Step>,
}

impl StepList {
    fn push(
        &mut self,
        node: &NodeId,
        action: Action,
        rollback: Option<Action>,
        wait_for: Vec<usize>,
    ) -> usize {
        self.steps.push(Step {
            node: node.clone(),
            action,
            rollback,
            wait_for,
        });
        self.steps.len() - 1
    }

    fn ddl(&mut self, node: &NodeId, ddl: Ddl, rollback: Option<Ddl>) -> usize {
        self.push(
            node,
            Action::Ddl(ddl),
            rollback.map(Action::Ddl),
            Vec::new(),
        )
    }

    /// The subset of `candidates` that runs on other nodes than `node`:
    /// the same node's order already covers the rest.
    fn cross_node(&self, node: &NodeId, candidates: &[usize]) -> Vec<usize> {
        let mut waits: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| self.steps[i].node != *node)
            .collect();
        waits.sort_unstable();
        waits.dedup();
        waits
    }

    fn into_steps(self) -> Vec<Step> {
        self.steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip_through_query_text() {
        let actions = [
            Action::Ddl(Ddl::parse("DROP TABLE IF EXISTS system.t_s0")),
            Action::Ddl(Ddl::Other("SHARDBUDDYX".into())),
            Action::Noop,
            Action::ExpectAbsent {
                table: "system.t_s2".into(),
            },
            Action::VerifyCopy {
                table: "system.t_s3".into(),
                source: NodeId::new("10.0.0.1:9312"),
            },
            Action::VerifyCopy {
                table: "system.t_s3".into(),
                source: NodeId::new("odd'host\\:1"),
            },
        ];
        for action in actions {
            let text = action.to_query_text();
            assert_eq!(Action::from_query_text(&text), Some(action), "{text}");
        }
    }

    #[test]
    fn marked_texts_are_strict() {
        assert_eq!(
            Action::VerifyCopy {
                table: "system.t_s1".into(),
                source: NodeId::new("a:1"),
            }
            .to_query_text(),
            "SHARDBUDDY VERIFY COPY system.t_s1 MATCH 'a:1'"
        );
        assert_eq!(Action::from_query_text(""), None);
        for bad in [
            "SHARDBUDDY NOPE",
            "SHARDBUDDY EXPECT ABSENT ",
            "SHARDBUDDY VERIFY COPY  MATCH 'a:1'",
            "SHARDBUDDY VERIFY COPY t MATCH a:1",
            "SHARDBUDDY VERIFY COPY t MATCH 'a'b'",
        ] {
            assert_eq!(
                Action::from_query_text(bad),
                Some(Action::Ddl(Ddl::Other(bad.into()))),
                "{bad}"
            );
        }
    }
}
