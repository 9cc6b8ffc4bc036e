//! The request envelope searchd sends to its helper (protocol v3, spec §2.3),
//! after validation (spec §2.4).

use serde_json::Value;

/// Which kind of reply searchd expects: `sql response` or `json response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    /// `unknown sql request`: MySQL protocol and HTTP `/sql`.
    Sql,
    /// `unknown json request`: every other HTTP endpoint, `/cli` included.
    Json,
}

/// A validated v3 request.
#[derive(Debug, Clone, PartialEq)]
pub struct BuddyRequest {
    /// The `Request-ID` header (or a generated id), for log lines.
    pub id: String,
    pub format: RequestFormat,
    /// `error.message`: the error the daemon would have returned.
    pub error_message: String,
    /// `error.body`: the daemon's original HTTP error body, if any.
    pub error_body: Option<Value>,
    /// `user`: the authenticated session user, `""` without auth.
    pub user: String,
    /// `message.path_query`: `""` for MySQL, e.g. `/sql?mode=raw` for HTTP.
    pub path_query: String,
    /// `message.body`: the statement (or JSON body) exactly as received.
    pub body: String,
    /// `message.body` with comments removed and trimmed of spaces and `;`.
    pub payload: String,
    /// `message.http_method`, `""` when absent.
    pub http_method: String,
}
