//! The statements of the queue, typed. Steps carry a [`Ddl`] in memory; it
//! becomes text only where it is stored (`system.sharding_queue`), byte for
//! byte as PHP Buddy writes it (spec §8.3–§8.5, §9.5, §11), and is read back
//! once, by [`Ddl::parse`], when the row is loaded. Identifiers come from
//! validated newtypes; node ids and paths are quoted through `sqltext`.

use std::fmt::Write as _;

use super::{unquote_literal, TableDdl};
use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::ShardTable;
use crate::sqltext::quote_literal;

/// One statement a queue step sends to its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ddl {
    /// `CREATE TABLE IF NOT EXISTS <shard> <definition>`: a physical shard.
    CreateShard {
        shard: ShardTable,
        /// `(<columns>) <options>`, verbatim (the spaces stay when a part is
        /// empty).
        definition: String,
    },
    /// `DROP TABLE IF EXISTS <shard>`.
    DropShard { shard: ShardTable },
    /// ``CREATE TABLE `<t>` <definition>``: the public `type='shard'` table.
    CreateWrapper {
        table: TableName,
        /// Columns, `type='shard'`, the `local=`/`agent=` clauses and the
        /// options, verbatim.
        definition: String,
    },
    /// `DROP TABLE IF EXISTS <t> OPTION force=1`: a wrapper over `system.*`
    /// tables can only be dropped with `force=1` (searchd answers `can not
    /// drop table '<t>' because it contains system table` otherwise), so this
    /// is also the wrapper's rollback.
    DropWrapper { table: TableName },
    /// ``DROP TABLE IF EXISTS <t> OPTION force=1; CREATE TABLE `<t>` <definition>``:
    /// replaces a wrapper. searchd cannot replace a `type='shard'` table in
    /// place (no `CREATE OR REPLACE`, every `ALTER` form is refused: golden
    /// `rebalance.127`–`131`), so the two statements go in one request,
    /// which keeps the moment without the table as short as the daemon
    /// allows.
    SwapWrapper {
        table: TableName,
        definition: String,
    },
    /// `CREATE CLUSTER [IF NOT EXISTS] <c> '<c>' as path`. `IF NOT EXISTS`
    /// is PHP Buddy's form, which the daemon does not parse: the executor
    /// sends the plain statement and accepts "already exists".
    CreateCluster {
        cluster: ClusterName,
        if_not_exists: bool,
    },
    /// `JOIN CLUSTER <c> at '<node>' '<c>' as path`.
    JoinCluster { cluster: ClusterName, at: NodeId },
    /// The temporary-cluster join of a single-copy move: upper-case `AT` and
    /// a trailing space, as PHP Buddy writes it.
    JoinTempCluster { cluster: ClusterName, at: NodeId },
    /// `ALTER CLUSTER <c> ADD <shard>,<shard>…`.
    AlterClusterAdd {
        cluster: ClusterName,
        shards: Vec<ShardTable>,
    },
    /// `ALTER CLUSTER <c> DROP <shard>,<shard>…`.
    AlterClusterDrop {
        cluster: ClusterName,
        shards: Vec<ShardTable>,
    },
    /// `DELETE CLUSTER <c>`.
    DeleteCluster { cluster: ClusterName },
    /// `SET CLUSTER <c> GLOBAL 'pc.bootstrap' = 1`: makes the reachable
    /// members of a replica set that lost its quorum a primary component.
    Bootstrap { cluster: ClusterName },
    /// A statement of another form (a row another tool wrote): sent as it is.
    Other(String),
}

impl Ddl {
    /// The statement text, as stored in the queue.
    pub fn render(&self) -> String {
        let path = |c: &ClusterName| format!("{} as path", quote_literal(c.as_str()));
        match self {
            Ddl::CreateShard { shard, definition } => {
                format!("CREATE TABLE IF NOT EXISTS {shard} {definition}")
            }
            Ddl::DropShard { shard } => format!("DROP TABLE IF EXISTS {shard}"),
            Ddl::CreateWrapper { table, definition } => {
                format!("CREATE TABLE `{table}` {definition}")
            }
            Ddl::DropWrapper { table } => format!("DROP TABLE IF EXISTS {table} OPTION force=1"),
            Ddl::SwapWrapper { table, definition } => format!(
                "DROP TABLE IF EXISTS {table} OPTION force=1; CREATE TABLE `{table}` {definition}"
            ),
            Ddl::CreateCluster {
                cluster,
                if_not_exists,
            } => {
                let ine = if *if_not_exists { "IF NOT EXISTS " } else { "" };
                format!("CREATE CLUSTER {ine}{cluster} {}", path(cluster))
            }
            Ddl::JoinCluster { cluster, at } => format!(
                "JOIN CLUSTER {cluster} at {} {}",
                quote_literal(at.as_str()),
                path(cluster)
            ),
            Ddl::JoinTempCluster { cluster, at } => format!(
                "JOIN CLUSTER {cluster} AT {} {} ",
                quote_literal(at.as_str()),
                path(cluster)
            ),
            Ddl::AlterClusterAdd { cluster, shards } => {
                format!("ALTER CLUSTER {cluster} ADD {}", list(shards))
            }
            Ddl::AlterClusterDrop { cluster, shards } => {
                format!("ALTER CLUSTER {cluster} DROP {}", list(shards))
            }
            Ddl::DeleteCluster { cluster } => format!("DELETE CLUSTER {cluster}"),
            Ddl::Bootstrap { cluster } => {
                format!("SET CLUSTER {cluster} GLOBAL 'pc.bootstrap' = 1")
            }
            Ddl::Other(text) => text.clone(),
        }
    }

    /// Reads back what [`Ddl::render`] wrote; any other text is
    /// [`Ddl::Other`].
    pub fn parse(text: &str) -> Ddl {
        parse_known(text).unwrap_or_else(|| Ddl::Other(text.to_string()))
    }

    /// The cluster directory `'<name>' as path` needs under `data_dir`.
    pub fn cluster_path(&self) -> Option<&ClusterName> {
        match self {
            Ddl::CreateCluster { cluster, .. }
            | Ddl::JoinCluster { cluster, .. }
            | Ddl::JoinTempCluster { cluster, .. } => Some(cluster),
            _ => None,
        }
    }
}

fn list(shards: &[ShardTable]) -> String {
    let mut out = String::new();
    for (i, shard) in shards.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{shard}");
    }
    out
}

fn parse_known(text: &str) -> Option<Ddl> {
    if let Some(rest) = text.strip_prefix("CREATE TABLE IF NOT EXISTS ") {
        let (shard, definition) = rest.split_once(' ')?;
        return Some(Ddl::CreateShard {
            shard: ShardTable::parse(shard)?,
            definition: definition.to_string(),
        });
    }
    if let Some(rest) = text.strip_prefix("CREATE TABLE `") {
        let (table, definition) = rest.split_once("` ")?;
        if !definition.contains("type='shard'") {
            return None;
        }
        return Some(Ddl::CreateWrapper {
            table: table_exactly(table)?,
            definition: definition.to_string(),
        });
    }
    if let Some(rest) = text.strip_prefix("DROP TABLE IF EXISTS ") {
        if let Some((table, create)) = rest.split_once(" OPTION force=1; ") {
            let Ddl::CreateWrapper {
                table: created,
                definition,
            } = parse_known(create)?
            else {
                return None;
            };
            return (created.as_str() == table).then_some(Ddl::SwapWrapper {
                table: created,
                definition,
            });
        }
        if let Some(table) = rest.strip_suffix(" OPTION force=1") {
            return Some(Ddl::DropWrapper {
                table: table_exactly(table)?,
            });
        }
        return Some(Ddl::DropShard {
            shard: ShardTable::parse(rest)?,
        });
    }
    if let Some(rest) = text.strip_prefix("CREATE CLUSTER ") {
        let (rest, if_not_exists) = match rest.strip_prefix("IF NOT EXISTS ") {
            Some(r) => (r, true),
            None => (rest, false),
        };
        let (cluster, path) = rest.split_once(' ')?;
        let cluster = cluster_exactly(cluster)?;
        return (path == as_path(&cluster)).then_some(Ddl::CreateCluster {
            cluster,
            if_not_exists,
        });
    }
    if let Some(rest) = text.strip_prefix("JOIN CLUSTER ") {
        let (cluster, rest) = rest.split_once(' ')?;
        let cluster = cluster_exactly(cluster)?;
        let (temp, rest) = match (rest.strip_prefix("at "), rest.strip_prefix("AT ")) {
            (Some(r), _) => (false, r),
            (None, Some(r)) => (true, r.strip_suffix(' ')?),
            (None, None) => return None,
        };
        let node_end = closing_quote(rest)?;
        let at = NodeId::new(unquote_literal(&rest[..=node_end])?);
        if rest[node_end + 1..] != format!(" {}", as_path(&cluster)) {
            return None;
        }
        return Some(if temp {
            Ddl::JoinTempCluster { cluster, at }
        } else {
            Ddl::JoinCluster { cluster, at }
        });
    }
    if let Some(rest) = text.strip_prefix("ALTER CLUSTER ") {
        let (cluster, rest) = rest.split_once(' ')?;
        let cluster = cluster_exactly(cluster)?;
        let (add, tables) = match (rest.strip_prefix("ADD "), rest.strip_prefix("DROP ")) {
            (Some(t), _) => (true, t),
            (None, Some(t)) => (false, t),
            (None, None) => return None,
        };
        let shards = tables
            .split(',')
            .map(ShardTable::parse)
            .collect::<Option<Vec<_>>>()?;
        return Some(if add {
            Ddl::AlterClusterAdd { cluster, shards }
        } else {
            Ddl::AlterClusterDrop { cluster, shards }
        });
    }
    if let Some(cluster) = text.strip_prefix("DELETE CLUSTER ") {
        return Some(Ddl::DeleteCluster {
            cluster: cluster_exactly(cluster)?,
        });
    }
    let cluster = text
        .strip_prefix("SET CLUSTER ")?
        .strip_suffix(" GLOBAL 'pc.bootstrap' = 1")?;
    Some(Ddl::Bootstrap {
        cluster: cluster_exactly(cluster)?,
    })
}

fn as_path(cluster: &ClusterName) -> String {
    format!("{} as path", quote_literal(cluster.as_str()))
}

/// The index of the quote that closes the literal `text` starts with.
fn closing_quote(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'\'') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\'' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

fn table_exactly(raw: &str) -> Option<TableName> {
    TableName::parse(raw).ok().filter(|t| t.as_str() == raw)
}

fn cluster_exactly(raw: &str) -> Option<ClusterName> {
    ClusterName::parse(raw).ok()
}

/// `(<columns>)`, or nothing for a table without a column list.
pub(super) fn structure(ddl: &TableDdl) -> String {
    match ddl.columns.as_deref() {
        Some(columns) if !columns.is_empty() => format!("({columns})"),
        _ => String::new(),
    }
}

pub(super) fn create_shard(ddl: &TableDdl, shard: u32) -> Ddl {
    Ddl::CreateShard {
        shard: ShardTable::new(&ddl.table, shard),
        definition: format!("{} {}", structure(ddl), ddl.extra),
    }
}

pub(super) fn drop_shard(table: &TableName, shard: u32) -> Ddl {
    Ddl::DropShard {
        shard: ShardTable::new(table, shard),
    }
}

pub(super) fn drop_wrapper(table: &TableName) -> Ddl {
    Ddl::DropWrapper {
        table: table.clone(),
    }
}

pub(super) fn create_cluster_if_not_exists(cluster: &ClusterName) -> Ddl {
    Ddl::CreateCluster {
        cluster: cluster.clone(),
        if_not_exists: true,
    }
}

pub(super) fn create_cluster(cluster: &ClusterName) -> Ddl {
    Ddl::CreateCluster {
        cluster: cluster.clone(),
        if_not_exists: false,
    }
}

pub(super) fn join_cluster(cluster: &ClusterName, at: &NodeId) -> Ddl {
    Ddl::JoinCluster {
        cluster: cluster.clone(),
        at: at.clone(),
    }
}

pub(super) fn join_temp_cluster(cluster: &ClusterName, at: &NodeId) -> Ddl {
    Ddl::JoinTempCluster {
        cluster: cluster.clone(),
        at: at.clone(),
    }
}

pub(super) fn alter_cluster_add(cluster: &ClusterName, shards: &[ShardTable]) -> Ddl {
    Ddl::AlterClusterAdd {
        cluster: cluster.clone(),
        shards: shards.to_vec(),
    }
}

pub(super) fn alter_cluster_drop(cluster: &ClusterName, shards: &[ShardTable]) -> Ddl {
    Ddl::AlterClusterDrop {
        cluster: cluster.clone(),
        shards: shards.to_vec(),
    }
}

pub(super) fn delete_cluster(cluster: &ClusterName) -> Ddl {
    Ddl::DeleteCluster {
        cluster: cluster.clone(),
    }
}

pub(super) fn bootstrap_cluster(cluster: &ClusterName) -> Ddl {
    Ddl::Bootstrap {
        cluster: cluster.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(name: &str) -> TableName {
        TableName::parse(name).unwrap()
    }

    fn c(name: &str) -> ClusterName {
        ClusterName::parse(name).unwrap()
    }

    fn shard(name: &str, n: u32) -> ShardTable {
        ShardTable::new(&t(name), n)
    }

    /// Every form, with the exact text PHP Buddy writes for it.
    fn forms() -> Vec<(Ddl, &'static str)> {
        vec![
            (
                Ddl::CreateShard {
                    shard: shard("t", 0),
                    definition: "(id bigint, title text) min_infix_len='2'".into(),
                },
                "CREATE TABLE IF NOT EXISTS system.t_s0 (id bigint, title text) min_infix_len='2'",
            ),
            (
                Ddl::CreateShard {
                    shard: shard("t", 3),
                    definition: " ".into(),
                },
                "CREATE TABLE IF NOT EXISTS system.t_s3  ",
            ),
            (
                Ddl::DropShard {
                    shard: shard("a_s1", 12),
                },
                "DROP TABLE IF EXISTS system.a_s1_s12",
            ),
            (
                Ddl::CreateWrapper {
                    table: t("t"),
                    definition: "(id bigint)\n\t\t\ttype='shard' local='system.t_s0'  ".into(),
                },
                "CREATE TABLE `t` (id bigint)\n\t\t\ttype='shard' local='system.t_s0'  ",
            ),
            (
                Ddl::DropWrapper { table: t("t") },
                "DROP TABLE IF EXISTS t OPTION force=1",
            ),
            (
                Ddl::CreateCluster {
                    cluster: c("ab12"),
                    if_not_exists: true,
                },
                "CREATE CLUSTER IF NOT EXISTS ab12 'ab12' as path",
            ),
            (
                Ddl::CreateCluster {
                    cluster: c("temp_move_1_abc"),
                    if_not_exists: false,
                },
                "CREATE CLUSTER temp_move_1_abc 'temp_move_1_abc' as path",
            ),
            (
                Ddl::JoinCluster {
                    cluster: c("h"),
                    at: NodeId::new("10.0.0.1:9312"),
                },
                "JOIN CLUSTER h at '10.0.0.1:9312' 'h' as path",
            ),
            (
                Ddl::JoinTempCluster {
                    cluster: c("h"),
                    at: NodeId::new("odd'host\\:1"),
                },
                "JOIN CLUSTER h AT 'odd\\'host\\\\:1' 'h' as path ",
            ),
            (
                Ddl::AlterClusterAdd {
                    cluster: c("h"),
                    shards: vec![shard("t", 1), shard("t", 3)],
                },
                "ALTER CLUSTER h ADD system.t_s1,system.t_s3",
            ),
            (
                Ddl::AlterClusterDrop {
                    cluster: c("h"),
                    shards: vec![shard("t", 1)],
                },
                "ALTER CLUSTER h DROP system.t_s1",
            ),
            (Ddl::DeleteCluster { cluster: c("h") }, "DELETE CLUSTER h"),
            (
                Ddl::Bootstrap { cluster: c("h") },
                "SET CLUSTER h GLOBAL 'pc.bootstrap' = 1",
            ),
        ]
    }

    #[test]
    fn every_form_renders_as_buddy_writes_it_and_parses_back() {
        for (ddl, text) in forms() {
            assert_eq!(ddl.render(), text);
            assert_eq!(Ddl::parse(text), ddl, "{text}");
        }
    }

    #[test]
    fn other_texts_stay_as_they_are() {
        for text in [
            "",
            "SELECT 1",
            "CREATE TABLE IF NOT EXISTS t (id bigint)",
            "CREATE TABLE `t` (id bigint)",
            "DROP TABLE IF EXISTS system.sharding_state",
            "CREATE CLUSTER h 'other' as path",
            "JOIN CLUSTER h at '10.0.0.1:9312' 'x' as path",
            "JOIN CLUSTER h AT '10.0.0.1:9312' 'h' as path",
            "ALTER CLUSTER h ADD t",
            "ALTER CLUSTER h UPDATE nodes",
            "DELETE CLUSTER h;",
            "DROP TABLE IF EXISTS t OPTION force=1; CREATE TABLE `u` (id bigint) type='shard'",
            "SET CLUSTER h GLOBAL 'pc.bootstrap' = 0",
        ] {
            assert_eq!(Ddl::parse(text), Ddl::Other(text.to_string()), "{text}");
            assert_eq!(Ddl::parse(text).render(), text);
        }
    }
}
