//! The extended SQL shardbuddy claims: grammar, typed AST, validation.
//! (Interface placeholder; the parser lands separately.)

use crate::ids::{ClusterName, TableName};

pub fn normalize_payload(body: &str) -> String {
    body.trim_matches(|c: char| c.is_whitespace() || c == ';')
        .to_string()
}

pub fn claim(_payload: &str, _daemon_error: &str) -> Option<Result<Statement, SqlError>> {
    None
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SqlError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QualifiedName {
    pub cluster: Option<ClusterName>,
    pub table: TableName,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    Graceful,
    Immediate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableOption {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSharded {
    pub if_not_exists: bool,
    pub cluster: Option<ClusterName>,
    pub table: TableName,
    pub columns: Option<String>,
    pub options: Vec<TableOption>,
    pub shards: u32,
    pub rf: u32,
    pub timeout: Option<u32>,
}

impl CreateSharded {
    pub fn extra(&self) -> String {
        String::new()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropSharded {
    pub if_exists: bool,
    pub cluster: Option<ClusterName>,
    pub table: TableName,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    CreateSharded(CreateSharded),
    DropSharded(DropSharded),
    ShowShardingStatus {
        target: Option<QualifiedName>,
    },
    ShowShardingMaster,
    Truncate {
        table: TableName,
    },
    FlushRamchunk {
        table: TableName,
    },
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
}
