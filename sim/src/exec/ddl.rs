//! CREATE / DROP / ALTER TABLE and the maintenance statements.

use super::commit::{commit, write_cluster, Planned};
use super::error::{ExecError, ExecResult};
use super::result::Output;
use super::route::order_targets;
use crate::node::Node;
use crate::sql::ast::{ColumnSpec, CreateTable, TableRef};
use crate::store::catalog::Catalog;
use crate::store::mutation::Mutation;
use crate::store::schema::{Schema, SchemaError};
use crate::store::table::{Agent, TableDef, Targets};

const OK: Output = Output::Ok { affected: 0 };

fn failed(name: &str, why: &str) -> ExecError {
    ExecError::new(format!("table '{name}': CREATE TABLE failed: {why}"))
}

fn adding(name: &str, why: &str) -> ExecError {
    ExecError::new(format!("error adding table '{name}': {why}"))
}

fn schema_error(name: &str, e: SchemaError) -> ExecError {
    match e {
        SchemaError::KnnNotLoaded => adding(name, "knn library not loaded"),
        SchemaError::ColumnarNotLoaded => adding(name, "columnar library not loaded"),
        SchemaError::DuplicateColumn(c) => adding(name, &format!("duplicate attribute name '{c}'")),
    }
}

pub fn create_table(node: &Node, c: &CreateTable) -> ExecResult<Output> {
    let name = c.name.as_str();
    // searchd rejects the sharding options before anything else; the wording is doubled in 29.x.
    for key in ["shards", "rf"] {
        if c.options
            .iter()
            .any(|(k, v)| k == key && v.trim_start().starts_with('-'))
        {
            return Err(failed(
                name,
                &format!(
                    "table '{name}': CREATE TABLE failed: negative '{key}' option is not allowed"
                ),
            ));
        }
    }
    if c.options.iter().any(|(k, _)| k == "shards" || k == "rf") {
        return Err(failed(
            name,
            &format!(
                "table '{name}': CREATE TABLE failed: 'shards' and 'rf' options require Buddy"
            ),
        ));
    }
    node.write(|catalog| {
        if catalog.get(name).is_some() {
            if c.if_not_exists {
                return Ok((Vec::new(), OK));
            }
            return Err(failed(name, &format!("table '{name}' already exists")));
        }
        let def = table_def(catalog, c)?;
        Ok((
            vec![Mutation::CreateTable {
                name: name.to_string(),
                def,
            }],
            OK,
        ))
    })
}

fn table_def(catalog: &Catalog, c: &CreateTable) -> ExecResult<TableDef> {
    let name = c.name.as_str();
    let mut kind = "rt".to_string();
    let mut locals = Vec::new();
    let mut agent_values = Vec::new();
    let mut options = Vec::new();
    for (k, v) in &c.options {
        match k.as_str() {
            "type" => kind = v.to_ascii_lowercase(),
            "local" => locals.push(v.clone()),
            "agent" => agent_values.push(v.clone()),
            "engine" if v.eq_ignore_ascii_case("columnar") => {
                return Err(adding(name, "columnar library not loaded"))
            }
            _ => options.push((k.clone(), v.clone())),
        }
    }
    match kind.as_str() {
        "rt" | "" => {
            let schema = Schema::from_specs(&c.columns).map_err(|e| schema_error(name, e))?;
            Ok(TableDef::Rt { schema, options })
        }
        "distributed" => {
            let targets = targets(catalog, name, &locals, &agent_values)?;
            if targets.is_empty() {
                return Err(adding(
                    name,
                    &format!("table '{name}': no valid local/remote tables in distributed table"),
                ));
            }
            Ok(TableDef::Distributed { targets })
        }
        "shard" => {
            let schema = Schema::from_specs(&c.columns).map_err(|e| schema_error(name, e))?;
            let targets = targets(catalog, name, &locals, &agent_values)?;
            if targets.is_empty() {
                return Err(adding(
                    name,
                    &format!("table '{name}': no valid local/remote tables in shard table"),
                ));
            }
            check_shard_targets(name, &targets)?;
            for local in &targets.locals {
                let local_schema = catalog.get(local).and_then(|t| t.def.schema());
                if local_schema != Some(&schema) {
                    return Err(adding(
                        name,
                        &format!("local table '{local}' is incompatible with shard table '{name}'"),
                    ));
                }
            }
            Ok(TableDef::Shard {
                schema,
                targets,
                options,
            })
        }
        other => Err(adding(
            name,
            &format!("setting not allowed: type='{other}'"),
        )),
    }
}

fn targets(
    catalog: &Catalog,
    name: &str,
    locals: &[String],
    agents: &[String],
) -> ExecResult<Targets> {
    for local in locals {
        if !catalog.get(local).is_some_and(|t| t.is_rt()) {
            return Err(adding(
                name,
                &format!("table '{name}': no such local table '{local}'"),
            ));
        }
    }
    let agents = agents
        .iter()
        .map(|a| Agent::parse(a).map_err(|why| adding(name, &format!("table '{name}': {why}"))))
        .collect::<ExecResult<Vec<_>>>()?;
    Ok(Targets {
        locals: locals.to_vec(),
        agents,
    })
}

/// searchd's rules for shard routing targets.
fn check_shard_targets(name: &str, targets: &Targets) -> ExecResult<()> {
    let mut names: Vec<&str> = targets.locals.iter().map(String::as_str).collect();
    for agent in &targets.agents {
        let first = &agent.mirrors[0].tables;
        if first.len() != 1 || agent.mirrors.iter().any(|m| m.tables.len() != 1) {
            return Err(adding(
                name,
                &format!(
                    "table '{name}': shard remote target '{}' must name exactly one remote table",
                    agent.raw
                ),
            ));
        }
        if agent.mirrors.iter().any(|m| m.tables != *first) {
            return Err(adding(name, &format!("table '{name}': shard remote target '{}' must name the same remote table on every mirror", agent.raw)));
        }
        names.push(first[0].as_str());
    }
    order_targets(&names).map_err(|(order, a, b)| {
        adding(
            name,
            &format!(
                "table '{name}': duplicate shard suffix order {order} for targets '{a}' and '{b}'"
            ),
        )
    })?;
    Ok(())
}

pub fn create_table_like(
    node: &Node,
    if_not_exists: bool,
    name: &str,
    like: &str,
) -> ExecResult<Output> {
    node.write(|catalog| {
        if catalog.get(name).is_some() {
            if if_not_exists {
                return Ok((Vec::new(), OK));
            }
            return Err(failed(name, &format!("table '{name}' already exists")));
        }
        let source = catalog
            .get(like)
            .ok_or_else(|| failed(name, &format!("no such table '{like}'")))?;
        Ok((
            vec![Mutation::CreateTable {
                name: name.to_string(),
                def: source.def.clone(),
            }],
            OK,
        ))
    })
}

pub fn drop_table(node: &Node, if_exists: bool, name: &str, force: bool) -> ExecResult<Output> {
    node.write(|catalog| {
        let Some(table) = catalog.get(name) else {
            if if_exists {
                return Ok((Vec::new(), OK));
            }
            return Err(ExecError::new(format!(
                "DROP TABLE failed: unknown table '{name}'"
            )));
        };
        if !force && table.def.targets().is_some_and(Targets::has_system_table) {
            return Err(ExecError::new(format!(
                "can not drop table '{}' because it contains system table",
                table.name
            )));
        }
        if table.cluster.is_some() {
            return Err(ExecError::new(format!(
                "DROP TABLE failed: unable to drop a cluster table '{}'",
                table.name
            )));
        }
        Ok((
            vec![Mutation::DropTable {
                name: table.name.clone(),
            }],
            OK,
        ))
    })
}

fn not_rt(name: &str) -> ExecError {
    ExecError::new(format!("table '{name}' is not found, or not real-time"))
}

/// Bare `ALTER TABLE t`: succeeds for RT tables (Buddy uses it as a permission probe).
pub fn alter_probe(node: &Node, name: &str) -> ExecResult<Output> {
    let catalog = node.catalog();
    match catalog.get(name) {
        Some(t) if t.is_rt() => Ok(OK),
        _ => Err(not_rt(name)),
    }
}

fn alter_target<'a>(
    catalog: &'a Catalog,
    name: &str,
) -> ExecResult<&'a crate::store::catalog::Table> {
    let table = catalog.get(name).ok_or_else(|| not_rt(name))?;
    if !table.is_rt() {
        return Err(ExecError::new(
            "ALTER is only supported for local (not distributed) tables",
        ));
    }
    if let Some(c) = &table.cluster {
        return Err(ExecError::new(format!(
            "table {name}: is part of cluster {c}, ALTER is not supported for tables in cluster"
        )));
    }
    Ok(table)
}

pub fn add_column(node: &Node, name: &str, spec: &ColumnSpec) -> ExecResult<Output> {
    node.write(|catalog| {
        let table = alter_target(catalog, name)?;
        let schema =
            Schema::from_specs(std::slice::from_ref(spec)).map_err(|e| schema_error(name, e))?;
        let Some(column) = schema.columns.into_iter().next() else {
            return Err(ExecError::new(format!(
                "table {name}: can not add column 'id'"
            )));
        };
        if table
            .def
            .schema()
            .is_some_and(|s| s.position(&column.name).is_some())
        {
            return Err(ExecError::new(format!(
                "table {name}: attribute '{}' already exists",
                column.name
            )));
        }
        Ok((
            vec![Mutation::AddColumn {
                table: table.name.clone(),
                column,
            }],
            OK,
        ))
    })
}

pub fn drop_column(node: &Node, name: &str, column: &str) -> ExecResult<Output> {
    node.write(|catalog| {
        let table = alter_target(catalog, name)?;
        if table
            .def
            .schema()
            .and_then(|s| s.position(column))
            .is_none()
        {
            return Err(ExecError::new(format!(
                "table {name}: attribute '{column}' does not exist"
            )));
        }
        Ok((
            vec![Mutation::DropColumn {
                table: table.name.clone(),
                column: column.to_string(),
            }],
            OK,
        ))
    })
}

pub async fn truncate(node: &Node, table: &TableRef, reconfigure: bool) -> ExecResult<Output> {
    if reconfigure {
        return Err(ExecError::new(format!(
            "failed to find any table in config file '{}'; using previous settings",
            node.config.path.display()
        )));
    }
    let plan = |catalog: &Catalog| {
        let t = catalog
            .get(&table.name)
            .filter(|t| t.is_rt())
            .ok_or_else(|| ExecError::new("TRUNCATE RTINDEX requires an existing RT table"))?;
        let cluster = write_cluster(node, t, table).map_err(ExecError::new)?;
        Ok(Planned::new(
            vec![Mutation::Truncate {
                table: t.name.clone(),
            }],
            cluster,
            OK,
        ))
    };
    commit(node, plan, ExecError::new).await
}

pub fn flush_ramchunk(node: &Node, name: &str) -> ExecResult<Output> {
    compact(node, name, || {
        ExecError::new("FLUSH RAMCHUNK requires an existing RT table")
    })
}

pub fn optimize(node: &Node, name: &str, sync: bool) -> ExecResult<Output> {
    let kind = node.catalog().get(name).map(|t| t.def.clone());
    match kind {
        None => Err(ExecError::new(
            "OPTIMIZE TABLE requires an existing RT, distributed, or shard table",
        )),
        Some(TableDef::Rt { .. }) => compact(node, name, || {
            ExecError::new("OPTIMIZE TABLE requires an existing RT table")
        }),
        Some(def) if sync => {
            for local in def.targets().map(|t| t.locals.clone()).unwrap_or_default() {
                compact(node, &local, || {
                    ExecError::new(format!(
                        "unknown local table(s) '{local}' in search request"
                    ))
                })?;
            }
            Ok(OK)
        }
        Some(_) => Err(ExecError::new(
            "OPTIMIZE TABLE requires an existing RT table",
        )),
    }
}

fn compact(node: &Node, name: &str, err: impl FnOnce() -> ExecError) -> ExecResult<Output> {
    node.write(|catalog| {
        let t = catalog.get(name).filter(|t| t.is_rt()).ok_or_else(err)?;
        Ok((
            vec![Mutation::Compact {
                table: t.name.clone(),
            }],
            OK,
        ))
    })
}
