//! The reply envelope shardbuddy sends back to searchd (protocol v3, spec
//! §3.1–3.2). Field order is Buddy's: `version`, `type`, `message`, `meta`,
//! `error_code` (`log` and `content_type` are optional and never produced).

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use super::fields::RawJson;
use super::request::{BuddyRequest, InvalidEnvelope, RequestFormat, PROTOCOL_VERSION};
use super::resultset::ResultSet;

/// `error_code` 0 tells searchd to keep the HTTP status it would have used.
pub const KEEP_DAEMON_STATUS: u16 = 0;
/// `error_code` of a successful reply, and of errors a handler returns.
pub const OK_STATUS: u16 = 200;
/// `error_code` of a reply to an envelope that failed validation.
pub const BAD_REQUEST_STATUS: u16 = 400;

#[derive(Debug, Clone, PartialEq)]
pub struct ResponseEnvelope {
    format: RequestFormat,
    message: Message,
    error_code: u16,
}

/// A reply's `message`: built here, or the daemon's error body passed on as
/// the text it arrived as.
#[derive(Debug, Clone, PartialEq)]
enum Message {
    Built(Value),
    Passed(RawJson),
}

impl Serialize for Message {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Built(value) => value.serialize(s),
            Self::Passed(raw) => raw.serialize(s),
        }
    }
}

impl ResponseEnvelope {
    /// Result sets, one per statement.
    pub fn result_sets(format: RequestFormat, sets: &[ResultSet]) -> Self {
        let message = Value::Array(sets.iter().map(ResultSet::to_json).collect());
        Self::new(format, message, OK_STATUS)
    }

    /// Text that searchd passes to the HTTP client verbatim (`/cli`).
    pub fn text(format: RequestFormat, text: &str) -> Self {
        Self::new(format, Value::String(text.to_string()), OK_STATUS)
    }

    /// An error a handler returned: a normal result whose text the user sees.
    pub fn error(format: RequestFormat, text: &str) -> Self {
        Self::new(format, error_message(text), OK_STATUS)
    }

    /// An error a handler returned on HTTP `/sql`: the HTTP status stays the
    /// one the daemon uses for its own errors there (500 for `mode=raw`), so
    /// the client cannot tell shardbuddy's errors from the daemon's by shape.
    pub fn error_with_daemon_status(format: RequestFormat, text: &str) -> Self {
        Self::new(format, error_message(text), KEEP_DAEMON_STATUS)
    }

    /// The reply to a request nobody handles: the daemon's own error comes
    /// back unchanged. For JSON requests that is the daemon's original error
    /// body when there is one, so HTTP clients see exactly what searchd would
    /// have sent them.
    pub fn not_mine(request: &BuddyRequest) -> Self {
        let message = match (request.format, &request.error_body) {
            (RequestFormat::Json, Some(body)) => Message::Passed(body.clone()),
            _ => Message::Built(error_message(&request.error_message)),
        };
        Self {
            format: request.format,
            message,
            error_code: KEEP_DAEMON_STATUS,
        }
    }

    /// The reply to an envelope that failed validation.
    pub fn invalid(err: &InvalidEnvelope) -> Self {
        Self::new(
            err.reply_format,
            error_message(&err.to_string()),
            BAD_REQUEST_STATUS,
        )
    }

    pub fn format(&self) -> RequestFormat {
        self.format
    }

    pub fn error_code(&self) -> u16 {
        self.error_code
    }

    /// The JSON text sent on the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Serialising a `Value` tree and plain fields cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn new(format: RequestFormat, message: Value, error_code: u16) -> Self {
        Self {
            format,
            message: Message::Built(message),
            error_code,
        }
    }
}

fn error_message(text: &str) -> Value {
    json!({ "error": text })
}

impl Serialize for ResponseEnvelope {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(5))?;
        map.serialize_entry("version", &PROTOCOL_VERSION)?;
        map.serialize_entry("type", self.format.response_type())?;
        map.serialize_entry("message", &self.message)?;
        map.serialize_entry("meta", &Value::Null)?;
        map.serialize_entry("error_code", &self.error_code)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Column, ColumnType};
    use serde_json::json;

    fn request(format: RequestFormat, error_body: Option<Value>) -> BuddyRequest {
        BuddyRequest {
            id: "1".into(),
            format,
            error_message: "no such table 'x'".into(),
            error_body: error_body.as_ref().map(RawJson::from_value),
            user: String::new(),
            path_query: String::new(),
            body: "DESC x".into(),
            payload: "DESC x".into(),
            http_method: String::new(),
        }
    }

    fn text(envelope: ResponseEnvelope) -> String {
        String::from_utf8(envelope.to_bytes()).unwrap()
    }

    #[test]
    fn envelopes_render_in_buddys_field_order() {
        let mut set = ResultSet::with_columns(vec![Column::new("n", ColumnType::LongLong)]);
        set.push_row(vec![json!(1)]);
        let body = Some(json!({"error": {"type": "x"}, "status": 404}));
        let invalid = BuddyRequest::from_envelope("1", b"").unwrap_err();
        let cases = [
            (
                ResponseEnvelope::result_sets(RequestFormat::Sql, &[ResultSet::ok()]),
                r#"{"version":3,"type":"sql response","message":[{"total":0,"error":"","warning":""}],"meta":null,"error_code":200}"#,
            ),
            (
                ResponseEnvelope::result_sets(RequestFormat::Json, &[set]),
                r#"{"version":3,"type":"json response","message":[{"total":1,"error":"","warning":"","columns":[{"n":{"type":"long long"}}],"data":[{"n":1}]}],"meta":null,"error_code":200}"#,
            ),
            (
                ResponseEnvelope::error(RequestFormat::Sql, "rf must be > 0"),
                r#"{"version":3,"type":"sql response","message":{"error":"rf must be > 0"},"meta":null,"error_code":200}"#,
            ),
            (
                ResponseEnvelope::not_mine(&request(
                    RequestFormat::Sql,
                    Some(json!({"error": "b"})),
                )),
                r#"{"version":3,"type":"sql response","message":{"error":"no such table 'x'"},"meta":null,"error_code":0}"#,
            ),
            (
                ResponseEnvelope::not_mine(&request(RequestFormat::Json, body)),
                r#"{"version":3,"type":"json response","message":{"error":{"type":"x"},"status":404},"meta":null,"error_code":0}"#,
            ),
            (
                ResponseEnvelope::not_mine(&request(RequestFormat::Json, None)),
                r#"{"version":3,"type":"json response","message":{"error":"no such table 'x'"},"meta":null,"error_code":0}"#,
            ),
            (
                ResponseEnvelope::invalid(&invalid),
                r#"{"version":3,"type":"json response","message":{"error":"The payload is missing"},"meta":null,"error_code":400}"#,
            ),
        ];
        for (envelope, want) in cases {
            assert_eq!(text(envelope), want);
        }
    }
}
