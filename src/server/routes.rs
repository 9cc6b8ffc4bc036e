//! Method and path routing (spec §2.1, §1.8): `/config` for the log level,
//! `POST` anywhere else for envelopes, `400` for everything else.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use serde_json::json;

use super::{config_endpoint, dispatch, ServerState};

/// Where searchd posts its runtime log-level changes.
pub(super) const CONFIG_PATH: &str = "/config";
/// The header searchd tags each envelope with.
const REQUEST_ID: &str = "request-id";

pub(super) async fn respond(
    state: Arc<ServerState>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    if request.uri().path() == CONFIG_PATH {
        return config_endpoint::respond(&state, request).await;
    }
    if request.method() != Method::POST {
        return json_response(StatusCode::BAD_REQUEST, Bytes::new());
    }
    let (parts, body) = request.into_parts();
    let id = request_id(&parts.headers);
    match read_body(body, state.max_body_bytes).await {
        Ok(bytes) => dispatch::answer(&state, id, &parts.headers, bytes).await,
        Err(BodyError::TooLarge) => {
            // Not an envelope searchd can use: it logs this text and falls
            // back to its own error for the user.
            tracing::warn!(request_id = %id, limit = state.max_body_bytes, "request body too large");
            let text = format!(
                "request body is larger than {} bytes; raise --max-body-size to accept it",
                state.max_body_bytes
            );
            json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({ "error": text }).to_string().into(),
            )
        }
        Err(BodyError::Broken(reason)) => {
            tracing::debug!(request_id = %id, %reason, "reading the request body failed");
            json_response(StatusCode::BAD_REQUEST, Bytes::new())
        }
    }
}

pub(super) enum BodyError {
    TooLarge,
    Broken(String),
}

/// Reads a body of at most `limit` bytes into one buffer. A declared length
/// over the limit is refused before anything is read; otherwise the buffer
/// is sized once from the declared length, so a body is held in memory
/// exactly once (not as a list of chunks plus their concatenation).
pub(super) async fn read_body(mut body: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    let declared = body.size_hint().exact();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let capacity = declared.map_or(0, |n| usize::try_from(n).unwrap_or(limit).min(limit));
    let mut buffer = Vec::with_capacity(capacity);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| BodyError::Broken(err.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if data.len() > limit - buffer.len() {
                return Err(BodyError::TooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(buffer))
}

pub(super) fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// searchd's `Request-ID`, or a process-unique one when it is missing.
fn request_id(headers: &HeaderMap) -> String {
    static GENERATED: AtomicU64 = AtomicU64::new(1);
    match headers.get(REQUEST_ID) {
        Some(value) => String::from_utf8_lossy(value.as_bytes()).into_owned(),
        None => format!("sb-{}", GENERATED.fetch_add(1, Ordering::Relaxed)),
    }
}
