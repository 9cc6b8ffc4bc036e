//! SELECT over RT tables, and fan-out over distributed and shard tables.

use std::borrow::Cow;
use std::time::Instant;

use super::agent::{self, AgentFailure, RemoteSet};
use super::error::{ExecError, ExecResult};
use super::query::{check_query_columns, finish, keyword_stats, scan, Match, Plan};
use super::result::{Cell, Meta, Output, ResultSet};
use super::session::Session;
use super::show::variable_value;
use crate::node::Node;
use crate::sql::ast::{Expr, Select, SelectItem};
use crate::sql::render::quote_table;
use crate::store::catalog::Catalog;
use crate::store::schema::{ColumnType, ResultType, Schema};
use crate::store::table::{Agent, TableDef, Targets};
use crate::store::value::{Row, Value};

/// The column carrying a remote document's relevance in agent queries.
const WEIGHT_COLUMN: &str = "__sim_weight";
/// Upper bound of rows fetched from one agent when a query needs them all (GROUP BY).
const FETCH_ALL: u64 = 1_000_000;

pub async fn run(node: &Node, session: &mut Session, select: &Select) -> ExecResult<Output> {
    let started = Instant::now();
    let Some(from) = &select.from else {
        return Ok(Output::Rows(constant_select(node, session, select)));
    };
    // searchd validates the result window before looking at tables.
    Plan::new(select).window()?;
    let mut meta = Meta::default();
    let def = {
        let catalog = node.catalog();
        let table = catalog
            .get(&from.name)
            .ok_or_else(|| unknown_table(&from.name))?;
        table.def.clone()
    };
    let rs = match &def {
        TableDef::Rt { .. } => {
            let catalog = node.catalog();
            local_select(&catalog, &from.name, select, &mut meta)?
        }
        TableDef::Distributed { targets } => {
            let schema = distributed_schema(node, targets);
            fan_out(node, &from.name, select, &schema, targets, &mut meta).await?
        }
        TableDef::Shard {
            schema, targets, ..
        } => fan_out(node, &from.name, select, schema, targets, &mut meta).await?,
    };
    meta.time_ms = started.elapsed().as_millis() as u64;
    session.meta = Some(meta);
    Ok(Output::Rows(rs))
}

pub fn unknown_table(name: &str) -> ExecError {
    ExecError::new(format!("unknown local table(s) '{name}' in search request"))
}

fn local_select(
    catalog: &Catalog,
    name: &str,
    select: &Select,
    meta: &mut Meta,
) -> ExecResult<ResultSet> {
    let table = catalog
        .get(name)
        .filter(|t| t.is_rt())
        .ok_or_else(|| unknown_table(name))?;
    let schema = table.def.schema().cloned().unwrap_or_default();
    check_query_columns(select, &schema)?;
    let plan = Plan::new(select);
    let stats = match &plan.full_text {
        Some(q) => keyword_stats(q, &schema, table),
        None => Vec::new(),
    };
    let matches = scan(&plan, &schema, table, &stats)?;
    if let Some(q) = &plan.full_text {
        meta.keywords = q
            .terms
            .iter()
            .zip(&stats)
            .map(|(t, s)| (t.text.clone(), s.0, s.1))
            .collect();
    }
    finish(&plan, &schema, matches, 0, meta)
}

/// `SELECT @@version_comment`, `SELECT 1`: one row of constants.
fn constant_select(node: &Node, session: &Session, select: &Select) -> ResultSet {
    let mut rs = ResultSet::default();
    let mut row = Vec::new();
    for item in &select.items {
        let SelectItem::Expr { expr, header } = item else {
            continue;
        };
        let (ty, cell) = match expr {
            Expr::SysVar(name) => (
                ResultType::String,
                Cell::Str(variable_value(node, session, name)),
            ),
            Expr::Literal(l) => super::eval::literal_cell(l),
            _ => (ResultType::String, Cell::Null),
        };
        rs.columns.push(super::result::ResultColumn {
            name: header.clone(),
            ty,
        });
        row.push(cell);
    }
    rs.rows.push(row);
    rs
}

/// A distributed table has no schema of its own: its first local table lends one.
fn distributed_schema(node: &Node, targets: &Targets) -> Schema {
    let catalog = node.catalog();
    targets
        .locals
        .iter()
        .find_map(|l| catalog.get(l).and_then(|t| t.def.schema().cloned()))
        .unwrap_or_default()
}

/// Reads every target (locals here, agents over HTTP), then ranks and cuts the union.
async fn fan_out(
    node: &Node,
    name: &str,
    select: &Select,
    schema: &Schema,
    targets: &Targets,
    meta: &mut Meta,
) -> ExecResult<ResultSet> {
    let plan = Plan::new(select);
    let count_only = plan.is_count_only();
    let mut schema = schema.clone();
    let mut remote_matches: Vec<Match<'static>> = Vec::new();
    let mut remote_count = 0u64;
    for agent in &targets.agents {
        let Some(table) = agent
            .mirrors
            .first()
            .and_then(|m| m.tables.first())
            .cloned()
        else {
            continue;
        };
        let sql = agent_sql(select, &table, count_only, plan.window()?);
        match query_agent(node, agent, &sql).await {
            Ok((_, sets, failed_over)) => {
                // searchd reports an approximate total once an agent had to retry.
                meta.relation_gte |= failed_over;
                let Some(set) = sets.into_iter().next() else {
                    continue;
                };
                if count_only {
                    remote_count += set
                        .rows
                        .first()
                        .and_then(|r| r.first())
                        .and_then(|v| v.as_u64())
                        .unwrap_or(0);
                } else {
                    if schema.columns.is_empty() {
                        schema = schema_of_remote(&set);
                    }
                    remote_matches.extend(remote_rows(&schema, &set));
                }
            }
            Err((addr, AgentFailure::Network(text))) => {
                meta.warning = Some(format!("table {name}: agent {addr}: {text}"));
                meta.relation_gte = true;
            }
            Err((addr, AgentFailure::Remote(text))) => {
                return Err(ExecError::new(format!(
                    "table {name}: agent {addr}: remote query error: {text}"
                )));
            }
        }
    }
    let catalog = node.catalog();
    let mut matches: Vec<Match> = Vec::new();
    let mut count = remote_count;
    for local in &targets.locals {
        let table = catalog
            .get(local)
            .filter(|t| t.is_rt())
            .ok_or_else(|| unknown_table(local))?;
        let local_schema = table.def.schema().cloned().unwrap_or_default();
        check_query_columns(select, &local_schema)?;
        let stats = match &plan.full_text {
            Some(q) => keyword_stats(q, &local_schema, table),
            None => Vec::new(),
        };
        let found = scan(&plan, &local_schema, table, &stats)?;
        if count_only {
            count += found.len() as u64;
        } else if local_schema == schema {
            matches.extend(found);
        } else {
            // A distributed table's locals may differ: present their rows in its schema.
            matches.extend(found.into_iter().map(|m| Match {
                row: Cow::Owned(remap(&local_schema, &schema, &m.row)),
                ..m
            }));
        }
    }
    matches.extend(remote_matches);
    let counted_elsewhere = if count_only { count } else { 0 };
    finish(&plan, &schema, matches, counted_elsewhere, meta)
}

/// The query sent to one agent: counts are pushed down, otherwise the top `window` rows in
/// query order (every match when the query aggregates).
fn agent_sql(select: &Select, table: &str, count_only: bool, window: u64) -> String {
    let mut sql = if count_only {
        format!("SELECT COUNT(*) FROM {}", quote_table(table))
    } else {
        format!(
            "SELECT *, WEIGHT() AS {WEIGHT_COLUMN} FROM {}",
            quote_table(table)
        )
    };
    if let Some(f) = &select.filter {
        sql.push_str(&format!(" WHERE {f}"));
    }
    if count_only {
        return sql;
    }
    if !select.order_by.is_empty() && select.group_by.is_none() {
        let keys: Vec<String> = select
            .order_by
            .iter()
            .map(|k| format!("{} {}", k.expr, if k.desc { "DESC" } else { "ASC" }))
            .collect();
        sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
    }
    let needs_all = select.group_by.is_some()
        || select.items.iter().any(|i| {
            matches!(
                i,
                SelectItem::Expr {
                    expr: Expr::CountStar,
                    ..
                }
            )
        });
    let n = if needs_all { FETCH_ALL } else { window };
    sql.push_str(&format!(" LIMIT {n} OPTION max_matches={n}"));
    sql
}

/// Tries the agent's mirrors in order; returns the answering mirror's address, its result sets
/// and whether an earlier mirror failed.
pub async fn query_agent(
    node: &Node,
    agent: &Agent,
    sql_for: &str,
) -> Result<(String, Vec<RemoteSet>, bool), (String, AgentFailure)> {
    let mut first_failure = None;
    for mirror in &agent.mirrors {
        let addr = mirror.addr();
        match agent::query(node, &addr, sql_for).await {
            Ok(sets) => return Ok((addr, sets, first_failure.is_some())),
            Err(AgentFailure::Network(text)) => {
                first_failure.get_or_insert((addr, AgentFailure::Network(text)));
            }
            Err(remote) => return Err((addr, remote)),
        }
    }
    Err(first_failure.unwrap_or_else(|| {
        (
            "0.0.0.0:0".to_string(),
            AgentFailure::Network("no mirrors".into()),
        )
    }))
}

fn schema_of_remote(set: &RemoteSet) -> Schema {
    use crate::store::schema::Column;
    Schema {
        columns: set
            .columns
            .iter()
            .filter(|(n, _)| n != "id" && n != WEIGHT_COLUMN)
            .map(|(n, t)| Column {
                name: n.clone(),
                ty: match t {
                    ResultType::LongLong => ColumnType::Bigint,
                    ResultType::Long => ColumnType::Uint,
                    ResultType::Float => ColumnType::Float,
                    ResultType::Bool => ColumnType::Bool,
                    ResultType::Multi => ColumnType::Multi64,
                    ResultType::Json => ColumnType::Json,
                    ResultType::String => ColumnType::String,
                },
            })
            .collect(),
    }
}

/// Remote rows mapped onto the local schema by column name.
fn remote_rows(schema: &Schema, set: &RemoteSet) -> Vec<Match<'static>> {
    let pos = |name: &str| set.columns.iter().position(|(n, _)| n == name);
    let id_pos = pos("id");
    let weight_pos = pos(WEIGHT_COLUMN);
    let col_pos: Vec<Option<usize>> = schema.columns.iter().map(|c| pos(&c.name)).collect();
    set.rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let id = id_pos.and_then(|p| r[p].as_i64()).unwrap_or(0);
            let weight = weight_pos.and_then(|p| r[p].as_i64()).unwrap_or(1);
            let values = schema
                .columns
                .iter()
                .zip(&col_pos)
                .map(|(c, p)| match p {
                    Some(p) => value_from_json(&r[*p], c.ty),
                    None => Value::default_for(c.ty),
                })
                .collect();
            Match {
                row: Cow::Owned(Row { id, values }),
                weight,
                rowid: i as u32,
            }
        })
        .collect()
}

/// A row of one schema presented in another, column by column name.
fn remap(from: &Schema, to: &Schema, row: &Row) -> Row {
    let values = to
        .columns
        .iter()
        .map(|c| {
            from.position(&c.name)
                .and_then(|i| row.values.get(i).cloned())
                .unwrap_or_else(|| Value::default_for(c.ty))
        })
        .collect();
    Row { id: row.id, values }
}

fn value_from_json(v: &serde_json::Value, ty: ColumnType) -> Value {
    match ty {
        ColumnType::Float => Value::Float(v.as_f64().unwrap_or(0.0) as f32),
        ColumnType::Text { .. } | ColumnType::String => {
            Value::Str(v.as_str().unwrap_or_default().to_string())
        }
        ColumnType::Multi | ColumnType::Multi64 => Value::Mva(
            v.as_str()
                .unwrap_or_default()
                .split(',')
                .filter_map(|s| s.trim().parse::<i64>().ok())
                .collect(),
        ),
        ColumnType::Json => match v.as_str() {
            Some("") | None => Value::Json(None),
            Some(text) => Value::Json(serde_json::from_str(text).ok()),
        },
        _ => Value::Int(v.as_i64().unwrap_or(0)),
    }
}
