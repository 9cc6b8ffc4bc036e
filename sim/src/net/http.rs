//! HTTP endpoints: `/sql` (search JSON, or raw result arrays with `mode=raw`), `/cli` (always
//! answered by the helper) and `/cli_json`. Served on `:http` listeners and on the binary-API
//! port, which other nodes use for agent queries.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use percent_encoding::percent_decode_str;
use tokio::net::TcpListener;

use super::rawjson::{error_body, raw_reply, search_reply};
use crate::auth::{Perms, BUDDY_USER};
use crate::buddy::{self, envelope::Failure};
use crate::exec::error::{ErrorCode, ExecError};
use crate::exec::result::Output;
use crate::exec::session::{Protocol, Session};
use crate::exec::{self, execute_statement};
use crate::node::Node;
use crate::sql::lexer::split_statements;

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
            let service = service_fn(move |req| handle(node.clone(), req, port));
            // Clients that disconnect mid-request are not worth reporting.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
    .await
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
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endpoint {
    Sql { raw: bool },
    Cli,
    CliJson,
    Cluster,
    Other,
}

async fn handle(
    node: Arc<Node>,
    req: Request<Incoming>,
    port: Port,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let sender = parts
        .headers
        .get(crate::cluster::messages::FROM_HEADER)
        .and_then(|v| v.to_str().ok());
    if let Some(peer) = sender {
        // A cut link drops everything between the two nodes (agent queries too).
        if node.clusters.is_blocked(peer) {
            return Ok(reply(Answer::error(503, "link cut")));
        }
    }
    let path_query = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".to_string());
    let query = parts.uri.query().unwrap_or("");
    let endpoint = match parts.uri.path().trim_end_matches('/') {
        "/sql" => Endpoint::Sql {
            raw: query.split('&').any(|kv| kv == "mode=raw"),
        },
        "/cli" => Endpoint::Cli,
        "/cli_json" => Endpoint::CliJson,
        crate::cluster::messages::PATH if port == Port::Api => Endpoint::Cluster,
        _ => Endpoint::Other,
    };
    let user_agent = parts
        .headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let from_buddy = buddy::is_buddy_agent(user_agent.as_deref());
    let from_agent = parts.headers.contains_key(crate::exec::agent::AGENT_HEADER);
    let sql = request_sql(endpoint, query, &body);
    let answer = match identify(&node, &parts.headers, from_buddy) {
        Err(answer) => answer,
        Ok(_) if endpoint == Endpoint::Cluster => {
            let (status, body) = crate::cluster::rpc::handle(&node, sender, &body).await;
            Answer::json(status, body)
        }
        Ok((user, perms)) => {
            let mut session = Session::new(&user, perms, node.next_connection_id(), Protocol::Http);
            // Writes from another node are shard writes: they go through the target table's
            // cluster without the `cluster:` prefix, as searchd's shard routing does.
            session.shard_write = from_agent;
            let ctx = RequestCtx {
                node: &node,
                endpoint,
                path_query: &path_query,
                method: parts.method.as_str(),
                from_buddy,
                from_agent,
                sql: &sql,
            };
            ctx.answer(&mut session).await
        }
    };
    Ok(reply(answer))
}

fn reply(answer: Answer) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(answer.body)));
    *resp.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let ct = answer
        .content_type
        .unwrap_or_else(|| "application/json; charset=UTF-8".to_string());
    if let Ok(v) = HeaderValue::from_str(&ct) {
        resp.headers_mut().insert(CONTENT_TYPE, v);
    }
    resp
}

/// The SQL of a request: `query=<urlencoded>` bodies are decoded, anything else is taken as is.
fn request_sql(endpoint: Endpoint, query: &str, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if matches!(endpoint, Endpoint::Sql { .. }) {
        if let Some(encoded) = text.strip_prefix("query=") {
            return form_decode(encoded);
        }
        if text.trim().is_empty() {
            if let Some(q) = query.split('&').find_map(|kv| kv.strip_prefix("query=")) {
                return form_decode(q);
            }
        }
    }
    text.to_string()
}

fn form_decode(s: &str) -> String {
    percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .to_string()
}

/// Who sends the request. `Err` is the reply to an unauthenticated request.
fn identify(node: &Node, headers: &HeaderMap, from_buddy: bool) -> Result<(String, Perms), Answer> {
    if !node.auth_enabled() {
        return Ok((String::new(), Perms::ALL));
    }
    let agent = headers
        .get(crate::exec::agent::AGENT_HEADER)
        .and_then(|v| v.to_str().ok());
    if let (Some(presented), Some(secret)) = (agent, node.config.sim.agent_secret.as_deref()) {
        if presented == secret {
            return Ok((BUDDY_USER.to_string(), Perms::ALL));
        }
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if let Some(token) = auth.strip_prefix("Bearer ") {
        if node.helper_token.as_deref() == Some(token.trim()) {
            let delegated = headers
                .get("x-manticore-user")
                .and_then(|v| v.to_str().ok());
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
    sql: &'a str,
}

impl RequestCtx<'_> {
    async fn answer(&self, session: &mut Session) -> Answer {
        match self.endpoint {
            Endpoint::Sql { raw: true } | Endpoint::CliJson => match self.raw(session).await {
                Ok(outputs) => Answer::json(200, raw_reply(&outputs)),
                Err(e) => self.failed(session, 500, e).await,
            },
            Endpoint::Sql { raw: false } => self.search(session).await,
            Endpoint::Cli => self.cli(session).await,
            Endpoint::Cluster | Endpoint::Other => {
                self.failed(
                    session,
                    501,
                    ExecError::new(format!("invalid request path '{}'", self.path_query)),
                )
                .await
            }
        }
    }

    async fn raw(&self, session: &mut Session) -> Result<Vec<Output>, ExecError> {
        let mut outputs = Vec::new();
        for stmt in split_statements(self.sql) {
            outputs.push(exec::execute(self.node, session, stmt.trim()).await?);
        }
        Ok(outputs)
    }

    async fn search(&self, session: &mut Session) -> Answer {
        let started = Instant::now();
        let text = self.sql.trim().trim_end_matches(';');
        let stmt = match crate::sql::parse(text) {
            Ok(s) => s,
            Err(e) => {
                return self
                    .failed(session, 400, ExecError::syntax(e.to_string()))
                    .await
            }
        };
        if !stmt.is_select() {
            return self
                .failed(
                    session,
                    501,
                    ExecError::new("only SELECT queries are supported"),
                )
                .await;
        }
        match execute_statement(self.node, session, &stmt).await {
            Ok(Output::Rows(rs)) => {
                Answer::json(200, search_reply(&rs, started.elapsed().as_millis() as u64))
            }
            Ok(Output::Ok { .. }) => Answer::json(200, "{}".to_string()),
            Err(e) => self.failed(session, 500, e).await,
        }
    }

    async fn cli(&self, session: &mut Session) -> Answer {
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
            body: self.sql,
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
    async fn failed(&self, session: &Session, status: u16, err: ExecError) -> Answer {
        let original = Answer::error(status, &err.message);
        if self.from_buddy || self.from_agent || err.code == ErrorCode::AccessDenied {
            return original;
        }
        let json_request = !matches!(self.endpoint, Endpoint::Sql { .. });
        let failure = Failure {
            json_request,
            error_message: &err.message,
            error_body: serde_json::from_str(&original.body).ok(),
            user: &session.user,
            path_query: self.path_query,
            body: self.sql,
            http_method: if json_request { self.method } else { "" },
        };
        match buddy::forward(self.node, &failure, session.conn_id).await {
            Some(reply) => self
                .apply(&reply, status, session.conn_id)
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
        assert_eq!(
            request_sql(sql, "mode=raw", b"query=SELECT%20*%20FROM%20t"),
            "SELECT * FROM t"
        );
        assert_eq!(request_sql(sql, "mode=raw", b"query=a+b%2Bc"), "a b+c");
        assert_eq!(request_sql(sql, "mode=raw", b"SHOW TABLES"), "SHOW TABLES");
        assert_eq!(request_sql(sql, "query=SHOW%20META", b""), "SHOW META");
        assert_eq!(request_sql(Endpoint::Cli, "", b"query=x"), "query=x");
    }
}
