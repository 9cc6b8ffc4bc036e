//! The statement texts of the queue, byte for byte as PHP Buddy writes them
//! (spec §8.3–§8.5, §9.5, §11). Identifiers come from validated newtypes;
//! node ids and paths are quoted through `sqltext`.

use super::TableDdl;
use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::shard_table_name;
use crate::sqltext::quote_literal;

/// `(<columns>)`, or nothing for a table without a column list.
pub(super) fn structure(ddl: &TableDdl) -> String {
    match ddl.columns.as_deref() {
        Some(columns) if !columns.is_empty() => format!("({columns})"),
        _ => String::new(),
    }
}

/// `CREATE TABLE IF NOT EXISTS system.<t>_s<N> <(structure)> <extra>`; the
/// spaces stay even when a part is empty.
pub(super) fn create_shard(ddl: &TableDdl, shard: u32) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {} {} {}",
        shard_table_name(&ddl.table, shard),
        structure(ddl),
        ddl.extra
    )
}

pub(super) fn drop_shard(table: &TableName, shard: u32) -> String {
    format!("DROP TABLE IF EXISTS {}", shard_table_name(table, shard))
}

/// A wrapper over `system.*` tables can only be dropped with `force=1`
/// (searchd answers `can not drop table '<t>' because it contains system
/// table` otherwise), so this is also the wrapper's rollback.
pub(super) fn drop_wrapper(table: &TableName) -> String {
    format!("DROP TABLE IF EXISTS {table} OPTION force=1")
}

fn path(cluster: &ClusterName) -> String {
    format!("{} as path", quote_literal(cluster.as_str()))
}

pub(super) fn create_cluster_if_not_exists(cluster: &ClusterName) -> String {
    format!("CREATE CLUSTER IF NOT EXISTS {cluster} {}", path(cluster))
}

pub(super) fn create_cluster(cluster: &ClusterName) -> String {
    format!("CREATE CLUSTER {cluster} {}", path(cluster))
}

pub(super) fn join_cluster(cluster: &ClusterName, at: &NodeId) -> String {
    format!(
        "JOIN CLUSTER {cluster} at {} {}",
        quote_literal(at.as_str()),
        path(cluster)
    )
}

/// The temporary-cluster join of a single-copy move: upper-case `AT` and a
/// trailing space, as PHP Buddy writes it.
pub(super) fn join_temp_cluster(cluster: &ClusterName, at: &NodeId) -> String {
    format!(
        "JOIN CLUSTER {cluster} AT {} {} ",
        quote_literal(at.as_str()),
        path(cluster)
    )
}

pub(super) fn alter_cluster_add(cluster: &ClusterName, tables: &[String]) -> String {
    format!("ALTER CLUSTER {cluster} ADD {}", tables.join(","))
}

pub(super) fn alter_cluster_drop(cluster: &ClusterName, tables: &[String]) -> String {
    format!("ALTER CLUSTER {cluster} DROP {}", tables.join(","))
}

pub(super) fn delete_cluster(cluster: &ClusterName) -> String {
    format!("DELETE CLUSTER {cluster}")
}

pub(super) fn bootstrap_cluster(cluster: &ClusterName) -> String {
    format!("SET CLUSTER {cluster} GLOBAL 'pc.bootstrap' = 1")
}
