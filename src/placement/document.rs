//! The JSON documents of `shardbuddy plan` (format: `docs/plan-format.md`).
//!
//! Input is parsed strictly: unknown fields, wrong types and inconsistent
//! values are rejected with the path of the offending field, e.g.
//! `tables[0].placement."3"[1]: node '10.0.0.9:9312' is not in nodes`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{
    plan_rebalance, rebalance_steps, ClusterMap, Model, ModelError, Move, NodeSpec, NodeState,
    Placement, PlacementError, ShardSize, StepContext, TableDdl, TableModel, TablePlan, Totals,
};
use crate::ids::{NodeId, TableName};

/// A rejected input document: where, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct DocumentError {
    /// The offending field, e.g. `tables[0].rf`; empty for a syntax error.
    pub path: String,
    pub message: String,
}

impl fmt::Display for DocumentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl DocumentError {
    fn at(path: impl Into<String>, message: impl fmt::Display) -> Self {
        Self {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// The input document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanInput {
    pub nodes: Vec<NodeInput>,
    pub tables: Vec<TableInput>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeInput {
    /// `host:port` of the node's binary-API listener.
    pub id: String,
    pub state: NodeState,
    #[serde(default)]
    pub weight: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableInput {
    pub name: String,
    pub shards: u32,
    pub rf: u32,
    /// Shard number (as a string) → replica node ids; `null` or absent for
    /// a table to be created.
    #[serde(default)]
    pub placement: Option<BTreeMap<String, Vec<String>>>,
    /// The column list for the generated DDL, without parentheses.
    #[serde(default)]
    pub columns: Option<String>,
    /// Table options for the generated DDL.
    #[serde(default)]
    pub extra: String,
    /// Shard number (as a string) → known size.
    #[serde(default)]
    pub shard_sizes: BTreeMap<String, ShardSize>,
}

/// The output document.
#[derive(Debug, Clone, Serialize)]
pub struct PlanOutput {
    pub tables: Vec<TableOutput>,
    pub totals: Totals,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableOutput {
    pub name: TableName,
    pub shards: u32,
    pub rf: u32,
    /// Target placement: shard number → sorted replica node ids.
    pub placement: BTreeMap<u32, Vec<NodeId>>,
    pub moves: Vec<Move>,
    pub unavailable: Vec<u32>,
    pub under_replicated: Vec<u32>,
    pub steps: Vec<StepOutput>,
    pub totals: Totals,
}

/// A step as it would be stored in the queue.
#[derive(Debug, Clone, Serialize)]
pub struct StepOutput {
    pub node: NodeId,
    pub query: String,
    pub rollback: Option<String>,
    pub wait_for: Vec<usize>,
}

/// A validated request: the model plus what DDL generation needs.
#[derive(Debug, Clone)]
pub struct PlanRequest {
    pub model: Model,
    /// One per table of the model, in the same order.
    pub ddls: Vec<TableDdl>,
}

/// Reads and validates an input document.
pub fn parse_input(text: &str) -> Result<PlanRequest, DocumentError> {
    let deserializer = &mut serde_json::Deserializer::from_str(text);
    let input: PlanInput = serde_path_to_error::deserialize(deserializer).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        DocumentError::at(path, e.into_inner())
    })?;
    request_from(&input)
}

/// Plans every table and renders steps, as `shardbuddy plan` prints it.
pub fn plan_document(request: &PlanRequest) -> PlanOutput {
    let plan = plan_rebalance(&request.model);
    let states = request.model.states();
    // Every replicated shard is where CREATE put it; earlier tables' steps
    // run first, so the clusters their targets use exist for later ones.
    let current: Vec<(&TableName, &Placement)> = plan
        .tables
        .iter()
        .filter_map(|t| t.current.as_ref().map(|p| (&t.table, p)))
        .collect();
    let clusters = ClusterMap::derived(current);
    let tables = plan
        .tables
        .iter()
        .zip(&request.ddls)
        .map(|(table, ddl)| {
            let ctx = StepContext {
                nodes: &states,
                clusters: &clusters,
                salt: "plan",
            };
            table_output(table, rebalance_steps(ddl, table, &ctx))
        })
        .collect();
    PlanOutput {
        tables,
        totals: plan.totals,
    }
}

/// The whole `shardbuddy plan` pipeline: input text to pretty JSON.
pub fn run(text: &str) -> Result<String, DocumentError> {
    let output = plan_document(&parse_input(text)?);
    serde_json::to_string_pretty(&output).map_err(|e| DocumentError::at("", e))
}

fn table_output(plan: &TablePlan, steps: Vec<super::Step>) -> TableOutput {
    TableOutput {
        name: plan.table.clone(),
        shards: plan.shards,
        rf: plan.rf,
        placement: plan.target.shards().map(|(s, r)| (s, r.to_vec())).collect(),
        moves: plan.moves.clone(),
        unavailable: plan.unavailable.clone(),
        under_replicated: plan.under_replicated.clone(),
        steps: steps
            .into_iter()
            .map(|s| StepOutput {
                node: s.node,
                query: s.action.to_query_text(),
                rollback: s.rollback.map(|r| r.to_query_text()),
                wait_for: s.wait_for,
            })
            .collect(),
        totals: plan.totals.clone(),
    }
}

fn request_from(input: &PlanInput) -> Result<PlanRequest, DocumentError> {
    let mut nodes = Vec::with_capacity(input.nodes.len());
    for (i, node) in input.nodes.iter().enumerate() {
        let id =
            parse_node_id(&node.id).map_err(|m| DocumentError::at(format!("nodes[{i}].id"), m))?;
        nodes.push(NodeSpec {
            id,
            state: node.state,
            weight: node.weight,
        });
    }
    let mut tables = Vec::with_capacity(input.tables.len());
    let mut ddls = Vec::with_capacity(input.tables.len());
    for (i, table) in input.tables.iter().enumerate() {
        let at = |field: &str| format!("tables[{i}].{field}");
        let name = TableName::parse(&table.name).map_err(|e| DocumentError::at(at("name"), e))?;
        let placement = match &table.placement {
            None => None,
            Some(raw) => Some(placement_from(raw, &at("placement"))?),
        };
        let mut sizes = BTreeMap::new();
        for (key, size) in &table.shard_sizes {
            let shard = parse_shard(key)
                .map_err(|m| DocumentError::at(format!("{}.\"{key}\"", at("shard_sizes")), m))?;
            sizes.insert(shard, *size);
        }
        tables.push(TableModel {
            name: name.clone(),
            shards: table.shards,
            rf: table.rf,
            placement,
            sizes,
        });
        ddls.push(TableDdl {
            table: name,
            columns: table.columns.clone(),
            extra: table.extra.clone(),
        });
    }
    let model = Model::new(nodes, tables).map_err(|e| locate(input, e))?;
    Ok(PlanRequest { model, ddls })
}

fn placement_from(
    raw: &BTreeMap<String, Vec<String>>,
    path: &str,
) -> Result<Placement, DocumentError> {
    let mut shards = BTreeMap::new();
    for (key, replicas) in raw {
        let at = format!("{path}.\"{key}\"");
        let shard = parse_shard(key).map_err(|m| DocumentError::at(&at, m))?;
        let mut ids = Vec::with_capacity(replicas.len());
        for (j, replica) in replicas.iter().enumerate() {
            ids.push(
                parse_node_id(replica).map_err(|m| DocumentError::at(format!("{at}[{j}]"), m))?,
            );
        }
        shards.insert(shard, ids);
    }
    Placement::new(shards).map_err(|e| match &e {
        PlacementError::NoReplicas { shard } | PlacementError::DuplicateReplica { shard, .. } => {
            DocumentError::at(format!("{path}.\"{shard}\""), e)
        }
        _ => DocumentError::at(path, e),
    })
}

/// A shard number key: decimal digits only, as the output writes them.
fn parse_shard(key: &str) -> Result<u32, String> {
    let valid = !key.is_empty()
        && key.bytes().all(|b| b.is_ascii_digit())
        && (key == "0" || !key.starts_with('0'));
    valid
        .then(|| key.parse().ok())
        .flatten()
        .ok_or_else(|| format!("'{key}' is not a shard number"))
}

/// A node id is `host:port`: the host made of letters, digits, `.`, `-` and
/// `_`, the port a number from 1 to 65535. Anything else could break the
/// `agent='…'` and `JOIN CLUSTER … at '…'` texts it is written into.
pub fn parse_node_id(raw: &str) -> Result<NodeId, String> {
    let bad = || format!("'{raw}' is not a node id of the form host:port");
    let (host, port) = raw.rsplit_once(':').ok_or_else(bad)?;
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    let port_ok = !port.is_empty()
        && port.bytes().all(|b| b.is_ascii_digit())
        && port.parse::<u16>().is_ok_and(|p| p > 0);
    if host_ok && port_ok {
        Ok(NodeId::new(raw))
    } else {
        Err(bad())
    }
}

/// Turns a model error into a field path of the input.
fn locate(input: &PlanInput, error: ModelError) -> DocumentError {
    let node_index = |id: &NodeId| {
        input
            .nodes
            .iter()
            .rposition(|n| n.id == id.as_str())
            .unwrap_or(0)
    };
    let table_index = |name: &TableName| {
        input
            .tables
            .iter()
            .rposition(|t| t.name.eq_ignore_ascii_case(name.as_str()))
            .unwrap_or(0)
    };
    let path = match &error {
        ModelError::DuplicateNode(id) => format!("nodes[{}].id", node_index(id)),
        ModelError::ZeroWeight(id) => format!("nodes[{}].weight", node_index(id)),
        ModelError::DuplicateTable(name) => format!("tables[{}].name", table_index(name)),
        ModelError::Placement { table, source } => {
            let i = table_index(table);
            let field = match source {
                PlacementError::InvalidShape if input.tables[i].shards == 0 => "shards",
                PlacementError::InvalidShape | PlacementError::NotEnoughNodes { .. } => "rf",
                _ => "placement",
            };
            format!("tables[{i}].{field}")
        }
        ModelError::ShardCountMismatch { table, .. } => {
            format!("tables[{}].placement", table_index(table))
        }
        ModelError::UnknownNode { table, shard, .. } => {
            format!("tables[{}].placement.\"{shard}\"", table_index(table))
        }
        ModelError::UnknownShardSize { table, shard } => {
            format!("tables[{}].shard_sizes.\"{shard}\"", table_index(table))
        }
    };
    DocumentError::at(path, error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(doc: &str) -> String {
        parse_input(doc).unwrap_err().to_string()
    }

    #[test]
    fn bad_documents_name_the_bad_field() {
        let node = r#"{"id": "127.0.0.1:1312", "state": "active"}"#;
        let cases = [
            ("{", "EOF while parsing"),
            (r#"{"nodes": []}"#, "missing field `tables`"),
            (
                r#"{"nodes": [], "tables": [], "x": 1}"#,
                "unknown field `x`",
            ),
            (
                r#"{"nodes": [{"id": "a:1", "state": "up"}], "tables": []}"#,
                "nodes[0].state: unknown variant `up`",
            ),
            (
                r#"{"nodes": [{"id": "a", "state": "active"}], "tables": []}"#,
                "nodes[0].id: 'a' is not a node id",
            ),
            (
                r#"{"nodes": [{"id": "a:0", "state": "active"}], "tables": []}"#,
                "nodes[0].id",
            ),
            (
                r#"{"nodes": [{"id": "a':1", "state": "active"}], "tables": []}"#,
                "nodes[0].id",
            ),
            (
                &format!(r#"{{"nodes": [{node}, {node}], "tables": []}}"#),
                "nodes[1].id: node '127.0.0.1:1312' is listed twice",
            ),
            (
                &format!(
                    r#"{{"nodes": [{node}], "tables": [{{"name": "t", "shards": "4", "rf": 1}}]}}"#
                ),
                "tables[0].shards: invalid type: string",
            ),
            (
                &format!(
                    r#"{{"nodes": [{node}], "tables": [{{"name": "1t", "shards": 4, "rf": 1}}]}}"#
                ),
                "tables[0].name: name '1t' must start",
            ),
            (
                &format!(
                    r#"{{"nodes": [{node}], "tables": [{{"name": "t", "shards": 4, "rf": 2}}]}}"#
                ),
                "tables[0].rf: table 't': The node count (1) is lower than replication factor (2)",
            ),
            (
                &format!(
                    r#"{{"nodes": [{node}], "tables": [{{"name": "t", "shards": 0, "rf": 1}}]}}"#
                ),
                "tables[0].shards: table 't': Invalid shards or rf options are set",
            ),
            (
                &format!(
                    r#"{{"nodes": [{node}], "tables": [{{"name": "t", "shards": 1, "rf": 1, "placement": {{"0": ["10.0.0.9:9312"]}}}}]}}"#
                ),
                "tables[0].placement.\"0\": table 't': shard 0 is on node '10.0.0.9:9312'",
            ),
            (
                &format!(
                    r#"{{"nodes": [{node}], "tables": [{{"name": "t", "shards": 1, "rf": 1, "placement": {{"x": ["127.0.0.1:1312"]}}}}]}}"#
                ),
                "tables[0].placement.\"x\": 'x' is not a shard number",
            ),
            (
                &format!(
                    r#"{{"nodes": [{node}], "tables": [{{"name": "t", "shards": 2, "rf": 1, "placement": {{"1": ["127.0.0.1:1312"]}}}}]}}"#
                ),
                "tables[0].placement: shard numbers must be 0..1",
            ),
            (
                &format!(
                    r#"{{"nodes": [{node}], "tables": [{{"name": "t", "shards": 1, "rf": 1, "placement": {{"0": ["127.0.0.1:1312", "127.0.0.1:1312"]}}}}]}}"#
                ),
                "tables[0].placement.\"0\": shard 0 lists node",
            ),
            (
                &format!(
                    r#"{{"nodes": [{node}], "tables": [{{"name": "t", "shards": 1, "rf": 1, "shard_sizes": {{"0": {{"rows": -1}}}}}}]}}"#
                ),
                "tables[0].shard_sizes.0.rows: invalid value",
            ),
        ];
        for (doc, expected) in cases {
            let message = error_of(doc);
            assert!(
                message.contains(expected),
                "{doc}\n  gave: {message}\n  want: {expected}"
            );
        }
    }

    #[test]
    fn node_ids_must_be_host_and_port() {
        for good in ["127.0.0.1:1312", "node-1.local:9312", "h_2:65535"] {
            assert!(parse_node_id(good).is_ok(), "{good}");
        }
        for bad in [
            "", ":1", "a:", "a:65536", "a:b", "a b:1", "a|b:1", "a,b:1", "a:1:http",
        ] {
            assert!(parse_node_id(bad).is_err(), "{bad}");
        }
    }
}
