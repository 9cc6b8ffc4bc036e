//! `/config`: searchd posts `{"log_level":"…"}` here when its own log level
//! changes at run time (spec §1.8). `GET` reads the level, `POST` sets it.
//! The same body may carry `"failpoints":"name=action[,…]"`, which replaces
//! the failpoint settings (`""` clears them); `GET` shows them while any is
//! set.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use super::routes::{json_response, read_body};
use super::ServerState;
use crate::config::LogLevel;
use crate::failpoint;

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
    let mut body = json!({ "log_level": state.log_level.current().as_str() });
    let failpoints = failpoint::current();
    if !failpoints.is_empty() {
        body["failpoints"] = Value::String(failpoints);
    }
    json_response(StatusCode::OK, body.to_string().into())
}

async fn update(state: &ServerState, body: Incoming) -> Result<(), String> {
    let raw = read_body(body, MAX_CONFIG_BODY)
        .await
        .map_err(|_| "Failed to read config payload".to_string())?;
    let change = parse_change(&raw)?;
    if let Some(spec) = &change.failpoints {
        failpoint::configure(spec).map_err(|e| e.to_string())?;
        tracing::warn!(failpoints = %failpoint::current(), "failpoints changed");
    }
    if let Some(level) = change.log_level {
        state.log_level.set(level)?;
        tracing::info!(log_level = %level, "log level changed");
    }
    Ok(())
}

/// What a `/config` body asks to change.
#[derive(Debug, PartialEq)]
struct Change {
    log_level: Option<LogLevel>,
    failpoints: Option<String>,
}

/// The changes of a `{"log_level":"…"}` or `{"failpoints":"…"}` body
/// (both may be given); nothing is applied unless all of it is valid.
fn parse_change(raw: &[u8]) -> Result<Change, String> {
    let value: Value =
        serde_json::from_slice(raw).map_err(|_| "Failed to parse config payload".to_string())?;
    let failpoints = match value.get("failpoints") {
        None => None,
        Some(Value::String(spec)) => {
            failpoint::parse(spec).map_err(|e| e.to_string())?;
            Some(spec.clone())
        }
        Some(_) => return Err("Field 'failpoints' must be a string".into()),
    };
    let log_level = match value.get("log_level") {
        None if failpoints.is_some() => None,
        None => return Err("Mandatory field 'log_level' is missing".into()),
        Some(Value::String(name)) => {
            Some(name.parse().map_err(|e: crate::config::ConfigError| {
                format!("'{name}' is not a log level: {e}")
            })?)
        }
        Some(_) => return Err("Field 'log_level' must be a string".into()),
    };
    Ok(Change {
        log_level,
        failpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failpoint_changes_are_parsed_with_or_without_a_level() {
        let change = |log_level, failpoints: Option<&str>| {
            Ok(Change {
                log_level,
                failpoints: failpoints.map(str::to_string),
            })
        };
        let cases: [(&[u8], Result<Change, String>); 4] = [
            (
                br#"{"failpoints":"helper.received=abort"}"#,
                change(None, Some("helper.received=abort")),
            ),
            (
                br#"{"failpoints":"","log_level":"debug"}"#,
                change(Some(LogLevel::Debug), Some("")),
            ),
            (
                br#"{"failpoints":"x=abort","log_level":"debug"}"#,
                Err(failpoint::SettingError::UnknownName("x".into()).to_string()),
            ),
            (
                br#"{"failpoints":1}"#,
                Err("Field 'failpoints' must be a string".into()),
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(parse_change(raw), want, "{}", String::from_utf8_lossy(raw));
        }
    }

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
                parse_change(raw).map(|c| c.log_level),
                want.map(Some).map_err(str::to_string),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
    }
}
