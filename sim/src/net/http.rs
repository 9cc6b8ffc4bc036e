//! HTTP endpoints: `/sql` (search JSON, or raw result arrays with `mode=raw`), `/cli` (always
//! answered by the helper), `/cli_json`, the JSON endpoints `/insert` and `/search`, and
//! searchd's Elasticsearch-style answers to `/` and to unknown paths. Served on `:http`
//! listeners and on the binary-API port, which other nodes use for agent queries and
//! replication messages. The connection itself (keep-alive, pipelining, limits) is
//! [`super::http1`]'s.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;

use super::http1::{self, Limits, PathRules, Request, Response};
use super::json_api::{self, Refusal};
use super::rawjson::{error_body, raw_reply, search_reply, search_reply_with};
use crate::auth::{Perms, BUDDY_USER};
use crate::buddy::{self, envelope::Failure};
use crate::exec::error::{ErrorCode, ExecError};
use crate::exec::result::Output;
use crate::exec::session::{Protocol, Session};
use crate::exec::{self, execute_statement};
use crate::node::Node;
use crate::sql::lexer::split_statements;

/// Bound on a replication message (a state transfer carries whole tables); searchd's own
/// `max_packet_size` does not apply to the simulator's node-to-node protocol.
const INTERNAL_MAX_BODY: u64 = 1 << 30;

/// Which listener a connection came in on: node-to-node replication messages are only taken
/// on the binary-API port, the address other nodes know this node by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    Api,
    Http,
}

pub async fn serve(node: Arc<Node>, listener: TcpListener, port: Port) {
    super::accept_loop(listener, move |stream| {
        let node = node.clone();
        async move {
            let limits = Limits {
                first_request: node.config.net.network_timeout,
                idle: node.config.net.client_timeout,
            };
            let max_body = node.config.net.max_packet_size;
            let server = node.server_version().to_string();
            http1::serve_connection(
                stream,
                &server,
                limits,
                |req| path_rules(req, port, max_body),
                |req| handle(node.clone(), req, port),
            )
            .await;
        }
    })
    .await
}

/// searchd's rules for client requests (the connection closes after a non-2xx reply); the
/// simulator's replication messages (API port only) may be larger and keep their pooled
/// connection whatever the reply.
fn path_rules(req: &Request, port: Port, max_body: u64) -> PathRules {
    if port == Port::Api && req.path() == crate::cluster::messages::PATH {
        PathRules {
            max_body: INTERNAL_MAX_BODY,
            close_on_error: false,
        }
    } else {
        PathRules {
            max_body,
            close_on_error: true,
        }
    }
}

/// A reply before it becomes an HTTP response.
struct Answer {
    status: u16,
    body: String,
    content_type: Option<String>,
}

impl Answer {
    fn json(status: u16, body: String) -> Answer {
        Answer {
            status,
            body,
            content_type: None,
        }
    }

    fn error(status: u16, message: &str) -> Answer {
        Answer::json(status, error_body(message))
    }

    fn into_response(self) -> Response {
        Response {
            status: self.status,
            content_type: self
                .content_type
                .unwrap_or_else(|| Response::JSON.to_string()),
            body: self.body.into_bytes(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Sql {
        raw: bool,
    },
    Cli,
    CliJson,
    Insert,
    Search,
    Root,
    Cluster,
    /// A path searchd's Elasticsearch layer takes for a table name (404).
    NoSuchIndex(String),
    /// A searchd endpoint the simulator does not emulate.
    Other,
}

/// Endpoints of searchd's JSON API (and Elasticsearch-style `_…` paths) the simulator does not
/// emulate: they get `501 invalid request path` (and go to the helper) instead of the 404 an
/// unknown name gets.
const UNEMULATED: &[&str] = &[
    "bulk",
    "replace",
    "update",
    "delete",
    "json",
    "pq",
    "index",
    "create",
    "autocomplete",
];

fn endpoint_of(path: &str, query: &str, port: Port) -> Endpoint {
    match path.trim_end_matches('/') {
        "/sql" => Endpoint::Sql {
            raw: query.split('&').any(|kv| kv == "mode=raw"),
        },
        "/cli" => Endpoint::Cli,
        "/cli_json" => Endpoint::CliJson,
        "/insert" => Endpoint::Insert,
        "/search" => Endpoint::Search,
        "" => Endpoint::Root,
        crate::cluster::messages::PATH if port == Port::Api => Endpoint::Cluster,
        other => {
            let first = other
                .trim_start_matches('/')
                .split('/')
                .next()
                .unwrap_or("");
            if first.starts_with('_') || UNEMULATED.contains(&first) {
                Endpoint::Other
            } else {
                Endpoint::NoSuchIndex(first.to_string())
            }
        }
    }
}

async fn handle(node: Arc<Node>, req: Request, port: Port) -> Response {
    let sender = req.header(crate::cluster::messages::FROM_HEADER);
    if let Some(peer) = sender {
        // A cut link drops everything between the two nodes (agent queries too).
        if node.clusters.is_blocked(peer) {
            return Answer::error(503, "link cut").into_response();
        }
    }
    let path_query = if req.target.is_empty() {
        "/".to_string()
    } else {
        req.target.clone()
    };
    let query = req.query();
    let endpoint = endpoint_of(req.path(), query, port);
    let from_buddy = buddy::is_buddy_agent(req.header("user-agent"));
    let from_agent = req.header(crate::exec::agent::AGENT_HEADER).is_some();
    let sql = request_sql(&endpoint, query, &req.body);
    let answer = match identify(&node, &req, from_buddy) {
        Err(answer) => answer,
        Ok(_) if endpoint == Endpoint::Cluster => {
            let (status, body) = crate::cluster::rpc::handle(&node, sender, &req.body).await;
            Answer::json(status, body)
        }
        Ok((user, perms)) => {
            let mut session = Session::new(&user, perms, node.next_connection_id(), Protocol::Http);
            // Writes from another node are shard writes: they go through the target table's
            // cluster without the `cluster:` prefix, as searchd's shard routing does.
            session.shard_write = from_agent;
            let ctx = RequestCtx {
                node: &node,
                endpoint: endpoint.clone(),
                path_query: &path_query,
                method: &req.method,
                from_buddy,
                from_agent,
                sql: sql.as_deref(),
                body: &req.body,
            };
            ctx.answer(&mut session).await
        }
    };
    answer.into_response()
}

/// The SQL of a request: the `query` field of a form body (percent-decoded), the body as it is
/// when it has none, or the `query` parameter of the URL for an empty body. `None`: no SQL at
/// all (searchd's `query missing`).
fn request_sql(endpoint: &Endpoint, query: &str, body: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(body);
    if matches!(endpoint, Endpoint::Sql { .. }) {
        if let Some(encoded) = form_field(&text, "query") {
            return Some(form_decode(encoded));
        }
        if text.trim().is_empty() {
            return form_field(query, "query").map(form_decode);
        }
    }
    if text.is_empty() && matches!(endpoint, Endpoint::Sql { .. } | Endpoint::CliJson) {
        return None;
    }
    Some(text.to_string())
}

/// The value of `name` in an `application/x-www-form-urlencoded` text.
fn form_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    text.split('&')
        .find_map(|kv| kv.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
}

fn form_decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .to_string()
}

/// Who sends the request. `Err` is the reply to an unauthenticated request.
fn identify(node: &Node, req: &Request, from_buddy: bool) -> Result<(String, Perms), Answer> {
    if !node.auth_enabled() {
        return Ok((String::new(), Perms::ALL));
    }
    let agent = req.header(crate::exec::agent::AGENT_HEADER);
    if let (Some(presented), Some(secret)) = (agent, node.config.sim.agent_secret.as_deref()) {
        if presented == secret {
            return Ok((BUDDY_USER.to_string(), Perms::ALL));
        }
    }
    let auth = req.header("authorization").unwrap_or("");
    if let Some(token) = auth.strip_prefix("Bearer ") {
        if node.helper_token.as_deref() == Some(token.trim()) {
            let delegated = req.header("x-manticore-user");
            return Ok(match delegated {
                Some(name) if from_buddy && name != BUDDY_USER => {
                    let perms = node
                        .config
                        .sim
                        .users
                        .iter()
                        .find(|u| u.name == name)
                        .map(|u| u.perms)
                        .unwrap_or_default();
                    (name.to_string(), perms)
                }
                _ => (BUDDY_USER.to_string(), Perms::ALL),
            });
        }
    }
    if let Some(b64) = auth.strip_prefix("Basic ") {
        if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
            let text = String::from_utf8_lossy(&raw).to_string();
            if let Some((name, password)) = text.split_once(':') {
                if let Some(u) = node
                    .config
                    .sim
                    .users
                    .iter()
                    .find(|u| u.name == name && u.password == password)
                {
                    return Ok((u.name.clone(), u.perms));
                }
            }
        }
    }
    Err(Answer::error(401, "Access denied"))
}

struct RequestCtx<'a> {
    node: &'a Node,
    endpoint: Endpoint,
    path_query: &'a str,
    method: &'a str,
    from_buddy: bool,
    /// A node-to-node query (never forwarded to the helper).
    from_agent: bool,
    /// The statement(s) of an SQL endpoint (`None`: the request had none).
    sql: Option<&'a str>,
    /// The request body as sent (JSON endpoints).
    body: &'a [u8],
}

/// A failure on its way to the client (or to the helper first).
struct Failed {
    status: u16,
    message: String,
    /// searchd's reply body; `{"error":"<message>"}` unless the endpoint has its own shape.
    body: Option<String>,
    code: ErrorCode,
}

impl Failed {
    fn new(status: u16, err: ExecError) -> Failed {
        Failed {
            status,
            message: err.message,
            body: None,
            code: err.code,
        }
    }

    fn refusal(r: Refusal) -> Failed {
        Failed {
            status: r.status,
            body: Some(json_api::refusal_body(&r)),
            message: r.message,
            code: ErrorCode::Generic,
        }
    }
}

impl RequestCtx<'_> {
    async fn answer(&self, session: &mut Session) -> Answer {
        let sql = self.sql.unwrap_or("");
        match &self.endpoint {
            Endpoint::Sql { .. } | Endpoint::CliJson if self.sql.is_none() => {
                self.failed(session, Failed::new(400, ExecError::new("query missing")))
                    .await
            }
            Endpoint::Sql { raw: true } | Endpoint::CliJson => match self.raw(session, sql).await {
                Ok(outputs) => Answer::json(200, raw_reply(&outputs)),
                Err(e) => self.failed(session, Failed::new(500, e)).await,
            },
            Endpoint::Sql { raw: false } => self.search(session, sql).await,
            Endpoint::Cli => self.cli(session, sql).await,
            Endpoint::Insert => self.json_insert(session).await,
            Endpoint::Search => self.json_search(session).await,
            Endpoint::Root => Answer::json(200, json_api::root_banner()),
            Endpoint::NoSuchIndex(name) => {
                let failed = Failed {
                    status: 404,
                    message: format!("no such index [{name}]"),
                    body: Some(json_api::no_such_index(name)),
                    code: ErrorCode::Generic,
                };
                self.failed(session, failed).await
            }
            Endpoint::Cluster | Endpoint::Other => {
                let err = ExecError::new(format!("invalid request path '{}'", self.path_query));
                self.failed(session, Failed::new(501, err)).await
            }
        }
    }

    async fn raw(&self, session: &mut Session, sql: &str) -> Result<Vec<Output>, ExecError> {
        let mut outputs = Vec::new();
        for stmt in split_statements(sql) {
            crate::faults::before_statement(self.node, stmt.trim()).await?;
            outputs.push(exec::execute(self.node, session, stmt.trim()).await?);
        }
        Ok(outputs)
    }

    async fn search(&self, session: &mut Session, sql: &str) -> Answer {
        let started = Instant::now();
        let text = sql.trim().trim_end_matches(';');
        if let Err(e) = crate::faults::before_statement(self.node, text).await {
            return self.failed(session, Failed::new(500, e)).await;
        }
        let stmt = match crate::sql::parse(text) {
            Ok(s) => s,
            Err(e) => {
                let err = ExecError::syntax(e.to_string());
                return self.failed(session, Failed::new(400, err)).await;
            }
        };
        if !stmt.is_select() {
            let err = ExecError::new("only SELECT queries are supported");
            return self.failed(session, Failed::new(501, err)).await;
        }
        match execute_statement(self.node, session, &stmt).await {
            Ok(Output::Rows(rs)) => {
                Answer::json(200, search_reply(&rs, started.elapsed().as_millis() as u64))
            }
            Ok(Output::Ok { .. }) => Answer::json(200, "{}".to_string()),
            Err(e) => self.failed(session, Failed::new(500, e)).await,
        }
    }

    /// `/insert`: one document; searchd's own reply shapes for success and failure.
    async fn json_insert(&self, session: &mut Session) -> Answer {
        let json_api::InsertRequest { sql, table, id } = match json_api::insert(self.body) {
            Ok(req) => req,
            Err(r) => return self.failed(session, Failed::refusal(r)).await,
        };
        match exec::execute(self.node, session, &sql).await {
            Ok(_) => {
                let id = id.unwrap_or(session.last_insert_id);
                Answer::json(200, json_api::insert_reply(&table, id))
            }
            Err(e) => {
                let failed = Failed {
                    status: 409,
                    body: Some(json_api::insert_error(&table, &e.message)),
                    message: e.message,
                    code: e.code,
                };
                self.failed(session, failed).await
            }
        }
    }

    /// `/search`: searchd stops counting at `offset + limit` for a JSON query, so `total` is
    /// at most that, `gte` when more documents matched (record `http.11`).
    async fn json_search(&self, session: &mut Session) -> Answer {
        let started = Instant::now();
        let json_api::SearchRequest { sql, cutoff } = match json_api::search(self.body) {
            Ok(req) => req,
            Err(r) => return self.failed(session, Failed::refusal(r)).await,
        };
        match exec::execute(self.node, session, &sql).await {
            Ok(Output::Rows(rs)) => {
                let (total, relation) = if rs.total_found > cutoff {
                    (cutoff, "gte")
                } else {
                    (rs.total_found, "eq")
                };
                let took = started.elapsed().as_millis() as u64;
                Answer::json(200, search_reply_with(&rs, took, total, relation))
            }
            Ok(Output::Ok { .. }) => Answer::json(200, "{}".to_string()),
            Err(e) => self.failed(session, Failed::new(500, e)).await,
        }
    }

    async fn cli(&self, session: &mut Session, sql: &str) -> Answer {
        const NO_HELPER: &str = "can not process /cli endpoint without buddy";
        if self.from_buddy {
            return Answer::error(
                501,
                "can not process /cli endpoint with User-Agent:Manticore Buddy",
            );
        }
        if self.node.helper().is_none() {
            return Answer::error(501, NO_HELPER);
        }
        let failure = Failure {
            json_request: true,
            error_message: "",
            error_body: None,
            user: &session.user,
            path_query: self.path_query,
            body: sql,
            http_method: self.method,
        };
        match buddy::forward(self.node, &failure, session.conn_id).await {
            Some(reply) => self
                .apply(&reply, 200, session.conn_id)
                .unwrap_or_else(|| Answer::error(501, NO_HELPER)),
            None => Answer::error(501, NO_HELPER),
        }
    }

    /// searchd's error reply, or the helper's answer when it takes the request.
    async fn failed(&self, session: &Session, f: Failed) -> Answer {
        let body = f.body.unwrap_or_else(|| error_body(&f.message));
        let original = Answer::json(f.status, body);
        if self.from_buddy || self.from_agent || !f.code.forwardable() {
            return original;
        }
        let json_request = !matches!(self.endpoint, Endpoint::Sql { .. });
        let request_body = match self.sql {
            Some(sql) if !json_request || self.endpoint == Endpoint::CliJson => sql.to_string(),
            _ => String::from_utf8_lossy(self.body).to_string(),
        };
        let failure = Failure {
            json_request,
            error_message: &f.message,
            error_body: serde_json::from_str(&original.body).ok(),
            user: &session.user,
            path_query: self.path_query,
            body: &request_body,
            http_method: if json_request { self.method } else { "" },
        };
        match buddy::forward(self.node, &failure, session.conn_id).await {
            Some(reply) => self
                .apply(&reply, f.status, session.conn_id)
                .unwrap_or(original),
            None => original,
        }
    }

    fn apply(&self, reply: &buddy::envelope::Reply, status: u16, conn_id: u32) -> Option<Answer> {
        let sql_endpoint = matches!(self.endpoint, Endpoint::Sql { .. });
        match buddy::http_outcome(reply, sql_endpoint, status) {
            Ok((status, body, content_type)) => Some(Answer {
                status,
                body,
                content_type,
            }),
            Err(why) => {
                self.node
                    .log
                    .line(&format!("WARNING: [BUDDY] [{conn_id}] {why}"));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_sql_forms() {
        let sql = Endpoint::Sql { raw: true };
        let of = |q: &str, body: &[u8]| request_sql(&sql, q, body);
        assert_eq!(
            of("mode=raw", b"query=SELECT%20*%20FROM%20t").as_deref(),
            Some("SELECT * FROM t")
        );
        assert_eq!(of("mode=raw", b"query=a+b%2Bc").as_deref(), Some("a b+c"));
        assert_eq!(
            of("mode=raw", b"query=SELECT%201&pad=xxxx").as_deref(),
            Some("SELECT 1")
        );
        assert_eq!(
            of("mode=raw", b"SHOW TABLES").as_deref(),
            Some("SHOW TABLES")
        );
        // No `query` field: the body is the statement (`http.15`).
        assert_eq!(of("", b"foo=bar").as_deref(), Some("foo=bar"));
        assert_eq!(of("query=SHOW%20META", b"").as_deref(), Some("SHOW META"));
        assert_eq!(of("mode=raw", b""), None);
        assert_eq!(
            request_sql(&Endpoint::Cli, "", b"query=x").as_deref(),
            Some("query=x")
        );
    }

    #[test]
    fn endpoints() {
        assert_eq!(endpoint_of("/", "", Port::Http), Endpoint::Root);
        assert_eq!(
            endpoint_of("/nosuch", "", Port::Http),
            Endpoint::NoSuchIndex("nosuch".into())
        );
        assert_eq!(endpoint_of("/bulk", "", Port::Http), Endpoint::Other);
        assert_eq!(
            endpoint_of("/_sim/cluster", "", Port::Http),
            Endpoint::Other
        );
        assert_eq!(
            endpoint_of("/_sim/cluster", "", Port::Api),
            Endpoint::Cluster
        );
        assert_eq!(
            endpoint_of("/sql", "mode=raw", Port::Http),
            Endpoint::Sql { raw: true }
        );
    }
}
