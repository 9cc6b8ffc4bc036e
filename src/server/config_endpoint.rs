//! `/config`: searchd posts `{"log_level":"…"}` here when its own log level
//! changes at run time (spec §1.8). `GET` reads the level, `POST` sets it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::routes::{json_response, read_body};
use super::ServerState;
use crate::config::LogLevel;

/// A log-level change is a few bytes; anything much larger is not one.
const MAX_CONFIG_BODY: usize = 64 * 1024;

pub(super) async fn respond(
    state: &ServerState,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match *request.method() {
        Method::GET => current(state),
        Method::POST => match update(state, request.into_body()).await {
            Ok(()) => current(state),
            Err(text) => {
                tracing::warn!(error = %text, "rejected a /config change");
                let code = StatusCode::INTERNAL_SERVER_ERROR;
                let body = json!({ "error": text, "code": code.as_u16() });
                json_response(code, body.to_string().into())
            }
        },
        _ => {
            let mut response = json_response(StatusCode::METHOD_NOT_ALLOWED, Bytes::new());
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, POST"));
            response
        }
    }
}

fn current(state: &ServerState) -> Response<Full<Bytes>> {
    let body = json!({ "log_level": state.log_level.current().as_str() });
    json_response(StatusCode::OK, body.to_string().into())
}

async fn update(state: &ServerState, body: Incoming) -> Result<(), String> {
    let raw = read_body(body, MAX_CONFIG_BODY)
        .await
        .map_err(|_| "Failed to read config payload".to_string())?;
    let level = parse_change(&raw)?;
    state.log_level.set(level)?;
    tracing::info!(log_level = %level, "log level changed");
    Ok(())
}

/// The level named by a `{"log_level":"…"}` body.
fn parse_change(raw: &[u8]) -> Result<LogLevel, String> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|_| "Failed to parse config payload".to_string())?;
    match value.get("log_level") {
        None => Err("Mandatory field 'log_level' is missing".into()),
        Some(Value::String(name)) => name
            .parse()
            .map_err(|e: crate::config::ConfigError| format!("'{name}' is not a log level: {e}")),
        Some(_) => Err("Field 'log_level' must be a string".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_level_changes_are_parsed() {
        let cases: [(&[u8], Result<LogLevel, &str>); 7] = [
            (br#"{"log_level":"debug"}"#, Ok(LogLevel::Debug)),
            (
                br#"{"log_level":"debugvv","other":1}"#,
                Ok(LogLevel::Debugvv),
            ),
            (br#"{"log_level":"info"}"#, Ok(LogLevel::Info)),
            (
                br#"{"log_level":"loud"}"#,
                Err("'loud' is not a log level: expected info, debug, debugv or debugvv"),
            ),
            (
                br#"{"log_level":1}"#,
                Err("Field 'log_level' must be a string"),
            ),
            (br#"{}"#, Err("Mandatory field 'log_level' is missing")),
            (b"log_level=debug", Err("Failed to parse config payload")),
        ];
        for (raw, want) in cases {
            assert_eq!(
                parse_change(raw),
                want.map_err(str::to_string),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
