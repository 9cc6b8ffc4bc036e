//! `EXPLAIN SHARD [c:]t <n>`: why the copies of one shard are on the nodes
//! they are on and not on the others, in the manner of Elasticsearch's
//! `_cluster/allocation/explain`. One row per node of the cluster: its
//! state, how many copies of the table it holds, whether it holds this
//! shard, the decision the planner takes about it now, and why.
//!
//! The decision is read off the very plan `EXPLAIN REBALANCE` shows
//! (`master::rebalance::consider`), so the two never disagree; the reasons
//! are the planner's rules: one copy of a shard per node, nothing on a node
//! that is down, drained or runs no shardbuddy, and every usable node within
//! one copy of an even share.

use std::collections::BTreeMap;

use serde_json::json;

use crate::ids::NodeId;
use crate::placement::{NodeState, Placement};
use crate::protocol::{Column, ColumnType, ResultSet};
use crate::sharding::master::driver;
use crate::sharding::master::rebalance::{self, Verdict};
use crate::sharding::ops::common::{user, OpError};
use crate::sharding::ops::rebalance::{sharded_table, visible_of};
use crate::sharding::ops::Context;
use crate::sharding::records::placement::placement_of;
use crate::sharding::records::{GroupKind, GroupName, MoveRecord};
use crate::sql::QualifiedName;

/// What the planner does about one node for the shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDecision {
    pub node: NodeId,
    /// `active`, `new`, `draining`, `inactive`, or `no shardbuddy`.
    pub state: &'static str,
    /// Copies of the table on the node.
    pub copies: usize,
    pub holds: bool,
    /// `keep`, `move away`, `move here`, `cannot hold`, `not chosen`.
    pub decision: &'static str,
    pub why: String,
}

fn state_name(state: Option<NodeState>) -> &'static str {
    match state {
        Some(NodeState::Active) => "active",
        Some(NodeState::New) => "new",
        Some(NodeState::Draining) => "draining",
        Some(NodeState::Inactive) => "inactive",
        None => "no shardbuddy",
    }
}

/// The decisions about every node in `nodes` for `shard` of a table placed
/// as `placement`, given the plan's moves now (`Err`: why no plan is made).
pub fn decide(
    shard: u32,
    placement: &Placement,
    nodes: &[NodeId],
    states: &BTreeMap<NodeId, NodeState>,
    plan: &Result<Vec<MoveRecord>, String>,
) -> Vec<NodeDecision> {
    let holders = placement.replicas(shard);
    let rf = placement.max_replicas();
    let total: usize = placement.shards().map(|(_, r)| r.len()).sum();
    let usable = states
        .values()
        .filter(|s| matches!(s, NodeState::Active | NodeState::New))
        .count();
    let share = match total.checked_div(usable) {
        None => "no node can hold copies".to_string(),
        Some(low) if low == total.div_ceil(usable) => {
            format!("an even share is {low} of the table's {total} copies")
        }
        Some(low) => format!(
            "an even share is {low}–{} of the table's {total} copies",
            total.div_ceil(usable)
        ),
    };
    let moves: &[MoveRecord] = plan.as_deref().unwrap_or(&[]);
    let this = |f: fn(&MoveRecord) -> Option<&NodeId>, node: &NodeId| {
        moves
            .iter()
            .find(|m| m.shard == shard && f(m) == Some(node))
    };
    nodes
        .iter()
        .map(|node| {
            let state = states.get(node).copied();
            let copies = placement.shards_on(node).len();
            let holds = holders.contains(node);
            let away = this(|m| m.from.as_ref(), node);
            let here = this(|m| m.to.as_ref(), node);
            let (decision, why) = match (holds, state, away, here) {
                (true, _, Some(m), _) => (
                    "move away",
                    match &m.to {
                        Some(to) => format!("the next rebalance moves this copy to {to} ({})", m.reason),
                        None => format!("the next rebalance retires this copy ({})", m.reason),
                    },
                ),
                (false, _, _, Some(m)) => (
                    "move here",
                    format!("the next rebalance makes a copy here ({})", m.reason),
                ),
                (true, Some(NodeState::Inactive), _, _) => (
                    "keep",
                    if rf >= 2 {
                        "the node is down: its copy is not live, and a rebalance rebuilds it on another node".into()
                    } else {
                        "the node is down and holds the only copy (rf=1): it comes back with the node".into()
                    },
                ),
                (true, Some(NodeState::Draining), _, _) => (
                    "keep",
                    "the node is drained: the copy serves until a rebalance has made it elsewhere".into(),
                ),
                (true, _, _, _) => (
                    "keep",
                    format!(
                        "one of the shard's {} copies; the node is live and holds {copies} ({share})",
                        holders.len()
                    ),
                ),
                (false, Some(NodeState::Inactive), _, _) => {
                    ("cannot hold", "the node is down".into())
                }
                (false, Some(NodeState::Draining), _, _) => (
                    "cannot hold",
                    "the node is drained (ALTER CLUSTER … UNDRAIN NODE lets it hold copies again)".into(),
                ),
                (false, None, _, _) => (
                    "cannot hold",
                    "no shardbuddy has registered on the node, so no queue step would run there".into(),
                ),
                (false, _, _, _) => (
                    "not chosen",
                    format!(
                        "the shard has its {} copies elsewhere and the node holds {copies} ({share}): a copy here would not balance the table better",
                        holders.len()
                    ),
                ),
            };
            let why = match plan {
                Err(note) if decision != "cannot hold" => format!("{why}; no rebalance is planned now: {note}"),
                _ => why,
            };
            NodeDecision {
                node: node.clone(),
                state: state_name(state),
                copies,
                holds,
                decision,
                why,
            }
        })
        .collect()
}

fn columns() -> Vec<Column> {
    [
        ("table", ColumnType::String),
        ("shard", ColumnType::LongLong),
        ("node", ColumnType::String),
        ("node_state", ColumnType::String),
        ("table_copies", ColumnType::LongLong),
        ("holds", ColumnType::String),
        ("decision", ColumnType::String),
        ("explanation", ColumnType::String),
    ]
    .into_iter()
    .map(|(n, t)| Column::new(n, t))
    .collect()
}

/// `EXPLAIN SHARD [c:]t <n>`; changes nothing.
pub async fn explain_shard(
    ctx: &Context,
    user_name: &str,
    target: &QualifiedName,
    shard: u32,
) -> Result<Vec<ResultSet>, OpError> {
    let t = &target.table;
    let store = sharded_table(ctx, target).await?;
    if !visible_of(ctx, user_name, &[t.clone()].into())
        .await?
        .contains(t)
    {
        return Err(user(format!("table '{t}' does not exist")));
    }
    let me = ctx.node.id().await?;
    let snap = driver::load(&*store, &**ctx.node.api(), &me, &ctx.config.retry, false).await?;
    let Some(members) = snap.members.clone() else {
        return Err(user(
            "the cluster's membership cannot be read on this node; retry".to_string(),
        ));
    };
    let rows = snap.placement_of(t);
    let placement = placement_of(&rows).map_err(|e| {
        user(format!(
            "table '{t}': its placement metadata cannot be read ({e})"
        ))
    })?;
    if shard >= placement.shard_count() {
        return Err(user(format!(
            "table '{t}' has {} shards, numbered from 0: there is no shard {shard}",
            placement.shard_count()
        )));
    }
    let plan = match (snap.open_groups_of(t).next(), snap.tables.get(t)) {
        (Some((name, g)), _) => Err(format!(
            "an operation is under way (group {name}, {})",
            g.operator_state()
        )),
        (None, None) => Err("the table has no state record".into()),
        (None, Some(state)) => {
            let cluster = rebalance::Cluster {
                members: &members,
                registered: &snap.registered,
                drained: &snap.drained,
                clusters: &snap.cluster_map(),
            };
            let group = GroupName::new(GroupKind::Rebalance, t, 0);
            match rebalance::consider(t, state, &rows, cluster, &group) {
                Verdict::Balanced => Ok(Vec::new()),
                Verdict::Skip(why) => Err(why),
                Verdict::Rebalance(planned) => Ok(planned.moves),
            }
        }
    };
    let states = rebalance::node_states(&rows, &members, &snap.registered, &snap.drained);
    let mut nodes: Vec<NodeId> = members
        .all
        .iter()
        .chain(&members.active)
        .chain(rows.iter().map(|r| &r.node))
        .cloned()
        .collect();
    nodes.sort();
    nodes.dedup();
    let mut out = ResultSet::with_columns(columns());
    for d in decide(shard, &placement, &nodes, &states, &plan) {
        out.push_row(vec![
            json!(t.as_str()),
            json!(shard),
            json!(d.node.as_str()),
            json!(d.state),
            json!(d.copies),
            json!(if d.holds { "yes" } else { "no" }),
            json!(d.decision),
            json!(d.why),
        ]);
    }
    Ok(vec![out])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u32) -> NodeId {
        NodeId::new(format!("127.0.0.1:{i}"))
    }

    /// Shards 0 and 1 with rf=2 on nodes 1–3.
    fn placement() -> Placement {
        Placement::new(BTreeMap::from([
            (0, vec![n(1), n(2)]),
            (1, vec![n(2), n(3)]),
        ]))
        .unwrap()
    }

    fn decisions(
        states: &[(u32, NodeState)],
        plan: Result<Vec<MoveRecord>, String>,
    ) -> Vec<(String, &'static str, &'static str, bool)> {
        let states: BTreeMap<NodeId, NodeState> = states.iter().map(|(i, s)| (n(*i), *s)).collect();
        let nodes: Vec<NodeId> = (1..=5).map(n).collect();
        decide(0, &placement(), &nodes, &states, &plan)
            .into_iter()
            .map(|d| (d.node.to_string(), d.state, d.decision, d.holds))
            .collect()
    }

    #[test]
    fn every_node_gets_the_planners_decision_and_its_reason() {
        use NodeState::*;
        let lost = MoveRecord {
            shard: 0,
            from: Some(n(1)),
            to: Some(n(4)),
            reason: "node lost".into(),
        };
        let got = decisions(
            &[(1, Inactive), (2, Active), (3, Draining), (4, New)],
            Ok(vec![lost]),
        );
        assert_eq!(
            got,
            [
                ("127.0.0.1:1".into(), "inactive", "move away", true),
                ("127.0.0.1:2".into(), "active", "keep", true),
                ("127.0.0.1:3".into(), "draining", "cannot hold", false),
                ("127.0.0.1:4".into(), "new", "move here", false),
                ("127.0.0.1:5".into(), "no shardbuddy", "cannot hold", false),
            ]
        );
    }

    #[test]
    fn without_a_plan_the_reasons_say_why_nothing_moves() {
        use NodeState::*;
        let states: BTreeMap<NodeId, NodeState> =
            [(n(1), Active), (n(2), Active), (n(3), Active), (n(4), New)].into();
        let nodes: Vec<NodeId> = (1..=4).map(n).collect();
        let balanced = decide(0, &placement(), &nodes, &states, &Ok(Vec::new()));
        assert_eq!(balanced[0].decision, "keep");
        assert_eq!(
            balanced[0].why,
            "one of the shard's 2 copies; the node is live and holds 1 (an even share is 1 of the table's 4 copies)"
        );
        assert_eq!(balanced[3].decision, "not chosen");
        let skipped = decide(
            0,
            &placement(),
            &nodes,
            &states,
            &Err("Skipping rebalance for table t: only 1 active nodes".into()),
        );
        assert!(skipped[3].why.ends_with(
            "no rebalance is planned now: Skipping rebalance for table t: only 1 active nodes"
        ));
    }

    #[tokio::test]
    async fn explain_shard_of_a_table_whose_placement_has_a_gap_says_so() {
        use crate::ids::TableName;
        use crate::sharding::records::{GroupName, OpKind, OpRequest, Scope, TableState};
        use crate::sharding::testing::{context, kv_node, put_key, table, Keys};
        let keys = Keys::default();
        put_key(&keys, "cluster", &"");
        let request = OpRequest {
            id: "r".into(),
            by: n(9312),
            at_ms: 0,
            timeout_ms: 30_000,
            scope: Scope::Local,
            shards: 3,
            rf: 1,
            instance: None,
        };
        let mut state =
            TableState::requested(OpKind::Create, request, "id bigint".into(), String::new());
        state
            .start(GroupName::from("shard_create_t_1"), vec![], vec![])
            .unwrap();
        state.succeed(serde_json::json!([])).unwrap();
        put_key(&keys, "table:t", &state);
        // Shards 0 and 2 placed, shard 1 lost from the metadata.
        let node = kv_node(keys, |sql, _| {
            if sql.starts_with(
                "SELECT `cluster`, `node`, `table`, `shards` FROM system.sharding_table",
            ) {
                Some(table(
                    &["cluster", "node", "table", "shards"],
                    &[&["", "127.0.0.1:9312", "t", "0,2"]],
                ))
            } else if sql.starts_with("SELECT * FROM system.sharding_queue") {
                Some(table(&["id"], &[]))
            } else if sql == "SHOW TABLES" {
                Some(table(&["Table", "Type"], &[&["t", "distributed"]]))
            } else {
                None
            }
        });
        let target = QualifiedName {
            cluster: None,
            table: TableName::parse("t").unwrap(),
        };
        let err = explain_shard(&context(&node), "u", &target, 0)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "table 't': its placement metadata cannot be read (shard numbers must be 0..2 \
             without gaps, shard 1 is missing)"
        );
    }
}
