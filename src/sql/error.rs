//! What can be wrong with a statement, with the exact text the user sees.
//!
//! The messages of the `CREATE TABLE … shards=… rf=…` checks are Buddy's,
//! word for word (sharding-behaviour §1.6), because users and Manticore's own
//! tests match on them. Syntax errors, which Buddy never reports, follow one
//! format: `syntax error at position <column>: expected <what>, got <token>`.

use std::fmt;

use crate::ids::IdentError;

/// A statement shardbuddy will not run. `Display` is the user-facing message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}")]
pub struct SqlError {
    kind: SqlErrorKind,
}

impl SqlError {
    pub fn kind(&self) -> &SqlErrorKind {
        &self.kind
    }

    /// True when the statement is not one shardbuddy handles at all (only
    /// [`crate::sql::parse`] reports this; `claim` answers `None` instead).
    pub fn is_not_claimed(&self) -> bool {
        self.kind == SqlErrorKind::NotClaimed
    }
}

impl From<SqlErrorKind> for SqlError {
    fn from(kind: SqlErrorKind) -> Self {
        Self { kind }
    }
}

/// The sharding options of `CREATE TABLE` that Buddy validates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShardingParam {
    Shards,
    Rf,
    Timeout,
}

impl ShardingParam {
    /// The option's name as users write it (matched case-insensitively).
    pub fn name(self) -> &'static str {
        match self {
            Self::Shards => "shards",
            Self::Rf => "rf",
            Self::Timeout => "timeout",
        }
    }

    pub(crate) fn from_option_name(name: &str) -> Option<Self> {
        [Self::Shards, Self::Rf, Self::Timeout]
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for ShardingParam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which name was invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameRole {
    Table,
    Cluster,
}

impl fmt::Display for NameRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Table => "table",
            Self::Cluster => "cluster",
        })
    }
}

/// What the parser found where it stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A token, as written (abbreviated when very long).
    Token(String),
    EndOfStatement,
}

impl fmt::Display for Found {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(text) => write!(f, "'{text}'"),
            Self::EndOfStatement => f.write_str("end of statement"),
        }
    }
}

/// The alternatives the parser would have accepted, in the order it tried
/// them; shown as `A, B or C`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected(pub Vec<&'static str>);

impl fmt::Display for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = &self.0;
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(if i + 1 == items.len() { " or " } else { ", " })?;
            }
            f.write_str(item)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlErrorKind {
    /// Not a statement shardbuddy handles.
    #[error("not claimed")]
    NotClaimed,
    /// `position` is the 1-based character column in the statement after
    /// comment removal and trimming.
    #[error("syntax error at position {position}: expected {expected}, got {found}")]
    Syntax {
        position: usize,
        expected: Expected,
        found: Found,
    },
    #[error("syntax error at position {position}: unterminated {what}")]
    Unterminated { position: usize, what: &'static str },
    #[error("{role} {source}")]
    InvalidName { role: NameRole, source: IdentError },
    #[error("Duplicate parameter '{0}' found")]
    DuplicateParameter(ShardingParam),
    #[error("Parameter '{0}' requires to have a value")]
    EmptyParameter(ShardingParam),
    #[error("Parameter '{0}' requires to have a numeric value")]
    NonNumericParameter(ShardingParam),
    #[error("Shard count cannot be greater than 3000")]
    TooManyShards,
    #[error("Sharded table requires `rf=n`")]
    RfRequired,
    /// Buddy fails with an internal error here; this message is shardbuddy's
    /// (quoted, unlike Buddy's `rf=n`: unquoted values are syntax errors).
    #[error("Sharded table requires `shards='n'`, for example shards='4' rf='2'")]
    ShardsRequired,
    #[error("You cannot set rf greater than 1 when creating single node sharded table.")]
    RfOnSingleNode,
    #[error("You cannot set timeout less than 1 second")]
    TimeoutTooSmall,
    #[error("Invalid shards or rf options are set")]
    InvalidShardsOrRf,
    #[error("shard number {0} is out of range: a table has at most 3000 shards, numbered from 0")]
    ShardOutOfRange(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_lists_read_as_prose() {
        let cases: &[(&[&'static str], &str)] = &[
            (&["TABLE"], "TABLE"),
            (&["TABLE", "end of statement"], "TABLE or end of statement"),
            (
                &["TABLE", "a table name", "end of statement"],
                "TABLE, a table name or end of statement",
            ),
        ];
        for (items, want) in cases {
            assert_eq!(Expected(items.to_vec()).to_string(), *want);
        }
    }

    #[test]
    fn syntax_errors_name_position_expectation_and_token() {
        let err = SqlError::from(SqlErrorKind::Syntax {
            position: 19,
            expected: Expected(vec!["TABLE", "a table name", "end of statement"]),
            found: Found::Token("TABL".into()),
        });
        assert_eq!(
            err.to_string(),
            "syntax error at position 19: expected TABLE, a table name or end of statement, got 'TABL'"
        );
    }

    #[test]
    fn invalid_names_say_which_name() {
        let err = SqlError::from(SqlErrorKind::InvalidName {
            role: NameRole::Cluster,
            source: IdentError::BadStart("1c".into()),
        });
        assert_eq!(
            err.to_string(),
            "cluster name '1c' must start with a letter or '_'"
        );
    }
}
