//! INSERT / REPLACE / UPDATE / DELETE on RT tables, and their routing through shard tables.

use std::collections::{BTreeMap, HashSet};

use super::agent::AgentFailure;
use super::commit::{commit, routed_ref, write_cluster, Planned};
use super::error::{ExecError, ExecResult};
use super::eval::{eval_condition, EvalCache, RowCtx};
use super::result::Output;
use super::route::{order_targets, target_for};
use super::select::query_agent;
use super::session::Session;
use crate::cluster::messages::Check;
use crate::node::Node;
use crate::sql::ast::{Delete, Expr, Insert, Literal, TableRef, Update};
use crate::sql::render::{quote_ident, quote_table};
use crate::store::catalog::{Catalog, Table};
use crate::store::mutation::Mutation;
use crate::store::schema::Schema;
use crate::store::table::{Agent, TableDef, Targets};
use crate::store::value::{Row, Value};

/// A write target of a shard table: a local RT table or an agent.
enum Target {
    Local(String),
    Remote(Agent),
}

impl Target {
    fn table(&self) -> &str {
        match self {
            Target::Local(t) => t,
            Target::Remote(a) => a.mirrors[0]
                .tables
                .first()
                .map(String::as_str)
                .unwrap_or(""),
        }
    }
}

/// Targets in routing order.
fn routed_targets(targets: &Targets) -> Vec<Target> {
    let mut all: Vec<Target> = targets.locals.iter().cloned().map(Target::Local).collect();
    all.extend(targets.agents.iter().cloned().map(Target::Remote));
    let names: Vec<&str> = all.iter().map(Target::table).collect();
    let order = order_targets(&names).unwrap_or_else(|_| (0..names.len()).collect());
    let mut slots: Vec<Option<Target>> = all.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// The statement's target, with the implicit cluster of a shard write from another node.
fn target_ref(session: &Session, reference: &TableRef) -> TableRef {
    if session.shard_write && reference.cluster.is_none() {
        routed_ref(&reference.name)
    } else {
        reference.clone()
    }
}

pub async fn insert(node: &Node, session: &mut Session, ins: &Insert) -> ExecResult<Output> {
    let def = node.catalog().get(&ins.table.name).map(|t| t.def.clone());
    match def {
        Some(TableDef::Shard {
            schema, targets, ..
        }) => shard_insert(node, session, ins, &schema, &targets).await,
        Some(TableDef::Distributed { .. }) => Err(ExecError::new(format!(
            "table '{}' does not support {}",
            ins.table.name,
            if ins.replace { "REPLACE" } else { "INSERT" }
        ))),
        // Answered from the one look-up: a table created a moment later
        // (a wrapper being swapped) is not the one this statement found.
        None => Err(ExecError::new(format!("table '{}' absent", ins.table.name))),
        Some(_) => {
            let ins = Insert {
                table: target_ref(session, &ins.table),
                ..ins.clone()
            };
            local_insert(node, session, &ins).await
        }
    }
}

/// Builds full rows (ids resolved) from the statement's values.
fn build_rows(node: &Node, schema: &Schema, ins: &Insert) -> ExecResult<Vec<Row>> {
    let columns: Vec<String> = if ins.columns.is_empty() {
        std::iter::once("id".to_string())
            .chain(schema.columns.iter().map(|c| c.name.clone()))
            .collect()
    } else {
        ins.columns.clone()
    };
    let mut slots = Vec::with_capacity(columns.len());
    for c in &columns {
        if c.eq_ignore_ascii_case("id") {
            slots.push(None);
        } else {
            slots.push(Some(
                schema
                    .position(c)
                    .ok_or_else(|| ExecError::new(format!("unknown column: '{c}'")))?,
            ));
        }
    }
    let mut rows = Vec::with_capacity(ins.rows.len());
    for values in &ins.rows {
        if values.len() != columns.len() {
            return Err(ExecError::new(format!(
                "column count does not match value count (expected {}, got {})",
                columns.len(),
                values.len()
            )));
        }
        let mut row = Row {
            id: 0,
            values: schema
                .columns
                .iter()
                .map(|c| Value::default_for(c.ty))
                .collect(),
        };
        for (slot, lit) in slots.iter().zip(values) {
            match slot {
                None => {
                    row.id = match lit {
                        Literal::Int(v) => *v,
                        Literal::UInt(v) => *v as i64,
                        Literal::Null => 0,
                        _ => return Err(ExecError::new("id must be an integer")),
                    }
                }
                Some(pos) => {
                    let col = &schema.columns[*pos];
                    row.values[*pos] = Value::from_literal(lit, col.ty)
                        .map_err(|why| ExecError::new(format!("column '{}': {why}", col.name)))?;
                }
            }
        }
        if row.id == 0 {
            row.id = node.next_id();
        }
        rows.push(row);
    }
    Ok(rows)
}

async fn local_insert(node: &Node, session: &mut Session, ins: &Insert) -> ExecResult<Output> {
    let name = &ins.table.name;
    let plan = |catalog: &Catalog| {
        let table = catalog
            .get(name)
            .ok_or_else(|| ExecError::new(format!("table '{name}' absent")))?;
        if !table.is_rt() {
            return Err(ExecError::new(format!(
                "table '{name}' does not support INSERT"
            )));
        }
        let cluster = write_cluster(node, table, &ins.table).map_err(ExecError::new)?;
        let schema = table.def.schema().cloned().unwrap_or_default();
        let rows = build_rows(node, &schema, ins)?;
        let mut checks = Vec::new();
        if !ins.replace {
            let mut seen = HashSet::new();
            for r in &rows {
                if table.data.contains(r.id) || !seen.insert(r.id) {
                    return Err(ExecError::new(format!("duplicate id '{}'", r.id)));
                }
            }
            // Another member may insert the same id meanwhile: the leader decides.
            checks.push(Check::AbsentIds {
                table: table.name.clone(),
                ids: rows.iter().map(|r| r.id).collect(),
            });
        }
        let last = rows.last().map(|r| r.id).unwrap_or(0);
        let n = rows.len() as u64;
        let mut planned = Planned::new(
            vec![Mutation::Insert {
                table: table.name.clone(),
                rows,
            }],
            cluster,
            (n, last),
        );
        planned.checks = checks;
        Ok(planned)
    };
    let (affected, last) = commit(node, plan, ExecError::new).await?;
    session.last_insert_id = last;
    Ok(Output::Ok { affected })
}

async fn shard_insert(
    node: &Node,
    session: &mut Session,
    ins: &Insert,
    schema: &Schema,
    targets: &Targets,
) -> ExecResult<Output> {
    let rows = build_rows(node, schema, ins)?;
    let routed = routed_targets(targets);
    let mut groups: BTreeMap<usize, Vec<Row>> = BTreeMap::new();
    for row in rows {
        groups
            .entry(target_for(row.id, routed.len()))
            .or_default()
            .push(row);
    }
    // A statement touching an unreachable target fails as a whole: check every agent first.
    let mut mirrors: BTreeMap<usize, String> = BTreeMap::new();
    for idx in groups.keys() {
        if let Target::Remote(agent) = &routed[*idx] {
            mirrors.insert(*idx, live_mirror(node, agent).await?);
        }
    }
    let mut affected = 0;
    let mut last = 0;
    for (idx, rows) in groups {
        affected += rows.len() as u64;
        last = rows.last().map(|r| r.id).unwrap_or(last);
        match &routed[idx] {
            Target::Local(table) => {
                let sub = Insert {
                    replace: ins.replace,
                    table: routed_ref(table),
                    columns: full_columns(schema),
                    rows: rows.iter().map(|r| row_literals(schema, r)).collect(),
                };
                local_insert(node, session, &sub).await?;
            }
            Target::Remote(agent) => {
                let table = agent.mirrors[0].tables[0].clone();
                let sql = insert_sql(ins.replace, &table, schema, &rows);
                let addr = &mirrors[&idx];
                remote_write(node, addr, &table, &sql).await?;
            }
        }
    }
    session.last_insert_id = last;
    Ok(Output::Ok { affected })
}

/// The first mirror of an agent that accepts connections.
async fn live_mirror(node: &Node, agent: &Agent) -> ExecResult<String> {
    let table = agent.mirrors[0].tables.first().cloned().unwrap_or_default();
    let mut first_err = None;
    for m in &agent.mirrors {
        let addr = m.addr();
        if node.clusters.is_blocked(&addr) {
            first_err.get_or_insert(format!(
                "remote table '{table}' at {addr} failed: {}",
                crate::net::http_client::TIMED_OUT
            ));
            continue;
        }
        match tokio::time::timeout(
            node.config.sim.agent_connect_timeout,
            tokio::net::TcpStream::connect(&addr),
        )
        .await
        {
            Ok(Ok(_)) => return Ok(addr),
            Ok(Err(e)) => {
                let text = crate::net::http_client::ClientError::Connect(e).agent_text();
                first_err.get_or_insert(format!("remote table '{table}' at {addr} failed: {text}"));
            }
            Err(_) => {
                first_err.get_or_insert(format!(
                    "remote table '{table}' at {addr} failed: connect timed out"
                ));
            }
        }
    }
    Err(ExecError::new(first_err.unwrap_or_else(|| {
        format!("remote table '{table}' has no mirrors")
    })))
}

async fn remote_write(node: &Node, addr: &str, table: &str, sql: &str) -> ExecResult<u64> {
    match super::agent::query(node, addr, sql).await {
        Ok(sets) => Ok(sets.first().map(|s| s.total).unwrap_or(0)),
        Err(AgentFailure::Network(text)) | Err(AgentFailure::Remote(text)) => Err(ExecError::new(
            format!("remote table '{table}' at {addr} failed: {text}"),
        )),
    }
}

fn full_columns(schema: &Schema) -> Vec<String> {
    std::iter::once("id".to_string())
        .chain(schema.columns.iter().map(|c| c.name.clone()))
        .collect()
}

fn value_literal(v: &Value) -> Literal {
    match v {
        Value::Int(i) => Literal::Int(*i),
        Value::Float(f) => Literal::Float(f64::from(*f)),
        Value::Str(s) => Literal::Str(s.clone()),
        Value::Mva(m) => Literal::Mva(m.clone()),
        Value::Json(Some(j)) => Literal::Str(j.to_string()),
        Value::Json(None) => Literal::Str(String::new()),
    }
}

fn row_literals(_schema: &Schema, r: &Row) -> Vec<Literal> {
    std::iter::once(Literal::Int(r.id))
        .chain(r.values.iter().map(value_literal))
        .collect()
}

fn insert_sql(replace: bool, table: &str, schema: &Schema, rows: &[Row]) -> String {
    let cols: Vec<String> = full_columns(schema)
        .iter()
        .map(|c| quote_ident(c))
        .collect();
    let values: Vec<String> = rows
        .iter()
        .map(|r| {
            let lits: Vec<String> = row_literals(schema, r)
                .iter()
                .map(|l| l.to_string())
                .collect();
            format!("({})", lits.join(", "))
        })
        .collect();
    format!(
        "{} INTO {} ({}) VALUES {}",
        if replace { "REPLACE" } else { "INSERT" },
        quote_table(table),
        cols.join(", "),
        values.join(", ")
    )
}

/// `id = N` (alone or inside AND) pins an UPDATE/DELETE to one shard.
fn pinned_id(filter: Option<&Expr>) -> Option<i64> {
    match super::eval::id_candidates(filter?)?.as_slice() {
        [id] => Some(*id),
        _ => None,
    }
}

/// The table an UPDATE/DELETE changes and its cluster; errors carry searchd's
/// `table <name>: ` prefix.
fn change_target<'a>(
    node: &Node,
    catalog: &'a Catalog,
    reference: &TableRef,
) -> ExecResult<(&'a Table, Option<String>)> {
    let name = &reference.name;
    let table = catalog
        .get(name)
        .ok_or_else(|| prefixed(name, format!("table '{name}' absent")))?;
    let cluster = write_cluster(node, table, reference).map_err(|m| prefixed(name, m))?;
    Ok((table, cluster))
}

fn prefixed(name: &str, message: String) -> ExecError {
    ExecError::new(format!("table {name}: {message}"))
}

/// A change planned against an RT table: the matching documents and what to do to them.
fn matching_ids(table: &Table, filter: Option<&Expr>) -> ExecResult<Vec<i64>> {
    let schema = table.def.schema().cloned().unwrap_or_default();
    let Some(f) = filter else {
        return Ok(table.data.ids().collect());
    };
    super::eval::check_columns(f, &schema)?;
    let mut cache = EvalCache::default();
    let mut ids = Vec::new();
    let rows: Vec<&Row> = match super::eval::id_candidates(f) {
        Some(candidates) => candidates
            .iter()
            .filter_map(|id| table.data.get(*id))
            .collect(),
        None => table.data.iter().map(|(_, r)| r).collect(),
    };
    for row in rows {
        let ctx = RowCtx {
            schema: &schema,
            row,
            weight: 1,
        };
        if eval_condition(f, &ctx, &mut cache, false)? {
            ids.push(row.id);
        }
    }
    Ok(ids)
}

/// An UPDATE or DELETE, which shard and distributed tables send to every target (or to the
/// one an `id = N` condition pins).
#[derive(Clone, Copy)]
enum Change<'a> {
    Update(&'a Update),
    Delete(&'a Delete),
}

impl Change<'_> {
    fn reference(&self) -> &TableRef {
        match self {
            Change::Update(u) => &u.table,
            Change::Delete(d) => &d.table,
        }
    }

    fn filter(&self) -> Option<&Expr> {
        match self {
            Change::Update(u) => u.filter.as_ref(),
            Change::Delete(d) => d.filter.as_ref(),
        }
    }

    /// The same change as SphinxQL for an agent's table.
    fn sql_for(&self, table: &str) -> String {
        let where_sql = self
            .filter()
            .map(|f| format!(" WHERE {f}"))
            .unwrap_or_default();
        match self {
            Change::Update(u) => {
                let sets: Vec<String> = u
                    .sets
                    .iter()
                    .map(|(c, v)| format!("{} = {v}", quote_ident(c)))
                    .collect();
                format!(
                    "UPDATE {} SET {}{where_sql}",
                    quote_table(table),
                    sets.join(", ")
                )
            }
            Change::Delete(_) => format!("DELETE FROM {}{where_sql}", quote_table(table)),
        }
    }

    /// Runs the change on a local table named by `reference`.
    async fn run_local(&self, node: &Node, reference: TableRef) -> ExecResult<Output> {
        match self {
            Change::Update(u) => {
                let up = Update {
                    table: reference,
                    sets: u.sets.clone(),
                    filter: u.filter.clone(),
                };
                local_update(node, &up).await
            }
            Change::Delete(d) => {
                let del = Delete {
                    table: reference,
                    filter: d.filter.clone(),
                };
                local_delete(node, &del).await
            }
        }
    }
}

pub async fn update(node: &Node, session: &Session, up: &Update) -> ExecResult<Output> {
    change(node, session, Change::Update(up)).await
}

pub async fn delete(node: &Node, session: &Session, del: &Delete) -> ExecResult<Output> {
    change(node, session, Change::Delete(del)).await
}

async fn change(node: &Node, session: &Session, change: Change<'_>) -> ExecResult<Output> {
    let reference = change.reference();
    let def = node.catalog().get(&reference.name).map(|t| t.def.clone());
    match def {
        Some(TableDef::Shard { targets, .. }) | Some(TableDef::Distributed { targets }) => {
            fan_out_write(node, &targets, pinned_id(change.filter()), change).await
        }
        // As in `insert`: what the look-up found, not a table made since.
        None => Err(prefixed(
            &reference.name,
            format!("table '{}' absent", reference.name),
        )),
        Some(_) => change.run_local(node, target_ref(session, reference)).await,
    }
}

async fn local_update(node: &Node, up: &Update) -> ExecResult<Output> {
    let name = &up.table.name;
    let plan = |catalog: &Catalog| {
        let (table, cluster) = change_target(node, catalog, &up.table)?;
        let schema = table.def.schema().cloned().unwrap_or_default();
        let mut sets = Vec::new();
        for (col, lit) in &up.sets {
            let pos = schema
                .position(col)
                .ok_or_else(|| prefixed(name, format!("attribute '{col}' not found")))?;
            let c = &schema.columns[pos];
            if c.ty.is_text() {
                return Err(prefixed(
                    name,
                    format!("attribute '{col}' can not be updated (full-text field)"),
                ));
            }
            sets.push((
                pos,
                Value::from_literal(lit, c.ty)
                    .map_err(|why| prefixed(name, format!("attribute '{col}': {why}")))?,
            ));
        }
        let ids = matching_ids(table, up.filter.as_ref())?;
        let n = ids.len() as u64;
        let mutations = if ids.is_empty() {
            Vec::new()
        } else {
            vec![Mutation::Update {
                table: table.name.clone(),
                ids,
                sets,
            }]
        };
        Ok(Planned::new(mutations, cluster, n))
    };
    commit(node, plan, |m| prefixed(name, m))
        .await
        .map(|affected| Output::Ok { affected })
}

async fn local_delete(node: &Node, del: &Delete) -> ExecResult<Output> {
    let name = &del.table.name;
    let plan = |catalog: &Catalog| {
        let (table, cluster) = change_target(node, catalog, &del.table)?;
        let ids = matching_ids(table, del.filter.as_ref())?;
        let n = ids.len() as u64;
        let mutations = if ids.is_empty() {
            Vec::new()
        } else {
            vec![Mutation::Delete {
                table: table.name.clone(),
                ids,
            }]
        };
        Ok(Planned::new(mutations, cluster, n))
    };
    commit(node, plan, |m| prefixed(name, m))
        .await
        .map(|affected| Output::Ok { affected })
}

/// Runs an UPDATE/DELETE on the routed target (when the id pins one) or on every target.
async fn fan_out_write(
    node: &Node,
    targets: &Targets,
    pinned: Option<i64>,
    change: Change<'_>,
) -> ExecResult<Output> {
    let routed = routed_targets(targets);
    let chosen: Vec<&Target> = match pinned {
        Some(id) if !routed.is_empty() => vec![&routed[target_for(id, routed.len())]],
        _ => routed.iter().collect(),
    };
    let mut affected = 0;
    for target in chosen {
        match target {
            Target::Local(t) => {
                if let Output::Ok { affected: n } = change.run_local(node, routed_ref(t)).await? {
                    affected += n;
                }
            }
            Target::Remote(agent) => {
                let table = target.table().to_string();
                let sql = change.sql_for(&table);
                match query_agent(node, agent, &sql).await {
                    Ok((_, sets, _)) => affected += sets.first().map(|s| s.total).unwrap_or(0),
                    Err((addr, AgentFailure::Network(text)))
                    | Err((addr, AgentFailure::Remote(text))) => {
                        return Err(ExecError::new(format!(
                            "remote table '{table}' at {addr} failed: {text}"
                        )));
                    }
                }
            }
        }
    }
    Ok(Output::Ok { affected })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_pinning() {
        let f =
            |cond: &str| match crate::sql::parse(&format!("DELETE FROM t WHERE {cond}")).unwrap() {
                crate::sql::ast::Statement::Delete(d) => pinned_id(d.filter.as_ref()),
                _ => unreachable!(),
            };
        assert_eq!(f("id = 3"), Some(3));
        assert_eq!(f("n = 1 AND id = 7"), Some(7));
        assert_eq!(f("id > 3"), None);
        assert_eq!(f("id = 1 OR id = 2"), None);
    }
}
