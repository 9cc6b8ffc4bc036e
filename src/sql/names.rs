//! From names as written to validated [`crate::ids`] values.

use super::ast::QualifiedName;
use super::cursor::RawQualifiedName;
use super::error::{NameRole, SqlError, SqlErrorKind};
use super::lexer::Token;
use crate::ids::{ClusterName, IdentError, TableName};

fn invalid(role: NameRole) -> impl FnOnce(IdentError) -> SqlError {
    move |source| SqlErrorKind::InvalidName { role, source }.into()
}

/// A table name: back-ticks removed, validated, lower-cased.
pub(crate) fn table_name(token: &Token<'_>) -> Result<TableName, SqlError> {
    TableName::parse(&token.unquoted()).map_err(invalid(NameRole::Table))
}

/// A cluster name: back-ticks removed, validated, case kept.
pub(crate) fn cluster_name(token: &Token<'_>) -> Result<ClusterName, SqlError> {
    ClusterName::parse(&token.unquoted()).map_err(invalid(NameRole::Cluster))
}

/// Validates both parts, the cluster (written first) first.
pub(crate) fn qualified(raw: &RawQualifiedName<'_>) -> Result<QualifiedName, SqlError> {
    let cluster = raw.cluster.as_ref().map(cluster_name).transpose()?;
    let table = table_name(&raw.table)?;
    Ok(QualifiedName { cluster, table })
}
