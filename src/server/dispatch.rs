//! The one place where an envelope meets the handlers: validate, let the
//! registry find a claimant, render its reply; hand anything unclaimed to
//! the fallback Buddy or answer with the daemon's own error.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Response, StatusCode};

use super::routes::json_response;
use super::ServerState;
use crate::failpoint;
use crate::handler::Reply;
use crate::protocol::{raw_reply_text, BuddyRequest, Endpoint, ResponseEnvelope};

/// What became of a request inside the handler table.
enum Outcome {
    Replied(&'static str, Reply),
    Unclaimed,
    /// The handler panicked; the panic message is already on the log.
    Crashed,
}

pub(super) async fn answer(
    state: &Arc<ServerState>,
    id: String,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (response, handler, outcome) = answer_request(state, id, headers, body).await;
    crate::metrics::hooks::request_served(handler, outcome, started.elapsed());
    response
}

/// Who answered a request, and how (labels of the request metrics).
type Answered = (Response<Full<Bytes>>, &'static str, &'static str);

const NOBODY: &str = "none";

async fn answer_request(
    state: &Arc<ServerState>,
    id: String,
    headers: &HeaderMap,
    body: Bytes,
) -> Answered {
    let request = match BuddyRequest::from_envelope(id.as_str(), &body) {
        Ok(request) => Arc::new(request),
        Err(invalid) => {
            tracing::debug!(request_id = %id, error = %invalid, "rejected an invalid envelope");
            return (
                envelope(&ResponseEnvelope::invalid(&invalid)),
                NOBODY,
                "invalid",
            );
        }
    };
    if let Err(injected) = failpoint::hit(failpoint::HELPER_RECEIVED).await {
        let reply = ResponseEnvelope::error(request.format, &injected.text);
        return (envelope(&reply), NOBODY, "failpoint");
    }
    tracing::debug!(
        request_id = %request.id,
        format = ?request.format,
        path_query = %request.path_query,
        user = %request.user,
        body = clipped(&request.body),
        "request received"
    );
    let (reply, handler, outcome) = match run_handlers(state, Arc::clone(&request)).await {
        Outcome::Replied(handler, Reply::Sets(sets)) => {
            tracing::debug!(request_id = %request.id, handler, sets = sets.len(), "answered");
            let reply = if http_sql(&request) == Some(true) {
                // searchd would re-serialise an array compactly; a string
                // reaches the client verbatim, in the daemon's own layout.
                ResponseEnvelope::text(request.format, &raw_reply_text(&sets))
            } else {
                ResponseEnvelope::result_sets(request.format, &sets)
            };
            (reply, handler, "result")
        }
        Outcome::Replied(handler, Reply::Text(text)) => {
            tracing::debug!(request_id = %request.id, handler, bytes = text.len(), "answered with text");
            (
                ResponseEnvelope::text(request.format, &text),
                handler,
                "text",
            )
        }
        Outcome::Replied(handler, Reply::Error(text)) => {
            tracing::debug!(request_id = %request.id, handler, error = %text, "answered with an error");
            let reply = if http_sql(&request).is_some() {
                ResponseEnvelope::error_with_daemon_status(request.format, &text)
            } else {
                ResponseEnvelope::error(request.format, &text)
            };
            (reply, handler, "error")
        }
        Outcome::Replied(handler, Reply::Decline) => {
            tracing::debug!(request_id = %request.id, handler, "declined");
            let response = unclaimed(state, &request, headers, body).await;
            return (response, handler, "declined");
        }
        Outcome::Unclaimed => {
            let response = unclaimed(state, &request, headers, body).await;
            return (response, NOBODY, "unclaimed");
        }
        Outcome::Crashed => {
            tracing::error!(request_id = %request.id, "a handler failed; returning the daemon's own error");
            (ResponseEnvelope::not_mine(&request), NOBODY, "crashed")
        }
    };
    (envelope(&reply), handler, outcome)
}

/// For a request that failed on HTTP `/sql`: whether it asked for
/// `mode=raw`. `None` for every other endpoint, MySQL included.
fn http_sql(request: &BuddyRequest) -> Option<bool> {
    if request.path_query.is_empty() || request.endpoint() != Endpoint::Sql {
        return None;
    }
    let query = request.path_query.split_once('?').map_or("", |(_, q)| q);
    Some(query.split('&').any(|pair| pair == "mode=raw"))
}

/// Runs the claim and the handler's work in a task of its own, so that a
/// panic is contained, and so that work on the cluster is not cut short when
/// searchd drops the connection halfway.
async fn run_handlers(state: &Arc<ServerState>, request: Arc<BuddyRequest>) -> Outcome {
    let task_state = Arc::clone(state);
    let work = state.tasks.spawn(async move {
        let (handler, reply) = task_state.registry.claim(&request)?;
        Some((handler, reply.await))
    });
    match work.await {
        Ok(Some((handler, reply))) => Outcome::Replied(handler, reply),
        Ok(None) => Outcome::Unclaimed,
        Err(_) => Outcome::Crashed,
    }
}

async fn unclaimed(
    state: &ServerState,
    request: &BuddyRequest,
    headers: &HeaderMap,
    body: Bytes,
) -> Response<Full<Bytes>> {
    if let Some(fallback) = &state.fallback {
        match fallback.forward(headers, body).await {
            Ok(relayed) => {
                tracing::debug!(request_id = %request.id, status = relayed.status, "relayed the fallback Buddy's reply");
                let status =
                    StatusCode::from_u16(relayed.status).unwrap_or(StatusCode::BAD_GATEWAY);
                return json_response(status, relayed.body);
            }
            Err(err) => {
                tracing::warn!(request_id = %request.id, fallback = fallback.url(), %err, "the fallback Buddy failed; returning the daemon's own error");
            }
        }
    } else {
        tracing::debug!(request_id = %request.id, "not handled here; returning the daemon's own error");
    }
    envelope(&ResponseEnvelope::not_mine(request))
}

/// Longest piece of a statement written to the log.
const LOGGED_BODY_CHARS: usize = 1024;

/// The statement for a log line: bulk inserts can be megabytes long.
fn clipped(body: &str) -> &str {
    match body.char_indices().nth(LOGGED_BODY_CHARS) {
        Some((end, _)) => &body[..end],
        None => body,
    }
}

fn envelope(reply: &ResponseEnvelope) -> Response<Full<Bytes>> {
    json_response(StatusCode::OK, reply.to_bytes().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LogLevel;
    use crate::handler::{Handler, Registry, ReplyFuture};
    use crate::protocol::ResultSet;
    use crate::server::LogLevelControl;
    use http_body_util::BodyExt;

    struct FixedLevel;

    impl LogLevelControl for FixedLevel {
        fn current(&self) -> LogLevel {
            LogLevel::Info
        }
        fn set(&self, _: LogLevel) -> Result<(), String> {
            Ok(())
        }
    }

    /// Claims statements starting with `prefix` and answers with `reply`
    /// (or panics when `reply` is `None`).
    struct Scripted {
        name: &'static str,
        prefix: &'static str,
        reply: Option<Reply>,
    }

    impl Handler for Scripted {
        fn name(&self) -> &'static str {
            self.name
        }

        fn claim<'a>(&'a self, request: &'a BuddyRequest) -> Option<ReplyFuture<'a>> {
            if !request.payload.starts_with(self.prefix) {
                return None;
            }
            Some(Box::pin(async move {
                match &self.reply {
                    Some(reply) => reply.clone(),
                    None => panic!("handler bug"),
                }
            }))
        }
    }

    fn state() -> Arc<ServerState> {
        let handler = |name, prefix, reply| {
            Box::new(Scripted {
                name,
                prefix,
                reply,
            }) as Box<dyn Handler>
        };
        let registry = Registry::new(vec![
            handler(
                "sets",
                "SHOW SHARDING",
                Some(Reply::Sets(vec![ResultSet::ok()])),
            ),
            handler("shadowed", "SHOW", Some(Reply::Error("never asked".into()))),
            handler(
                "error",
                "CREATE",
                Some(Reply::Error("rf must be at least 1".into())),
            ),
            handler("decline", "TRUNCATE", Some(Reply::Decline)),
            handler("panics", "DROP", None),
        ]);
        Arc::new(ServerState::new(registry, None, Arc::new(FixedLevel), 1024))
    }

    async fn ask(state: &Arc<ServerState>, statement: &str) -> String {
        let envelope = serde_json::json!({
            "type": "unknown sql request",
            "error": {"message": "daemon error", "body": null},
            "version": 3,
            "message": {"path_query": "", "body": statement}
        });
        let response = answer(
            state,
            "1".into(),
            &HeaderMap::new(),
            envelope.to_string().into(),
        )
        .await;
        assert_eq!(response.status(), StatusCode::OK);
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        String::from_utf8(body.to_vec()).expect("UTF-8")
    }

    #[tokio::test]
    async fn http_sql_answers_are_shaped_like_the_daemons() {
        let state = state();
        let ask_at = |path: &'static str, statement: &'static str| {
            let state = Arc::clone(&state);
            async move {
                let envelope = serde_json::json!({
                    "type": "unknown sql request",
                    "error": {"message": "daemon error", "body": null},
                    "version": 3,
                    "message": {"path_query": path, "body": statement}
                });
                let response = answer(
                    &state,
                    "1".into(),
                    &HeaderMap::new(),
                    envelope.to_string().into(),
                )
                .await;
                let body = response.into_body().collect().await.unwrap().to_bytes();
                String::from_utf8(body.to_vec()).unwrap()
            }
        };
        assert_eq!(
            ask_at("/sql?mode=raw", "SHOW SHARDING STATUS").await,
            r#"{"version":3,"type":"sql response","message":"[{\"total\":0,\"error\":\"\",\"warning\":\"\"}]","meta":null,"error_code":200}"#
        );
        assert_eq!(
            ask_at("/sql?mode=raw", "CREATE TABLE t shards='1' rf='0'").await,
            r#"{"version":3,"type":"sql response","message":{"error":"rf must be at least 1"},"meta":null,"error_code":0}"#
        );
        // Plain /sql keeps result arrays; MySQL keeps error_code 200.
        assert!(ask_at("/sql", "SHOW SHARDING STATUS")
            .await
            .contains(r#""message":[{"total":0"#));
        assert!(ask_at("", "CREATE TABLE t shards='1' rf='0'")
            .await
            .ends_with(r#""error_code":200}"#));
    }

    #[test]
    fn logged_statements_are_clipped_at_a_character_boundary() {
        let long = "é".repeat(LOGGED_BODY_CHARS + 5);
        assert_eq!(clipped(&long).chars().count(), LOGGED_BODY_CHARS);
        assert_eq!(clipped("SELECT 1"), "SELECT 1");
    }

    #[tokio::test]
    async fn replies_are_rendered_from_the_first_claim() {
        let state = state();
        let not_mine = r#"{"version":3,"type":"sql response","message":{"error":"daemon error"},"meta":null,"error_code":0}"#;
        let cases = [
            (
                "SHOW SHARDING STATUS",
                r#"{"version":3,"type":"sql response","message":[{"total":0,"error":"","warning":""}],"meta":null,"error_code":200}"#,
            ),
            (
                "CREATE TABLE t shards='1' rf='0'",
                r#"{"version":3,"type":"sql response","message":{"error":"rf must be at least 1"},"meta":null,"error_code":200}"#,
            ),
            ("TRUNCATE TABLE plain", not_mine),
            ("SELEC 1", not_mine),
            ("DROP TABLE t", not_mine),
            // The process state survives a handler panic.
            (
                "SHOW SHARDING MASTER",
                r#"{"version":3,"type":"sql response","message":[{"total":0,"error":"","warning":""}],"meta":null,"error_code":200}"#,
            ),
        ];
        for (statement, want) in cases {
            assert_eq!(ask(&state, statement).await, want, "{statement}");
        }
    }
}
