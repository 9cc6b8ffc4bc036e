//! The statements shardbuddy claims, as typed values.
//!
//! `Display` prints each statement in one canonical form that parses back to
//! the same value: keywords in upper case, one space between tokens, table
//! options re-quoted, the `TABLE` keyword and the `GRACEFUL` mode always
//! written out. The JSON form (`serde`) is what `shardbuddy parse` prints.

use std::fmt;

use serde::Serialize;

use crate::ids::{ClusterName, TableName};
use crate::sqltext::quote_literal;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "statement", rename_all = "snake_case")]
pub enum Statement {
    CreateSharded(CreateSharded),
    DropSharded(DropSharded),
    /// Both the table and its cluster prefix are optional.
    ShowShardingStatus {
        target: Option<QualifiedName>,
    },
    ShowShardingMaster,
    /// `SHOW SHARDING HEALTH`: the cluster's sharding health as SQL.
    ShowShardingHealth,
    Truncate {
        table: TableName,
    },
    FlushRamchunk {
        table: TableName,
    },
    /// `OPTION k=v` pairs: keys lower-cased, values exactly as written (an
    /// integer, a word or a quoted string with its quotes).
    Optimize {
        table: TableName,
        options: Vec<(String, String)>,
    },
    Rebalance {
        target: QualifiedName,
    },
    ExplainRebalance {
        target: Option<QualifiedName>,
    },
    /// `EXPLAIN SHARD [<cluster>:]<table> <shard>`: why the shard's copies
    /// are on the nodes they are on, and not on the others.
    ExplainShard {
        target: QualifiedName,
        shard: u32,
    },
    StopRebalance {
        target: QualifiedName,
        mode: StopMode,
    },
    PauseRebalance {
        target: QualifiedName,
    },
    ResumeRebalance {
        target: QualifiedName,
    },
    ShowRebalanceStatus {
        target: Option<QualifiedName>,
    },
    /// `ALTER CLUSTER <c> DRAIN NODE '<id>'` (`drain`) or `… UNDRAIN NODE
    /// '<id>'`: the node gets no new shard copies and its copies move off.
    DrainNode {
        cluster: ClusterName,
        node: String,
        drain: bool,
    },
}

/// `[<cluster>:]<table>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QualifiedName {
    pub cluster: Option<ClusterName>,
    pub table: TableName,
}

/// How `STOP REBALANCE` treats the operation in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopMode {
    /// Finish the step in flight, then stop.
    #[default]
    Graceful,
    /// Roll back the step in flight.
    Immediate,
}

/// `CREATE TABLE … shards='N' rf='M' [timeout='S']`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreateSharded {
    pub if_not_exists: bool,
    pub cluster: Option<ClusterName>,
    pub table: TableName,
    /// The text inside the column-list parentheses, verbatim.
    pub columns: Option<String>,
    /// Every other table option, in the order written.
    pub options: Vec<TableOption>,
    pub shards: u32,
    pub rf: u32,
    /// Seconds; `None` when not given (the handler applies the default).
    pub timeout: Option<u32>,
}

/// A table option other than the sharding ones. The name is lower-cased (as
/// Manticore does), the value is unescaped; it is rendered back as
/// `name='value'`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableOption {
    pub name: String,
    pub value: String,
}

impl fmt::Display for TableOption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, quote_literal(&self.value))
    }
}

impl CreateSharded {
    /// The other table options as they go into the shard DDL, separated by
    /// one space (empty when there are none).
    pub fn extra(&self) -> String {
        self.options
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// `DROP TABLE [IF EXISTS] [<cluster>:]<table>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DropSharded {
    pub if_exists: bool,
    pub cluster: Option<ClusterName>,
    pub table: TableName,
}

impl fmt::Display for QualifiedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_qualified(f, self.cluster.as_ref(), &self.table)
    }
}

fn write_qualified(
    f: &mut fmt::Formatter<'_>,
    cluster: Option<&ClusterName>,
    table: &TableName,
) -> fmt::Result {
    match cluster {
        Some(cluster) => write!(f, "{cluster}:{table}"),
        None => write!(f, "{table}"),
    }
}

impl fmt::Display for StopMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Graceful => "GRACEFUL",
            Self::Immediate => "IMMEDIATE",
        })
    }
}

impl fmt::Display for CreateSharded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CREATE TABLE ")?;
        if self.if_not_exists {
            f.write_str("IF NOT EXISTS ")?;
        }
        write_qualified(f, self.cluster.as_ref(), &self.table)?;
        if let Some(columns) = &self.columns {
            write!(f, " ({columns})")?;
        }
        for option in &self.options {
            write!(f, " {option}")?;
        }
        write!(f, " shards='{}' rf='{}'", self.shards, self.rf)?;
        if let Some(timeout) = self.timeout {
            write!(f, " timeout='{timeout}'")?;
        }
        Ok(())
    }
}

impl fmt::Display for DropSharded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DROP TABLE ")?;
        if self.if_exists {
            f.write_str("IF EXISTS ")?;
        }
        write_qualified(f, self.cluster.as_ref(), &self.table)
    }
}

/// Writes ` <target>` after `prefix` when there is a target.
fn write_optional_target(
    f: &mut fmt::Formatter<'_>,
    prefix: &str,
    target: Option<&QualifiedName>,
) -> fmt::Result {
    f.write_str(prefix)?;
    match target {
        Some(target) => write!(f, " {target}"),
        None => Ok(()),
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateSharded(create) => create.fmt(f),
            Self::DropSharded(drop) => drop.fmt(f),
            Self::ShowShardingStatus { target } => {
                write_optional_target(f, "SHOW SHARDING STATUS", target.as_ref())
            }
            Self::ShowShardingMaster => f.write_str("SHOW SHARDING MASTER"),
            Self::ShowShardingHealth => f.write_str("SHOW SHARDING HEALTH"),
            Self::Truncate { table } => write!(f, "TRUNCATE TABLE {table}"),
            Self::FlushRamchunk { table } => write!(f, "FLUSH RAMCHUNK {table}"),
            Self::Optimize { table, options } => {
                write!(f, "OPTIMIZE TABLE {table}")?;
                for (i, (key, value)) in options.iter().enumerate() {
                    f.write_str(if i == 0 { " OPTION " } else { ", " })?;
                    write!(f, "{key}={value}")?;
                }
                Ok(())
            }
            Self::Rebalance { target } => write!(f, "REBALANCE TABLE {target}"),
            Self::ExplainRebalance { target } => match target {
                Some(target) => write!(f, "EXPLAIN REBALANCE TABLE {target}"),
                None => f.write_str("EXPLAIN REBALANCE"),
            },
            Self::ExplainShard { target, shard } => write!(f, "EXPLAIN SHARD {target} {shard}"),
            Self::StopRebalance { target, mode } => {
                write!(f, "STOP REBALANCE TABLE {target} {mode}")
            }
            Self::PauseRebalance { target } => write!(f, "PAUSE REBALANCE TABLE {target}"),
            Self::ResumeRebalance { target } => write!(f, "RESUME REBALANCE TABLE {target}"),
            Self::ShowRebalanceStatus { target } => {
                write_optional_target(f, "SHOW REBALANCE STATUS", target.as_ref())
            }
            Self::DrainNode {
                cluster,
                node,
                drain,
            } => write!(
                f,
                "ALTER CLUSTER {cluster} {} NODE {}",
                if *drain { "DRAIN" } else { "UNDRAIN" },
                crate::sqltext::quote_literal(node)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qn(cluster: Option<&str>, table: &str) -> QualifiedName {
        QualifiedName {
            cluster: cluster.map(|c| ClusterName::parse(c).unwrap()),
            table: TableName::parse(table).unwrap(),
        }
    }

    #[test]
    fn create_renders_options_before_sharding_ones() {
        let create = CreateSharded {
            if_not_exists: true,
            cluster: Some(ClusterName::parse("c").unwrap()),
            table: TableName::parse("t").unwrap(),
            columns: Some("id bigint, title text".into()),
            options: vec![
                TableOption {
                    name: "min_infix_len".into(),
                    value: "3".into(),
                },
                TableOption {
                    name: "charset_table".into(),
                    value: "it's \\d".into(),
                },
            ],
            shards: 4,
            rf: 2,
            timeout: Some(60),
        };
        assert_eq!(
            create.extra(),
            r"min_infix_len='3' charset_table='it\'s \\d'"
        );
        assert_eq!(
            create.to_string(),
            r"CREATE TABLE IF NOT EXISTS c:t (id bigint, title text) min_infix_len='3' charset_table='it\'s \\d' shards='4' rf='2' timeout='60'"
        );
    }

    #[test]
    fn statements_render_canonically() {
        let cases = [
            (
                Statement::ShowShardingStatus { target: None },
                "SHOW SHARDING STATUS",
            ),
            (
                Statement::ShowShardingStatus {
                    target: Some(qn(Some("c"), "t")),
                },
                "SHOW SHARDING STATUS c:t",
            ),
            (Statement::ShowShardingMaster, "SHOW SHARDING MASTER"),
            (
                Statement::Optimize {
                    table: TableName::parse("t").unwrap(),
                    options: vec![("cutoff".into(), "2".into()), ("sync".into(), "0".into())],
                },
                "OPTIMIZE TABLE t OPTION cutoff=2, sync=0",
            ),
            (
                Statement::ExplainRebalance { target: None },
                "EXPLAIN REBALANCE",
            ),
            (
                Statement::StopRebalance {
                    target: qn(None, "t"),
                    mode: StopMode::Graceful,
                },
                "STOP REBALANCE TABLE t GRACEFUL",
            ),
            (
                Statement::DropSharded(DropSharded {
                    if_exists: true,
                    cluster: None,
                    table: TableName::parse("t").unwrap(),
                }),
                "DROP TABLE IF EXISTS t",
            ),
        ];
        for (statement, want) in cases {
            assert_eq!(statement.to_string(), want);
        }
    }

    #[test]
    fn json_names_the_statement() {
        let json = serde_json::to_string(&Statement::StopRebalance {
            target: qn(Some("c"), "t"),
            mode: StopMode::Immediate,
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"statement":"stop_rebalance","target":{"cluster":"c","table":"t"},"mode":"immediate"}"#
        );
    }
}
