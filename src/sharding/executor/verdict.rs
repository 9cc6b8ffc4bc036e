//! How a queued statement is sent, and what its errors mean.
//!
//! The queue stores the DDL in PHP Buddy's forms (spec §8.3–8.5). Some of them
//! are not daemon statements (`CREATE CLUSTER IF NOT EXISTS`), and most must
//! be idempotent because a row whose outcome was unknown (the executor died,
//! the request timed out) is run again. This module says which error means
//! "already done", which means "try again later", and which is final.

use crate::placement::Ddl;

/// The text sent to the daemon for `ddl`.
pub fn statement(ddl: &Ddl) -> String {
    match ddl {
        // `IF NOT EXISTS` is a Buddy-level form the daemon rejects: send the
        // plain statement and accept "already exists".
        Ddl::CreateCluster { cluster, .. } => Ddl::CreateCluster {
            cluster: cluster.clone(),
            if_not_exists: false,
        }
        .render(),
        other => other.render(),
    }
}

/// Whether a retry of this statement must know that an earlier attempt may
/// have taken effect (its first attempt checks for a conflicting object,
/// which a retry could otherwise mistake for one).
pub fn needs_attempt_record(ddl: &Ddl) -> bool {
    matches!(ddl, Ddl::CreateShard { .. } | Ddl::CreateWrapper { .. })
}

/// What a failed attempt means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The effect is already in place: the row is processed.
    AlreadyDone,
    /// Worth another attempt after a back-off.
    Transient,
    /// The cluster the statement needs is not ready yet (joining, not
    /// primary): worth waiting for as long as it takes, so the attempts do
    /// not run out.
    Waiting,
    /// An existing object may or may not be ours: check before deciding.
    CheckExisting,
    /// Final.
    Permanent,
}

/// Error texts that mean "the cluster is not ready yet".
const WAITING_MARKERS: &[&str] = &["not ready", "not primary", "non-primary", "is syncing"];

/// Error texts that mean "busy or unreachable for now", not "wrong".
const TRANSIENT_MARKERS: &[&str] = &[
    "try again",
    "timed out",
    "timeout",
    "connection refused",
    "failed to fetch donor",
    "receiving failure",
];

/// Judges a daemon error for `ddl`.
pub fn judge(ddl: &Ddl, error: &str) -> Verdict {
    let e = error.to_ascii_lowercase();
    let exists = |c: &crate::ids::ClusterName| {
        e.contains(&format!(
            "cluster '{}' already exists",
            c.as_str().to_ascii_lowercase()
        ))
    };
    let already = match ddl {
        Ddl::CreateCluster {
            cluster,
            if_not_exists,
        } => *if_not_exists && exists(cluster),
        Ddl::JoinCluster { cluster, .. } | Ddl::JoinTempCluster { cluster, .. } => exists(cluster),
        Ddl::AlterClusterAdd { cluster, .. } => e.contains(&format!(
            "is already part of cluster '{}'",
            cluster.as_str().to_ascii_lowercase()
        )),
        Ddl::AlterClusterDrop { .. } => {
            e.contains("is not in cluster") || e.contains("unknown cluster")
        }
        Ddl::DeleteCluster { .. } => e.contains("unknown cluster"),
        _ => false,
    };
    if already {
        return Verdict::AlreadyDone;
    }
    if matches!(ddl, Ddl::CreateWrapper { .. }) && e.contains("already exists") {
        return Verdict::CheckExisting;
    }
    if WAITING_MARKERS.iter().any(|m| e.contains(m)) {
        return Verdict::Waiting;
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
    fn create_cluster_if_not_exists_is_sent_plain() {
        let ddl = Ddl::parse("CREATE CLUSTER IF NOT EXISTS ab12 'ab12' as path");
        assert_eq!(statement(&ddl), "CREATE CLUSTER ab12 'ab12' as path");
        assert_eq!(
            judge(&ddl, "failed to create desc: cluster 'ab12' already exists"),
            Verdict::AlreadyDone
        );
        let plain = Ddl::parse("CREATE CLUSTER t1 't1' as path");
        assert_eq!(
            judge(&plain, "failed to create desc: cluster 't1' already exists"),
            Verdict::Permanent
        );
    }

    #[test]
    fn errors_are_judged() {
        let join = Ddl::parse("JOIN CLUSTER c at '10.0.0.1:9312' 'c' as path");
        assert_eq!(
            judge(&join, "cluster 'c' already exists"),
            Verdict::AlreadyDone
        );
        assert_eq!(
            judge(
                &join,
                "cluster 'c' is not ready, not primary state (synced)"
            ),
            Verdict::Waiting
        );
        assert_eq!(
            judge(
                &join,
                "cluster 'c', failed to fetch donor user from any node"
            ),
            Verdict::Transient
        );
        let add = Ddl::parse("ALTER CLUSTER h ADD system.t_s0");
        assert_eq!(
            judge(&add, "table 'system.t_s0' is already part of cluster 'h'"),
            Verdict::AlreadyDone
        );
        assert_eq!(
            judge(&add, "table 'system.t_s0' is already part of cluster 'x'"),
            Verdict::Permanent
        );
        let detach = Ddl::parse("ALTER CLUSTER h DROP system.t_s1");
        assert_eq!(
            judge(&detach, "table 'system.t_s1' is not in cluster 'h'"),
            Verdict::AlreadyDone
        );
        assert_eq!(
            judge(&Ddl::parse("DELETE CLUSTER h"), "unknown cluster 'h'"),
            Verdict::AlreadyDone
        );
        let wrapper =
            Ddl::parse("CREATE TABLE `t` (id bigint)\n\t\t\ttype='shard' local='system.t_s0'");
        assert_eq!(
            judge(
                &wrapper,
                "table 't': CREATE TABLE failed: table 't' already exists"
            ),
            Verdict::CheckExisting
        );
        assert!(needs_attempt_record(&wrapper));
        assert!(!needs_attempt_record(&add));
        assert_eq!(
            judge(&Ddl::Other("x".into()), "P03: syntax error"),
            Verdict::Permanent
        );
    }
}
