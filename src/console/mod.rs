//! HTTP `/cli`, the daemon's text console. searchd hands *every* `/cli`
//! request to its helper, before running anything (`error.message` is empty),
//! so a helper that declines leaves the user with `{"error":""}`. This
//! handler does what searchd does for `/sql`: it runs the statement on the
//! daemon as the requesting user; if the daemon fails on it, the statement
//! handlers get the chance to claim it with the daemon's error, exactly as
//! for a forwarded `/sql` request; the outcome is printed as a text table.
//!
//! With a fallback Buddy configured, statements that are not shardbuddy's
//! are left to it untouched (it renders `/cli` itself), so nothing runs twice.

mod table;

pub use table::render;

use std::time::Instant;

use crate::client::DaemonClient;
use crate::handler::{Handler, Registry, Reply, ReplyFuture};
use crate::protocol::{BuddyRequest, Endpoint, RequestFormat};
use crate::sql;

/// The daemon's text for a request without a statement.
const QUERY_MISSING: &str = "query missing";

pub struct ConsoleHandler {
    /// The statement handlers, consulted as for a failed `/sql` request.
    statements: Registry,
    daemon: DaemonClient,
    /// Whether statements that are not ours belong to the fallback Buddy.
    foreign_to_fallback: bool,
}

impl ConsoleHandler {
    pub fn new(statements: Registry, daemon: DaemonClient, foreign_to_fallback: bool) -> Self {
        Self {
            statements,
            daemon,
            foreign_to_fallback,
        }
    }

    async fn run(&self, request: &BuddyRequest) -> Reply {
        if request.payload.is_empty() {
            // searchd's own answer to a `/sql?mode=raw` without a statement.
            return Reply::Error(QUERY_MISSING.into());
        }
        let started = Instant::now();
        let daemon_error = match self
            .daemon
            .as_user(&request.user)
            .query(&request.body)
            .await
        {
            Ok(sets) => match sets.iter().find(|s| !s.error.is_empty()) {
                None => return Reply::Text(render(&sets, started.elapsed())),
                Some(failed) => failed.error.clone(),
            },
            Err(e) => e.to_string(),
        };
        let failed = as_failed_sql(request, &daemon_error);
        let Some((_, reply)) = self.statements.claim(&failed) else {
            return Reply::Error(daemon_error);
        };
        match reply.await {
            Reply::Sets(sets) => Reply::Text(render(&sets, started.elapsed())),
            Reply::Decline => Reply::Error(daemon_error),
            other => other,
        }
    }
}

/// The request as searchd would have forwarded it had the statement failed
/// on `/sql?mode=raw` with `daemon_error`.
fn as_failed_sql(request: &BuddyRequest, daemon_error: &str) -> BuddyRequest {
    BuddyRequest {
        format: RequestFormat::Sql,
        error_message: daemon_error.to_string(),
        error_body: None,
        path_query: "/sql?mode=raw".into(),
        http_method: String::new(),
        ..request.clone()
    }
}

/// Whether `payload` is one of the statements shardbuddy may claim.
fn may_be_ours(payload: &str) -> bool {
    !matches!(sql::parse(payload), Err(e) if e.is_not_claimed())
}

impl Handler for ConsoleHandler {
    fn name(&self) -> &'static str {
        "console"
    }

    fn claim<'a>(&'a self, request: &'a BuddyRequest) -> Option<ReplyFuture<'a>> {
        if request.endpoint() != Endpoint::Cli {
            return None;
        }
        if self.foreign_to_fallback && !may_be_ours(&request.payload) {
            return None;
        }
        Some(Box::pin(self.run(request)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_statements_are_taken_from_the_fallback() {
        for (sql, ours) in [
            ("SHOW SHARDING STATUS", true),
            ("create table c:t (id bigint) shards='2' rf='2'", true),
            ("CREATE TABLE t (id bigint) shards='x'", true),
            ("TRUNCATE TABLE t", true),
            ("SHOW TABLES", false),
            ("SELECT * FROM t", false),
            ("CREATE TABLE t (id bigint)", false),
        ] {
            assert_eq!(may_be_ours(sql), ours, "{sql}");
        }
    }

    #[test]
    fn a_console_request_becomes_a_failed_sql_request() {
        let raw = serde_json::json!({
            "type": "unknown json request",
            "error": {"message": "", "body": null},
            "version": 3,
            "user": "alice",
            "message": {"path_query": "/cli", "body": "SHOW SHARDING STATUS", "http_method": "POST"}
        });
        let request = BuddyRequest::from_envelope("1", raw.to_string().as_bytes()).unwrap();
        assert_eq!(request.endpoint(), Endpoint::Cli);
        let failed = as_failed_sql(&request, "P01: syntax error");
        assert_eq!(failed.endpoint(), Endpoint::Sql);
        assert_eq!(failed.format, RequestFormat::Sql);
        assert_eq!(failed.error_message, "P01: syntax error");
        assert_eq!(failed.user, "alice");
        assert_eq!(failed.payload, request.payload);
    }
}
