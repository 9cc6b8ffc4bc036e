//! SHOW statements and DESC.

use super::error::{ErrorCode, ExecError, ExecResult};
use super::result::{Cell, ResultSet};
use super::session::{Protocol, Session};
use crate::node::Node;
use crate::store::catalog::{Catalog, Table};
use crate::store::schema::{ResultType, Schema};
use crate::store::table::{TableDef, Targets};

/// SQL `LIKE` with `%` and `_`, case-insensitive.
pub fn like_matches(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'%') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some(b'_') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(c) => t.first().is_some_and(|x| x.eq_ignore_ascii_case(c)) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

fn filter_like(rows: Vec<(String, String)>, like: Option<&str>) -> Vec<(String, String)> {
    rows.into_iter()
        .filter(|(k, _)| like.is_none_or(|p| like_matches(p, k)))
        .collect()
}

pub fn show_settings(node: &Node) -> ResultSet {
    let cfg = &node.config;
    let mut rs = ResultSet::new(&[
        ("Setting_name", ResultType::String),
        ("Value", ResultType::String),
    ]);
    let mut push = |k: &str, v: Cell| rs.rows.push(vec![Cell::Str(k.to_string()), v]);
    push(
        "configuration_file",
        Cell::Str(cfg.path.display().to_string()),
    );
    push("worker_pid", Cell::Int(i64::from(std::process::id())));
    for (k, v) in &cfg.searchd {
        push(&format!("searchd.{k}"), Cell::Str(v.clone()));
    }
    if cfg.searchd_value("binlog_path").is_none() {
        push(
            "searchd.binlog_path",
            Cell::Str(cfg.data_dir.join("binlog").display().to_string()),
        );
    }
    push("common.plugin_dir", Cell::Str(PLUGIN_DIR.to_string()));
    rs
}

/// Where searchd would look for plugins (the simulator has none).
pub const PLUGIN_DIR: &str = "/usr/local/lib/manticore";

pub fn variable_value(node: &Node, session: &Session, name: &str) -> String {
    variables(node, session)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .unwrap_or_default()
}

fn variables(node: &Node, session: &Session) -> Vec<(String, String)> {
    let user = match session.protocol {
        Protocol::Mysql => session.user.clone(),
        Protocol::Http => String::new(),
    };
    let fixed: &[(&str, &str)] = &[
        ("autocommit", "1"),
        ("auto_optimize", "1"),
        ("parallel_chunk_merges", "1"),
        ("merge_chunks_per_job", "2"),
        ("knn_parallel_build", "1"),
        ("embeddings_threads", "4"),
        ("optimize_cutoff", "4"),
        ("collation_connection", "libc_ci"),
        ("query_log_format", "sphinxql"),
        ("session_read_only", "0"),
    ];
    let mut rows: Vec<(String, String)> = fixed
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    rows.push(("log_level".into(), node.log_level()));
    for (k, v) in [
        ("max_allowed_packet", "134217728"),
        ("character_set_client", "utf8"),
        ("character_set_connection", "utf8"),
        ("grouping_in_utc", "0"),
        ("timezone", "UTC"),
    ] {
        rows.push((k.into(), v.into()));
    }
    rows.push(("last_insert_id".into(), session.last_insert_id.to_string()));
    for (k, v) in [
        ("pseudo_sharding", "1"),
        ("secondary_indexes", "1"),
        ("accurate_aggregation", "0"),
        ("distinct_precision_threshold", "3500"),
        ("threads_ex_effective", ""),
        ("cluster_user", "cluster"),
        ("wait_timeout", "28800"),
        ("interactive_timeout", "900"),
        ("thread_stack", "1048576"),
        ("threads_ex", ""),
    ] {
        rows.push((k.into(), v.into()));
    }
    rows.push(("user".into(), user));
    rows
}

pub fn show_variables(node: &Node, session: &Session, like: Option<&str>) -> ResultSet {
    ResultSet::pairs(
        "Variable_name",
        "Value",
        filter_like(variables(node, session), like),
    )
}

pub fn show_status(node: &Node, like: Option<&str>) -> ResultSet {
    use std::sync::atomic::Ordering::Relaxed;
    let c = &node.counters;
    let n = |v: &std::sync::atomic::AtomicU64| v.load(Relaxed).to_string();
    let mut rows: Vec<(String, String)> = vec![
        ("uptime".into(), node.uptime_secs().to_string()),
        ("connections".into(), n(&c.connections)),
        ("maxed_out".into(), "0".into()),
        ("version".into(), node.version()),
        ("mysql_version".into(), node.version()),
        ("command_search".into(), n(&c.command_search)),
        ("command_excerpt".into(), "0".into()),
        ("command_update".into(), n(&c.command_update)),
        ("command_keywords".into(), "0".into()),
        ("command_persist".into(), "0".into()),
        ("command_status".into(), n(&c.command_status)),
        ("command_flushattrs".into(), "0".into()),
        ("command_sphinxql".into(), n(&c.command_sphinxql)),
        ("command_ping".into(), "0".into()),
        ("command_delete".into(), n(&c.command_delete)),
        ("command_set".into(), "0".into()),
        ("command_insert".into(), n(&c.command_insert)),
        ("command_replace".into(), n(&c.command_replace)),
    ];
    for k in [
        "command_commit",
        "command_suggest",
        "command_json",
        "command_callpq",
        "command_cluster",
        "command_getfield",
        "command_shard_write",
        "command_optimize",
    ] {
        rows.push((k.into(), "0".into()));
    }
    for prefix in ["insert_replace", "search", "update"] {
        for stat in ["avg", "min", "max", "pct95", "pct99"] {
            rows.push((format!("{prefix}_stats_ms_{stat}"), "N/A N/A N/A".into()));
        }
    }
    for (k, v) in [
        ("agent_connect", "0"),
        ("agent_tfo", "0"),
        ("agent_retry", "0"),
    ] {
        rows.push((k.into(), v.into()));
    }
    rows.push(("queries".into(), n(&c.queries)));
    rows.push(("dist_queries".into(), "0".into()));
    let threads = node.config.sim.threads.to_string();
    for (k, v) in [
        ("workers_total", threads.as_str()),
        ("workers_active", "1"),
        ("workers_clients", "1"),
        ("workers_clients_vip", "0"),
        ("workers_clients_buddy", "0"),
        ("work_queue_length", "0"),
        ("load", "0.00 0.00 0.00"),
        ("load_primary", "0.00 0.00 0.00"),
        ("load_secondary", "0.00 0.00 0.00"),
        ("query_wall", "0.000"),
        ("query_cpu", "OFF"),
        ("dist_wall", "0.000"),
        ("dist_local", "0.000"),
        ("dist_wait", "0.000"),
        ("query_reads", "OFF"),
        ("query_readkb", "OFF"),
        ("query_readtime", "OFF"),
        ("avg_query_wall", "0.000"),
        ("avg_query_cpu", "OFF"),
        ("avg_dist_wall", "0.000"),
        ("avg_dist_local", "0.000"),
        ("avg_dist_wait", "0.000"),
        ("avg_query_reads", "OFF"),
        ("avg_query_readkb", "OFF"),
        ("avg_query_readtime", "OFF"),
        ("qcache_max_bytes", "16777216"),
        ("qcache_thresh_msec", "3000"),
        ("qcache_ttl_sec", "60"),
        ("qcache_cached_queries", "0"),
        ("qcache_used_bytes", "0"),
        ("qcache_hits", "0"),
    ] {
        rows.push((k.into(), v.into()));
    }
    rows.extend(crate::cluster::status::rows(node));
    ResultSet::pairs("Counter", "Value", filter_like(rows, like))
}

pub fn show_tables(catalog: &Catalog, system: bool, like: Option<&str>) -> ResultSet {
    let rows = catalog
        .tables()
        .filter(|t| t.is_system() == system)
        .map(|t| (t.name.clone(), t.def.type_name().to_string()))
        .collect();
    ResultSet::pairs("Table", "Type", filter_like(rows, like))
}

fn render_options(options: &[(String, String)]) -> String {
    options.iter().map(|(k, v)| format!(" {k}='{v}'")).collect()
}

fn render_targets(targets: &Targets) -> String {
    let mut locals: Vec<String> = targets
        .locals
        .iter()
        .map(|l| format!(" local='{l}'"))
        .collect();
    let mut agents: Vec<String> = targets
        .agents
        .iter()
        .map(|a| format!(" agent='{}'", a.raw))
        .collect();
    locals.sort();
    agents.sort();
    locals.concat() + &agents.concat()
}

/// The `Create Table` text searchd prints for a table.
pub fn create_table_text(table: &Table, force: bool) -> String {
    let name = &table.name;
    match &table.def {
        TableDef::Rt { schema, options } => schema.render_create(name) + &render_options(options),
        TableDef::Distributed { targets } => format!(
            "CREATE TABLE {name} type='distributed'{}",
            render_targets(targets)
        ),
        TableDef::Shard {
            schema,
            targets,
            options,
        } => {
            let head = schema.render_create(name) + &render_options(options);
            let all_system = targets.table_names().all(|t| t.starts_with("system."));
            if !force && all_system {
                let shards = targets.locals.len() + targets.agents.len();
                let rf = targets
                    .agents
                    .iter()
                    .map(|a| a.mirrors.len())
                    .max()
                    .unwrap_or(1)
                    .max(1);
                format!("{head} shards='{shards}' rf='{rf}'")
            } else {
                format!("{head} type='shard'{}", render_targets(targets))
            }
        }
    }
}

pub fn show_create(catalog: &Catalog, name: &str, force: bool) -> ExecResult<ResultSet> {
    let table = catalog
        .get(name)
        .ok_or_else(|| ExecError::no_such_table(name))?;
    if let TableDef::Distributed { targets } = &table.def {
        // A shard table renders its system targets as `shards=… rf=…`; a distributed table
        // has no such form (`rebalance.136`, ERROR 1146).
        if !force && targets.has_system_table() {
            return Err(ExecError {
                code: ErrorCode::NoSuchTable,
                ..ExecError::new(format!(
                    "can not show table '{}' because it contains system table",
                    table.name
                ))
            });
        }
    }
    Ok(ResultSet::pairs(
        "Table",
        "Create Table",
        [(table.name.clone(), create_table_text(table, force))],
    ))
}

pub fn describe(catalog: &Catalog, name: &str, topology: bool) -> ExecResult<ResultSet> {
    let table = catalog
        .get(name)
        .ok_or_else(|| ExecError::no_such_table(name))?;
    match &table.def {
        TableDef::Shard { schema, .. } | TableDef::Rt { schema, .. }
            if !topology || table.is_rt() =>
        {
            Ok(describe_schema(schema))
        }
        def => {
            let targets = def.targets().cloned().unwrap_or_default();
            if targets.has_system_table() {
                return Err(ExecError::new(format!(
                    "can not describe table '{}' because it contains system table",
                    table.name
                )));
            }
            let mut rows: Vec<(String, String)> = targets
                .locals
                .iter()
                .map(|l| (l.clone(), "local".to_string()))
                .collect();
            for (i, agent) in targets.agents.iter().enumerate() {
                for m in &agent.mirrors {
                    rows.push((
                        format!("{}:{}", m.addr(), m.tables.join(",")),
                        format!("remote_{}", i + 1),
                    ));
                }
            }
            Ok(ResultSet::pairs("Agent", "Type", rows))
        }
    }
}

fn describe_schema(schema: &Schema) -> ResultSet {
    let mut rs = ResultSet::new(&[
        ("Field", ResultType::String),
        ("Type", ResultType::String),
        ("Properties", ResultType::String),
    ]);
    rs.rows.push(vec![
        Cell::Str("id".into()),
        Cell::Str("bigint".into()),
        Cell::Str(String::new()),
    ]);
    for c in &schema.columns {
        rs.rows.push(vec![
            Cell::Str(c.name.clone()),
            Cell::Str(c.ty.desc_name().into()),
            Cell::Str(c.ty.desc_properties().into()),
        ]);
    }
    rs
}

pub fn show_table_status(catalog: &Catalog, name: &str) -> ExecResult<ResultSet> {
    let table = catalog
        .get(name)
        .ok_or_else(|| ExecError::new("SHOW TABLE STATUS requires an existing table"))?;
    let mut rows = vec![("table_type".to_string(), table.def.type_name().to_string())];
    if table.is_rt() {
        rows.push(("indexed_documents".into(), table.data.len().to_string()));
    }
    let empty = r#"{"queries":0, "avg":"-", "min":"-", "max":"-", "pct95":"-", "pct99":"-"}"#;
    for what in ["query_time", "found_rows"] {
        for span in ["1min", "5min", "15min", "total"] {
            rows.push((format!("{what}_{span}"), empty.to_string()));
        }
    }
    for k in [
        "command_search",
        "command_excerpt",
        "command_update",
        "command_keywords",
        "command_status",
        "command_delete",
        "command_insert",
        "command_replace",
        "command_commit",
        "command_suggest",
        "command_callpq",
        "command_getfield",
        "command_shard_write",
        "command_optimize",
    ] {
        rows.push((
            k.to_string(),
            if k == "command_status" { "1" } else { "0" }.to_string(),
        ));
    }
    for prefix in ["insert_replace", "search", "update"] {
        for stat in ["avg", "min", "max", "pct95", "pct99"] {
            rows.push((format!("{prefix}_stats_ms_{stat}"), "N/A N/A N/A".into()));
        }
    }
    Ok(ResultSet::pairs("Variable_name", "Value", rows))
}

pub fn show_table_settings(catalog: &Catalog, name: &str) -> ExecResult<ResultSet> {
    let options = match catalog.get(name).map(|t| &t.def) {
        Some(TableDef::Rt { options, .. }) | Some(TableDef::Shard { options, .. }) => options,
        _ => {
            return Err(ExecError::new(
                "SHOW TABLE SETTINGS requires an existing table",
            ))
        }
    };
    let text = options
        .iter()
        .map(|(k, v)| format!("{k} = {v}"))
        .collect::<Vec<_>>()
        .join("\n");
    Ok(ResultSet::pairs(
        "Variable_name",
        "Value",
        [("settings".to_string(), text)],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns() {
        for (p, t, want) in [
            ("cluster_%_indexes", "cluster_c_indexes", true),
            ("cluster_%", "cluster_c_status", true),
            ("ty%", "types", true),
            ("ty%", "rowwise", false),
            ("uptime", "UPTIME", true),
            ("a_c", "abc", true),
            ("a_c", "ac", false),
        ] {
            assert_eq!(like_matches(p, t), want, "{p} {t}");
        }
    }
}
