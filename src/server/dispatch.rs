//! The one place where an envelope meets the handlers: validate, let the
//! registry find a claimant, render its reply; hand anything unclaimed to
//! the fallback Buddy or answer with the daemon's own error.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{HeaderMap, Response, StatusCode};

use super::routes::json_response;
use super::ServerState;
use crate::handler::Reply;
use crate::protocol::{BuddyRequest, ResponseEnvelope};

/// What became of a request inside the handler table.
enum Outcome {
    Replied(&'static str, Reply),
    Unclaimed,
    /// The handler panicked; the panic message is already on the log.
    Crashed,
}

pub(super) async fn answer(state: &Arc<ServerState>, id: String, headers: &HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    let request = match BuddyRequest::from_envelope(id.as_str(), &body) {
        Ok(request) => Arc::new(request),
        Err(invalid) => {
            tracing::debug!(request_id = %id, error = %invalid, "rejected an invalid envelope");
            return envelope(&ResponseEnvelope::invalid(&invalid));
        }
    };
    tracing::debug!(
        request_id = %request.id,
        format = ?request.format,
        path_query = %request.path_query,
        user = %request.user,
        body = %request.body,
        "request received"
    );
    let reply = match run_handlers(state, Arc::clone(&request)).await {
        Outcome::Replied(handler, Reply::Sets(sets)) => {
            tracing::debug!(request_id = %request.id, handler, sets = sets.len(), "answered");
            ResponseEnvelope::result_sets(request.format, &sets)
        }
        Outcome::Replied(handler, Reply::Error(text)) => {
            tracing::debug!(request_id = %request.id, handler, error = %text, "answered with an error");
            ResponseEnvelope::error(request.format, &text)
        }
        Outcome::Replied(handler, Reply::Decline) => {
            tracing::debug!(request_id = %request.id, handler, "declined");
            return unclaimed(state, &request, headers, body).await;
        }
        Outcome::Unclaimed => return unclaimed(state, &request, headers, body).await,
        Outcome::Crashed => {
            tracing::error!(request_id = %request.id, "a handler failed; returning the daemon's own error");
            ResponseEnvelope::not_mine(&request)
        }
    };
    envelope(&reply)
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

async fn unclaimed(state: &ServerState, request: &BuddyRequest, headers: &HeaderMap, body: Bytes) -> Response<Full<Bytes>> {
    if let Some(fallback) = &state.fallback {
        match fallback.forward(headers, body).await {
            Ok(relayed) => {
                tracing::debug!(request_id = %request.id, status = relayed.status, "relayed the fallback Buddy's reply");
                let status = StatusCode::from_u16(relayed.status).unwrap_or(StatusCode::BAD_GATEWAY);
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

fn envelope(reply: &ResponseEnvelope) -> Response<Full<Bytes>> {
    json_response(StatusCode::OK, reply.to_bytes().into())
}
