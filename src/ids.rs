//! Newtypes for the names shardbuddy passes around: node ids, table and
//! cluster names. A value of these types has been validated once, so code that
//! builds SQL from them never needs to re-check it.

use std::fmt;

/// Longest table or cluster name shardbuddy accepts.
pub const MAX_IDENT_LEN: usize = 128;

/// Why a table or cluster name was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("name is empty")]
    Empty,
    #[error("name '{0}' is longer than {MAX_IDENT_LEN} characters")]
    TooLong(String),
    #[error("name '{0}' must start with a letter or '_'")]
    BadStart(String),
    #[error("name '{0}' may contain only letters, digits and '_'")]
    BadChar(String),
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
    if !raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
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

    #[test]
    fn table_names_are_lower_cased_and_validated() {
        assert_eq!(TableName::parse("Tbl2").unwrap().as_str(), "tbl2");
        assert_eq!(TableName::parse(""), Err(IdentError::Empty));
        assert!(matches!(
            TableName::parse("1t"),
            Err(IdentError::BadStart(_))
        ));
        assert!(matches!(
            TableName::parse("t;drop"),
            Err(IdentError::BadChar(_))
        ));
        assert!(matches!(
            TableName::parse("t'"),
            Err(IdentError::BadChar(_))
        ));
        assert!(TableName::parse(&"a".repeat(MAX_IDENT_LEN)).is_ok());
        assert!(matches!(
            TableName::parse(&"a".repeat(MAX_IDENT_LEN + 1)),
            Err(IdentError::TooLong(_))
        ));
    }

    #[test]
    fn cluster_names_keep_their_case() {
        assert_eq!(ClusterName::parse("Repl").unwrap().as_str(), "Repl");
    }
}
