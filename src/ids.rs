//! Newtypes for the names shardbuddy passes around: node ids, table and
//! cluster names. A value of these types has been validated once, so code that
//! builds SQL from them never needs to re-check it.
//!
//! # Name rules
//!
//! Manticore's DDL lexer (`src/ddl.l`) reads a table name as
//! `[a-zA-Z_][a-zA-Z_0-9]*` and lower-cases it (`DdlParser_c::GetTableName`);
//! cluster names are identifiers of the same shape and keep their case. A
//! back-ticked name may start with digits in Manticore, but shardbuddy does not
//! accept that form: every physical shard is addressed as
//! `system.<name>_s<N>`, which the daemon reads only for names that start with
//! a letter or `_`.
//!
//! The daemon's grammar sets no length limit. Its table files live at
//! `<data_dir>/<name>/<name>.<ext>` and full paths are bounded by
//! `SPH_MAX_FILENAME_LEN` (512 bytes); shard names add `system.` and
//! `_s<N>`. [`MAX_IDENT_LEN`] keeps every shard path within that bound for
//! data directories of up to about 220 bytes.
//!
//! Because only ASCII letters, digits and `_` pass, no validated name can
//! carry a quote, a space, a comment or a statement separator into the SQL
//! shardbuddy generates.

use std::fmt;

/// Longest table or cluster name shardbuddy accepts, in bytes.
pub const MAX_IDENT_LEN: usize = 128;

/// How many characters of an over-long name an error message repeats.
const ECHO_LEN: usize = 32;

/// Why a table or cluster name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("name is empty")]
    Empty,
    #[error("name '{}' is longer than {MAX_IDENT_LEN} characters", printable(.0, ECHO_LEN))]
    TooLong(String),
    #[error("name '{}' must start with a letter or '_'", printable(.0, MAX_IDENT_LEN))]
    BadStart(String),
    #[error("name '{}' may contain only letters, digits and '_'", printable(.0, MAX_IDENT_LEN))]
    BadChar(String),
}

/// User text as an error message repeats it: at most `max_chars` characters
/// (marked with `…` when cut) and control characters escaped, so that a
/// message is always one readable line.
pub(crate) fn printable(text: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max_chars * 4));
    for (count, c) in text.chars().enumerate() {
        if count == max_chars {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out
}

fn validate(raw: &str) -> Result<(), IdentError> {
    let mut chars = raw.chars();
    let first = chars.next().ok_or(IdentError::Empty)?;
    if raw.len() > MAX_IDENT_LEN {
        return Err(IdentError::TooLong(raw.to_string()));
    }
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Err(IdentError::BadStart(raw.to_string()));
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(IdentError::BadChar(raw.to_string()));
    }
    Ok(())
}

macro_rules! ident_newtype {
    ($(#[$doc:meta])* $name:ident, $lower:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `raw` and wraps it.
            pub fn parse(raw: &str) -> Result<Self, IdentError> {
                validate(raw)?;
                Ok(Self(if $lower { raw.to_ascii_lowercase() } else { raw.to_string() }))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdentError;
            fn try_from(raw: String) -> Result<Self, Self::Error> {
                Self::parse(&raw)
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0
            }
        }
    };
}

ident_newtype!(
    /// A user table name, lower-cased as Manticore does.
    TableName,
    true
);
ident_newtype!(
    /// A replication cluster name (user cluster or internal md5-named cluster).
    /// Manticore keeps the case of cluster names, and so does this type.
    ClusterName,
    false
);

/// A node's identity: the `host:port` of its binary-API listener, exactly as
/// the daemon lists it in `cluster_<c>_nodes_set`. Ordered as plain strings,
/// which is how Buddy sorts nodes.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct NodeId(String);

impl NodeId {
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a name becomes, or a test of why it is refused.
    type Verdict = Result<&'static str, fn(&IdentError) -> bool>;

    #[test]
    fn table_names_are_lower_cased_and_validated() {
        let cases: &[(&str, Verdict)] = &[
            ("Tbl2", Ok("tbl2")),
            ("_x", Ok("_x")),
            ("a1_B2", Ok("a1_b2")),
            ("", Err(|e| *e == IdentError::Empty)),
            ("1t", Err(|e| matches!(e, IdentError::BadStart(_)))),
            ("t;drop", Err(|e| matches!(e, IdentError::BadChar(_)))),
            ("t'", Err(|e| matches!(e, IdentError::BadChar(_)))),
            ("t`x", Err(|e| matches!(e, IdentError::BadChar(_)))),
            ("tëst", Err(|e| matches!(e, IdentError::BadChar(_)))),
            ("ëst", Err(|e| matches!(e, IdentError::BadStart(_)))),
            ("a b", Err(|e| matches!(e, IdentError::BadChar(_)))),
        ];
        for (raw, want) in cases {
            match (TableName::parse(raw), want) {
                (Ok(name), Ok(lower)) => assert_eq!(name.as_str(), *lower, "{raw}"),
                (Err(err), Err(check)) => assert!(check(&err), "{raw}: {err:?}"),
                (got, _) => panic!("{raw}: unexpected {got:?}"),
            }
        }
    }

    #[test]
    fn length_limit_is_inclusive() {
        assert!(TableName::parse(&"a".repeat(MAX_IDENT_LEN)).is_ok());
        assert!(matches!(
            TableName::parse(&"a".repeat(MAX_IDENT_LEN + 1)),
            Err(IdentError::TooLong(_))
        ));
    }

    #[test]
    fn long_names_are_abbreviated_in_messages() {
        let err = TableName::parse(&"x".repeat(500)).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("name '{}…' is longer than 128 characters", "x".repeat(32))
        );
    }

    #[test]
    fn control_characters_are_escaped_in_messages() {
        let err = TableName::parse("a\nb").unwrap_err();
        assert_eq!(
            err.to_string(),
            r"name 'a\nb' may contain only letters, digits and '_'"
        );
    }

    #[test]
    fn an_empty_name_is_refused_in_words() {
        assert_eq!(
            TableName::parse("").unwrap_err().to_string(),
            "name is empty"
        );
        assert_eq!(
            ClusterName::parse("").unwrap_err().to_string(),
            "name is empty"
        );
    }

    #[test]
    fn cluster_names_keep_their_case() {
        assert_eq!(ClusterName::parse("Repl").unwrap().as_str(), "Repl");
    }
}
