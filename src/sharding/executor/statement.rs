//! What a queued statement is, how it is sent, and what its errors mean.
//!
//! The queue stores the DDL in PHP Buddy's forms (spec §8.3–8.5). Some of them
//! are not daemon statements (`CREATE CLUSTER IF NOT EXISTS`), and most must
//! be idempotent because a row whose outcome was unknown (the executor died,
//! the request timed out) is run again. This module says which error means
//! "already done", which means "try again later", and which is final.

use std::sync::LazyLock;

use regex::Regex;

/// The kinds of queued statements the executor treats specially.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// `CREATE CLUSTER [IF NOT EXISTS] <c> …`; `if_not_exists` = an existing
    /// cluster is fine.
    CreateCluster {
        cluster: String,
        if_not_exists: bool,
    },
    JoinCluster {
        cluster: String,
    },
    AlterClusterAdd {
        cluster: String,
    },
    AlterClusterDrop,
    DeleteCluster,
    /// `CREATE TABLE IF NOT EXISTS system.…`: a physical shard.
    CreateShard {
        table: String,
    },
    /// ``CREATE TABLE `<t>` … type='shard' …``: the public wrapper.
    CreateWrapper {
        table: String,
    },
    Other,
}

/// A statement ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    pub kind: Kind,
    /// The text sent to the daemon (may differ from the stored one).
    pub sql: String,
    /// A `'<dir>' as path` clause: the directory must exist under `data_dir`.
    pub path: Option<String>,
}

static CREATE_CLUSTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)^\s*CREATE\s+CLUSTER\s+(IF\s+NOT\s+EXISTS\s+)?(\w+)(.*)$").expect("regex")
});
static JOIN_CLUSTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)^\s*JOIN\s+CLUSTER\s+(\w+)\s").expect("regex"));
static ALTER_CLUSTER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)^\s*ALTER\s+CLUSTER\s+(\w+)\s+(ADD|DROP)\s").expect("regex")
});
static DELETE_CLUSTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?is)^\s*DELETE\s+CLUSTER\s+\w+").expect("regex"));
static CREATE_SHARD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)^\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(system\.\w+)").expect("regex")
});
static CREATE_WRAPPER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?is)^\s*CREATE\s+TABLE\s+`?(\w+)`?\s.*\btype\s*=\s*'shard'").expect("regex")
});
static AS_PATH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)'([^'\\]+)'\s+as\s+path").expect("regex"));

pub fn prepare(stored: &str) -> Prepared {
    let path = AS_PATH.captures(stored).map(|c| c[1].to_string());
    let (kind, sql) = if let Some(c) = CREATE_CLUSTER.captures(stored) {
        let if_not_exists = c.get(1).is_some();
        // `IF NOT EXISTS` is a Buddy-level form the daemon rejects: send the
        // plain statement and accept "already exists".
        let sql = format!("CREATE CLUSTER {}{}", &c[2], &c[3]);
        (
            Kind::CreateCluster {
                cluster: c[2].to_string(),
                if_not_exists,
            },
            sql,
        )
    } else if let Some(c) = JOIN_CLUSTER.captures(stored) {
        (
            Kind::JoinCluster {
                cluster: c[1].to_string(),
            },
            stored.to_string(),
        )
    } else if let Some(c) = ALTER_CLUSTER.captures(stored) {
        let kind = if c[2].eq_ignore_ascii_case("add") {
            Kind::AlterClusterAdd {
                cluster: c[1].to_string(),
            }
        } else {
            Kind::AlterClusterDrop
        };
        (kind, stored.to_string())
    } else if DELETE_CLUSTER.is_match(stored) {
        (Kind::DeleteCluster, stored.to_string())
    } else if let Some(c) = CREATE_SHARD.captures(stored) {
        (
            Kind::CreateShard {
                table: c[1].to_string(),
            },
            stored.to_string(),
        )
    } else if let Some(c) = CREATE_WRAPPER.captures(stored) {
        (
            Kind::CreateWrapper {
                table: c[1].to_string(),
            },
            stored.to_string(),
        )
    } else {
        (Kind::Other, stored.to_string())
    };
    Prepared { kind, sql, path }
}

/// Whether a retry of this statement must know that an earlier attempt may
/// have taken effect (its first attempt checks for a conflicting object,
/// which a retry could otherwise mistake for one).
pub fn needs_attempt_record(stored: &str) -> bool {
    matches!(
        prepare(stored).kind,
        Kind::CreateShard { .. } | Kind::CreateWrapper { .. }
    )
}

/// What a failed attempt means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The effect is already in place: the row is processed.
    AlreadyDone,
    /// Worth another attempt after a back-off.
    Transient,
    /// An existing object may or may not be ours: check before deciding.
    CheckExisting,
    /// Final.
    Permanent,
}

/// Error texts that mean "the cluster is busy or changing", not "wrong".
const TRANSIENT_MARKERS: &[&str] = &[
    "not ready",
    "not primary",
    "non-primary",
    "is syncing",
    "try again",
    "timed out",
    "timeout",
    "connection refused",
    "failed to fetch donor",
    "receiving failure",
];

/// Judges a daemon error for a statement of `kind`.
pub fn judge(kind: &Kind, error: &str) -> Verdict {
    let e = error.to_ascii_lowercase();
    let already = match kind {
        Kind::CreateCluster {
            cluster,
            if_not_exists,
        } => {
            *if_not_exists
                && e.contains(&format!(
                    "cluster '{}' already exists",
                    cluster.to_ascii_lowercase()
                ))
        }
        Kind::JoinCluster { cluster } => e.contains(&format!(
            "cluster '{}' already exists",
            cluster.to_ascii_lowercase()
        )),
        Kind::AlterClusterAdd { cluster } => e.contains(&format!(
            "is already part of cluster '{}'",
            cluster.to_ascii_lowercase()
        )),
        Kind::AlterClusterDrop => e.contains("is not in cluster") || e.contains("unknown cluster"),
        Kind::DeleteCluster => e.contains("unknown cluster"),
        _ => false,
    };
    if already {
        return Verdict::AlreadyDone;
    }
    if matches!(kind, Kind::CreateWrapper { .. }) && e.contains("already exists") {
        return Verdict::CheckExisting;
    }
    if TRANSIENT_MARKERS.iter().any(|m| e.contains(m)) {
        return Verdict::Transient;
    }
    Verdict::Permanent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_cluster_if_not_exists_is_rewritten() {
        let p = prepare("CREATE CLUSTER IF NOT EXISTS ab12 'ab12' as path");
        assert_eq!(p.sql, "CREATE CLUSTER ab12 'ab12' as path");
        assert_eq!(p.path.as_deref(), Some("ab12"));
        assert_eq!(
            p.kind,
            Kind::CreateCluster {
                cluster: "ab12".into(),
                if_not_exists: true
            }
        );
        assert_eq!(
            judge(
                &p.kind,
                "failed to create desc: cluster 'ab12' already exists"
            ),
            Verdict::AlreadyDone
        );
        let plain = prepare("CREATE CLUSTER t1 'temp_move' as path");
        assert_eq!(
            judge(
                &plain.kind,
                "failed to create desc: cluster 't1' already exists"
            ),
            Verdict::Permanent
        );
    }

    #[test]
    fn statements_are_classified() {
        let cases = [
            (
                "JOIN CLUSTER h at '10.0.0.1:9312' 'h' as path",
                Kind::JoinCluster {
                    cluster: "h".into(),
                },
            ),
            (
                "ALTER CLUSTER h ADD system.t_s1,system.t_s3",
                Kind::AlterClusterAdd {
                    cluster: "h".into(),
                },
            ),
            ("ALTER CLUSTER h DROP system.t_s1", Kind::AlterClusterDrop),
            ("DELETE CLUSTER h", Kind::DeleteCluster),
            (
                "CREATE TABLE IF NOT EXISTS system.t_s0 (id bigint) ",
                Kind::CreateShard {
                    table: "system.t_s0".into(),
                },
            ),
            (
                "CREATE TABLE `t` (id bigint)\n\t\t\ttype='shard' local='system.t_s0'",
                Kind::CreateWrapper { table: "t".into() },
            ),
            ("DROP TABLE IF EXISTS t OPTION force=1", Kind::Other),
        ];
        for (sql, kind) in cases {
            assert_eq!(prepare(sql).kind, kind, "{sql}");
        }
    }

    #[test]
    fn errors_are_judged() {
        let join = Kind::JoinCluster {
            cluster: "c".into(),
        };
        assert_eq!(
            judge(&join, "cluster 'c' already exists"),
            Verdict::AlreadyDone
        );
        assert_eq!(
            judge(
                &join,
                "cluster 'c' is not ready, not primary state (synced)"
            ),
            Verdict::Transient
        );
        let add = Kind::AlterClusterAdd {
            cluster: "h".into(),
        };
        assert_eq!(
            judge(&add, "table 'system.t_s0' is already part of cluster 'h'"),
            Verdict::AlreadyDone
        );
        assert_eq!(
            judge(&add, "table 'system.t_s0' is already part of cluster 'x'"),
            Verdict::Permanent
        );
        assert_eq!(
            judge(&Kind::AlterClusterDrop, "table 't' is not in cluster 'h'"),
            Verdict::AlreadyDone
        );
        assert_eq!(
            judge(&Kind::DeleteCluster, "unknown cluster 'h'"),
            Verdict::AlreadyDone
        );
        let wrapper = Kind::CreateWrapper { table: "t".into() };
        assert_eq!(
            judge(
                &wrapper,
                "table 't': CREATE TABLE failed: table 't' already exists"
            ),
            Verdict::CheckExisting
        );
        assert_eq!(judge(&Kind::Other, "P03: syntax error"), Verdict::Permanent);
    }
}
