//! The request envelope searchd sends to its helper (protocol v3, spec §2.3),
//! and its validation (spec §2.4).
//!
//! Validation follows Buddy's order and texts exactly, because searchd shows
//! them to the user: the top-level fields `type`, `error`, `message` (whose
//! own fields `path_query` and `body` are checked right after it, as Buddy's
//! recursive check does), `version`; then the version value, the `type`
//! value and the `path_query`.

use super::fields::{self, EnvelopeFields, Leaf, Part, RawJson};
use crate::sql::normalize_payload;

/// The only request protocol version this helper speaks.
pub const PROTOCOL_VERSION: i64 = 3;

/// Which kind of reply searchd expects: `sql response` or `json response`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFormat {
    /// `unknown sql request`: MySQL protocol and HTTP `/sql`.
    Sql,
    /// `unknown json request`: every other HTTP endpoint, `/cli` included.
    Json,
}

impl RequestFormat {
    /// The format named by a request's `type` field.
    pub fn from_request_type(request_type: &str) -> Option<Self> {
        match request_type {
            "unknown sql request" => Some(Self::Sql),
            "unknown json request" => Some(Self::Json),
            _ => None,
        }
    }

    /// The `type` of the reply searchd accepts for this format.
    pub fn response_type(self) -> &'static str {
        match self {
            Self::Sql => "sql response",
            Self::Json => "json response",
        }
    }
}

/// The daemon endpoint a request failed on, as far as handlers care: whether
/// `message.body` is SQL, and whether the reply goes to an HTTP client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// MySQL protocol (`path_query` `""`) or HTTP `/sql` (any query string).
    Sql,
    /// HTTP `/cli`: SQL in the body, a text reply expected.
    Cli,
    /// HTTP `/cli_json`: SQL in the body, a JSON reply expected.
    CliJson,
    /// Any other HTTP endpoint (`/search`, `/insert`, Elasticsearch-style
    /// paths, …): the body is JSON, not SQL.
    Json,
}

impl Endpoint {
    /// Classifies a `path_query`. `None` when it is not an origin-form request
    /// target (empty, or `/` followed by printable characters), which searchd
    /// never sends.
    ///
    /// Unlike Buddy, a well-formed path that no known endpoint matches is not
    /// an error: searchd forwards failures of every HTTP endpoint (the golden
    /// recordings include `/some/unknown/endpoint`), and the user is better
    /// served by the daemon's own error, or by the fallback Buddy, than by
    /// `Do not know how to handle …`.
    pub fn from_path_query(path_query: &str) -> Option<Self> {
        if path_query.is_empty() {
            return Some(Self::Sql);
        }
        let rest = path_query.strip_prefix('/')?;
        if rest.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return None;
        }
        let path = rest.split(['?', '#']).next().unwrap_or_default();
        Some(match path {
            "" | "sql" => Self::Sql,
            "cli" => Self::Cli,
            "cli_json" => Self::CliJson,
            _ => Self::Json,
        })
    }

    /// Whether `message.body` is an SQL statement.
    pub fn carries_sql(self) -> bool {
        !matches!(self, Self::Json)
    }
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
    pub error_body: Option<RawJson>,
    /// `user`: the authenticated session user, `""` without auth.
    pub user: String,
    /// `message.path_query`: `""` for MySQL, e.g. `/sql?mode=raw` for HTTP.
    pub path_query: String,
    /// `message.body`: the statement (or JSON body) exactly as received.
    pub body: String,
    /// For SQL bodies: `message.body` with comments removed and trimmed of
    /// spaces and `;`. For JSON bodies: `message.body` trimmed, because comment
    /// stripping would corrupt JSON strings that contain `#` or `--`.
    pub payload: String,
    /// `message.http_method`, `""` when absent.
    pub http_method: String,
}

impl BuddyRequest {
    /// Validates a raw envelope (spec §2.4) and builds the request. The body
    /// is read as a stream (see [`fields`](super::fields)): its memory use is
    /// the size of the fields kept, whatever the rest holds.
    pub fn from_envelope(id: impl Into<String>, raw: &[u8]) -> Result<Self, InvalidEnvelope> {
        let envelope = decode_object(raw).map_err(|problem| InvalidEnvelope {
            problem,
            reply_format: RequestFormat::Json,
        })?;
        // Buddy answers in SQL format only when it could read the type.
        let reply_format = match &envelope.kind {
            Leaf::Str(kind) => RequestFormat::from_request_type(kind),
            _ => None,
        }
        .unwrap_or(RequestFormat::Json);
        Self::from_fields(id.into(), envelope).map_err(|problem| InvalidEnvelope {
            problem,
            reply_format,
        })
    }

    /// The endpoint the request failed on.
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::from_path_query(&self.path_query).unwrap_or(Endpoint::Json)
    }

    fn from_fields(id: String, envelope: EnvelopeFields) -> Result<Self, EnvelopeProblem> {
        let request_type = required_str(envelope.kind, "type")?;
        let error = required_object(envelope.error, "error")?;
        let message = required_object(envelope.message, "message")?;
        let path_query = required_str(message.path_query, "path_query")?;
        let body = required_str(message.body, "body")?;
        let version = match envelope.version {
            Leaf::Absent => return Err(EnvelopeProblem::MissingField("version")),
            Leaf::Int(version) => version,
            _ => {
                return Err(EnvelopeProblem::WrongType {
                    field: "version",
                    php_type: "integer",
                })
            }
        };
        if version != PROTOCOL_VERSION {
            return Err(EnvelopeProblem::Version(version));
        }
        let format = RequestFormat::from_request_type(&request_type)
            .ok_or(EnvelopeProblem::UnknownType(request_type))?;
        let endpoint = Endpoint::from_path_query(&path_query)
            .ok_or_else(|| EnvelopeProblem::UnknownPathQuery(path_query.clone()))?;

        let body = match endpoint {
            Endpoint::Cli | Endpoint::CliJson if body.trim().is_empty() => {
                statement_in_query_string(&path_query).unwrap_or(body)
            }
            _ => body,
        };
        let payload = if endpoint.carries_sql() {
            normalize_payload(&body)
        } else {
            body.trim().to_string()
        };
        Ok(Self {
            id,
            format,
            error_message: optional_str(error.message, "error.message")?,
            error_body: error.body,
            user: optional_str(envelope.user, "user")?,
            path_query,
            body,
            payload,
            http_method: optional_str(message.http_method, "message.http_method")?,
        })
    }
}

/// The statement of `GET /cli?SHOW%20TABLES`: searchd takes a GET request's
/// query string, percent-decoded (`+` stays `+`), as the statement of `/cli`.
fn statement_in_query_string(path_query: &str) -> Option<String> {
    let (_, query) = path_query.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    let statement = percent_encoding::percent_decode_str(query).decode_utf8_lossy();
    Some(statement.into_owned()).filter(|s| !s.trim().is_empty())
}

/// Why an envelope was rejected; `Display` is the exact text Buddy uses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeProblem {
    #[error("The payload is missing")]
    Missing,
    #[error("Failed to parse request payload")]
    Unparsable,
    #[error("Invalid request payload is passed")]
    NotAnObject,
    #[error("Mandatory field '{0}' is missing")]
    MissingField(&'static str),
    /// `php_type` is PHP's `gettype` name (`string`, `array`, `integer`),
    /// as in Buddy's text.
    #[error("Field '{field}' must be a {php_type}")]
    WrongType {
        field: &'static str,
        php_type: &'static str,
    },
    #[error("Buddy protocol version expects '3' but got '{0}'")]
    Version(i64),
    #[error("Do not know how to handle '{0}' type")]
    UnknownType(String),
    #[error("Do not know how to handle '{0}' path_query")]
    UnknownPathQuery(String),
}

/// A rejected envelope, with the reply format searchd expects for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{problem}")]
pub struct InvalidEnvelope {
    pub problem: EnvelopeProblem,
    /// `Sql` when the envelope's `type` was `unknown sql request`.
    pub reply_format: RequestFormat,
}

fn decode_object(raw: &[u8]) -> Result<EnvelopeFields, EnvelopeProblem> {
    if raw.is_empty() {
        return Err(EnvelopeProblem::Missing);
    }
    std::str::from_utf8(raw).map_err(|_| EnvelopeProblem::Unparsable)?;
    match fields::parse::<EnvelopeFields>(raw) {
        Ok(Part::Object(envelope)) => Ok(envelope),
        Ok(_) => Err(EnvelopeProblem::NotAnObject),
        Err(_) => Err(EnvelopeProblem::Unparsable),
    }
}

fn required_str(field: Leaf, name: &'static str) -> Result<String, EnvelopeProblem> {
    match field {
        Leaf::Absent => Err(EnvelopeProblem::MissingField(name)),
        Leaf::Str(s) => Ok(s),
        _ => Err(EnvelopeProblem::WrongType {
            field: name,
            php_type: "string",
        }),
    }
}

fn required_object<T>(field: Part<T>, name: &'static str) -> Result<T, EnvelopeProblem> {
    match field {
        Part::Absent => Err(EnvelopeProblem::MissingField(name)),
        Part::Object(fields) => Ok(fields),
        _ => Err(EnvelopeProblem::WrongType {
            field: name,
            php_type: "array",
        }),
    }
}

/// An optional string field: absent or `null` reads as `""`. `label` names the
/// field in the error, with its parent, because `message` exists at two levels.
fn optional_str(field: Leaf, label: &'static str) -> Result<String, EnvelopeProblem> {
    match field {
        Leaf::Absent | Leaf::Null => Ok(String::new()),
        Leaf::Str(s) => Ok(s),
        _ => Err(EnvelopeProblem::WrongType {
            field: label,
            php_type: "string",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn envelope(overrides: &[(&str, Value)]) -> Vec<u8> {
        let mut base = json!({
            "type": "unknown sql request",
            "error": {"message": "P02: syntax error", "body": null},
            "version": 3,
            "user": "root",
            "message": {"path_query": "", "body": "SELEC 1", "http_method": ""}
        });
        for (path, value) in overrides {
            let mut target = &mut base;
            let mut parts = path.split('.').peekable();
            while let Some(part) = parts.next() {
                if parts.peek().is_none() {
                    let obj = target.as_object_mut().expect("object");
                    if value == &json!("<remove>") {
                        obj.remove(part);
                    } else {
                        obj.insert(part.to_string(), value.clone());
                    }
                    break;
                }
                target = target.get_mut(part).expect("path");
            }
        }
        serde_json::to_vec(&base).expect("serialize")
    }

    fn problem(raw: &[u8]) -> String {
        BuddyRequest::from_envelope("t", raw)
            .expect_err("must be rejected")
            .to_string()
    }

    #[test]
    fn malformed_envelopes_get_buddys_texts_in_buddys_order() {
        let gone = json!("<remove>");
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"".to_vec(), "The payload is missing"),
            (b" ".to_vec(), "Failed to parse request payload"),
            (b"{".to_vec(), "Failed to parse request payload"),
            (
                vec![0xff, 0xfe, b'{', b'}'],
                "Failed to parse request payload",
            ),
            (b"[1]".to_vec(), "Invalid request payload is passed"),
            (b"null".to_vec(), "Invalid request payload is passed"),
            (b"\"s\"".to_vec(), "Invalid request payload is passed"),
            (b"{}".to_vec(), "Mandatory field 'type' is missing"),
            (
                envelope(&[("type", gone.clone())]),
                "Mandatory field 'type' is missing",
            ),
            (
                envelope(&[("type", json!(1))]),
                "Field 'type' must be a string",
            ),
            (
                envelope(&[("error", gone.clone())]),
                "Mandatory field 'error' is missing",
            ),
            (
                envelope(&[("error", json!("old v2 text"))]),
                "Field 'error' must be a array",
            ),
            (
                envelope(&[("message", gone.clone())]),
                "Mandatory field 'message' is missing",
            ),
            (
                envelope(&[("message", json!("x"))]),
                "Field 'message' must be a array",
            ),
            (
                envelope(&[
                    ("message.path_query", gone.clone()),
                    ("version", gone.clone()),
                ]),
                "Mandatory field 'path_query' is missing",
            ),
            (
                envelope(&[("message.path_query", json!(null))]),
                "Field 'path_query' must be a string",
            ),
            (
                envelope(&[("message.body", gone.clone())]),
                "Mandatory field 'body' is missing",
            ),
            (
                envelope(&[("message.body", json!(["SELECT 1"]))]),
                "Field 'body' must be a string",
            ),
            (
                envelope(&[("version", gone)]),
                "Mandatory field 'version' is missing",
            ),
            (
                envelope(&[("version", json!("3"))]),
                "Field 'version' must be a integer",
            ),
            (
                envelope(&[("version", json!(3.0))]),
                "Field 'version' must be a integer",
            ),
            (
                envelope(&[("version", json!(2))]),
                "Buddy protocol version expects '3' but got '2'",
            ),
            (
                envelope(&[("version", json!(4)), ("type", json!("x"))]),
                "Buddy protocol version expects '3' but got '4'",
            ),
            (
                envelope(&[("type", json!("sql request"))]),
                "Do not know how to handle 'sql request' type",
            ),
            (
                envelope(&[("message.path_query", json!("sql?mode=raw"))]),
                "Do not know how to handle 'sql?mode=raw' path_query",
            ),
            (
                envelope(&[("message.path_query", json!("/a b"))]),
                "Do not know how to handle '/a b' path_query",
            ),
            (
                envelope(&[("error.message", json!(5))]),
                "Field 'error.message' must be a string",
            ),
            (
                envelope(&[("user", json!(false))]),
                "Field 'user' must be a string",
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(
                problem(&raw),
                want,
                "body: {}",
                String::from_utf8_lossy(&raw)
            );
        }
    }

    #[test]
    fn deep_nesting_is_a_parse_error() {
        let raw = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(problem(raw.as_bytes()), "Failed to parse request payload");
    }

    #[test]
    fn reply_format_follows_a_readable_type() {
        let sql =
            BuddyRequest::from_envelope("t", &envelope(&[("version", json!(2))])).unwrap_err();
        assert_eq!(sql.reply_format, RequestFormat::Sql);
        let json_type = envelope(&[
            ("type", json!("unknown json request")),
            ("version", json!(2)),
        ]);
        let json = BuddyRequest::from_envelope("t", &json_type).unwrap_err();
        assert_eq!(json.reply_format, RequestFormat::Json);
        assert_eq!(problem_format(b"{}"), RequestFormat::Json);
        assert_eq!(
            problem_format(&envelope(&[
                ("type", json!("other")),
                ("version", json!(1))
            ])),
            RequestFormat::Json
        );
    }

    fn problem_format(raw: &[u8]) -> RequestFormat {
        BuddyRequest::from_envelope("t", raw)
            .unwrap_err()
            .reply_format
    }

    #[test]
    fn valid_envelope_fills_every_field() {
        let raw = envelope(&[
            ("type", json!("unknown json request")),
            ("error.body", json!({"error": "x"})),
            ("message.path_query", json!("/cli_json")),
            ("message.body", json!("  SHOW SHARDING STATUS;\n")),
            ("message.http_method", json!("POST")),
        ]);
        let request = BuddyRequest::from_envelope("42_7", &raw).unwrap();
        assert_eq!(
            request,
            BuddyRequest {
                id: "42_7".into(),
                format: RequestFormat::Json,
                error_message: "P02: syntax error".into(),
                error_body: Some(RawJson::from_value(&json!({"error": "x"}))),
                user: "root".into(),
                path_query: "/cli_json".into(),
                body: "  SHOW SHARDING STATUS;\n".into(),
                payload: "SHOW SHARDING STATUS".into(),
                http_method: "POST".into(),
            }
        );
        assert_eq!(request.endpoint(), Endpoint::CliJson);
    }

    #[test]
    fn optional_fields_default_to_empty() {
        let raw = envelope(&[
            ("user", json!("<remove>")),
            ("message.http_method", json!("<remove>")),
            ("error", json!({})),
        ]);
        let request = BuddyRequest::from_envelope("t", &raw).unwrap();
        assert_eq!(
            (request.user.as_str(), request.http_method.as_str()),
            ("", "")
        );
        assert_eq!(
            (request.error_message.as_str(), request.error_body.is_none()),
            ("", true)
        );
    }

    #[test]
    fn json_bodies_are_only_trimmed() {
        let raw = envelope(&[
            ("type", json!("unknown json request")),
            ("message.path_query", json!("/search")),
            ("message.body", json!(" {\"q\":\"a -- b # c\"} ")),
        ]);
        let request = BuddyRequest::from_envelope("t", &raw).unwrap();
        assert_eq!(request.payload, "{\"q\":\"a -- b # c\"}");
    }

    #[test]
    fn a_get_of_cli_takes_the_statement_from_the_query_string() {
        let request = |path: &str, body: &str| {
            let raw = envelope(&[
                ("type", json!("unknown json request")),
                ("message.path_query", json!(path)),
                ("message.body", json!(body)),
                ("message.http_method", json!("GET")),
            ]);
            BuddyRequest::from_envelope("t", &raw).unwrap()
        };
        let r = request("/cli?SHOW%20TABLES", "");
        assert_eq!(
            (r.body.as_str(), r.payload.as_str()),
            ("SHOW TABLES", "SHOW TABLES")
        );
        // searchd itself fills the body from the query string: it wins.
        let r = request("/cli?SHOW%20TABLES", "SHOW TABLES LIKE 't'");
        assert_eq!(r.payload, "SHOW TABLES LIKE 't'");
        assert_eq!(request("/cli?a+b%2Bc", "").payload, "a+b+c");
        assert_eq!(request("/cli", "").payload, "");
        assert_eq!(request("/search?q=1", "").payload, "");
    }

    #[test]
    fn endpoints_are_classified_from_the_path() {
        let cases = [
            ("", Some(Endpoint::Sql)),
            ("/", Some(Endpoint::Sql)),
            ("/sql", Some(Endpoint::Sql)),
            ("/sql?mode=raw", Some(Endpoint::Sql)),
            ("/cli", Some(Endpoint::Cli)),
            ("/cli_json", Some(Endpoint::CliJson)),
            ("/cli_json?x=1", Some(Endpoint::CliJson)),
            ("/search", Some(Endpoint::Json)),
            ("/sqlx", Some(Endpoint::Json)),
            ("/some/unknown/endpoint", Some(Endpoint::Json)),
            ("/unknown_get?x=1", Some(Endpoint::Json)),
            ("sql", None),
            ("/a\tb", None),
        ];
        for (path_query, want) in cases {
            assert_eq!(
                Endpoint::from_path_query(path_query),
                want,
                "{path_query:?}"
            );
        }
    }
}
