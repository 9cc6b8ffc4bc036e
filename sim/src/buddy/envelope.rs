//! The helper protocol (v3): the request envelope searchd sends and the reply it accepts.

use serde_json::{json, Value};

/// searchd's protocol version.
pub const PROTOCOL_VERSION: i64 = 3;

/// What failed and how it reached searchd.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure<'a> {
    /// `true` for every HTTP endpoint except `/sql` (type `unknown json request`).
    pub json_request: bool,
    pub error_message: &'a str,
    /// HTTP: the JSON body of searchd's own error reply; MySQL: none.
    pub error_body: Option<Value>,
    pub user: &'a str,
    /// HTTP: path and query as received; MySQL: empty.
    pub path_query: &'a str,
    /// The SQL statement (or JSON body) as sent.
    pub body: &'a str,
    /// HTTP method for JSON requests; empty for MySQL and for `/sql`.
    pub http_method: &'a str,
}

/// The request body, fields in searchd's order.
pub fn request_body(f: &Failure) -> String {
    let v = json!({
        "type": if f.json_request { "unknown json request" } else { "unknown sql request" },
        "error": {"message": f.error_message, "body": f.error_body.clone().unwrap_or(Value::Null)},
        "version": PROTOCOL_VERSION,
        "user": f.user,
        "message": {"path_query": f.path_query, "body": f.body, "http_method": f.http_method},
    });
    v.to_string()
}

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// `sql response` or `json response`.
    pub kind: String,
    pub message: Value,
    pub error_code: i64,
    pub content_type: Option<String>,
}

/// Validates a reply as searchd's `ParseReply` does; `Err` is the text searchd logs.
pub fn parse_reply(raw: &[u8]) -> Result<Reply, String> {
    let v: Value = serde_json::from_slice(raw).map_err(|e| format!("unable to parse: {e}"))?;
    let Some(obj) = v.as_object() else {
        return Err("wrong reply format - not object".to_string());
    };
    let version = obj
        .get("version")
        .and_then(Value::as_i64)
        .ok_or("wrong reply format - version missed")?;
    if version > PROTOCOL_VERSION {
        return Err(format!("buddy reply version ({version}) greater daemon version ({PROTOCOL_VERSION}), upgrade daemon binary"));
    }
    if version < 1 {
        return Err(format!("wrong buddy reply version ({version})"));
    }
    let kind = obj
        .get("type")
        .and_then(Value::as_str)
        .ok_or("wrong reply format - type missed")?;
    let message = obj
        .get("message")
        .cloned()
        .ok_or("wrong reply format - message missed")?;
    let error_code = obj
        .get("error_code")
        .and_then(Value::as_i64)
        .ok_or("wrong reply format - error_code missed")?;
    Ok(Reply {
        kind: kind.to_string(),
        message,
        error_code,
        content_type: obj
            .get("content_type")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_envelopes() {
        let mysql = Failure {
            json_request: false,
            error_message: "P02: syntax error, unexpected identifier near 'SELEC 1'",
            error_body: None,
            user: "root",
            path_query: "",
            body: "SELEC 1",
            http_method: "",
        };
        assert_eq!(
            request_body(&mysql),
            r#"{"type":"unknown sql request","error":{"message":"P02: syntax error, unexpected identifier near 'SELEC 1'","body":null},"version":3,"user":"root","message":{"path_query":"","body":"SELEC 1","http_method":""}}"#
        );
        let cli = Failure {
            json_request: true,
            error_message: "",
            error_body: None,
            user: "",
            path_query: "/cli",
            body: "SHOW TABLES",
            http_method: "POST",
        };
        assert_eq!(
            request_body(&cli),
            r#"{"type":"unknown json request","error":{"message":"","body":null},"version":3,"user":"","message":{"path_query":"/cli","body":"SHOW TABLES","http_method":"POST"}}"#
        );
        let raw = Failure {
            error_body: Some(json!({"error": "x"})),
            path_query: "/sql?mode=raw",
            ..mysql
        };
        assert!(request_body(&raw).contains(r#""error":{"message":"P02: syntax error, unexpected identifier near 'SELEC 1'","body":{"error":"x"}}"#));
    }

    #[test]
    fn reply_validation() {
        let ok = parse_reply(br#"{"version":3,"type":"sql response","message":[{"total":0,"error":"","warning":""}],"meta":null,"error_code":200}"#).unwrap();
        assert_eq!(ok.error_code, 200);
        assert_eq!(
            parse_reply(b"[1]").unwrap_err(),
            "wrong reply format - not object"
        );
        assert!(parse_reply(b"nope")
            .unwrap_err()
            .starts_with("unable to parse"));
        assert!(
            parse_reply(br#"{"version":4,"type":"x","message":1,"error_code":0}"#)
                .unwrap_err()
                .contains("greater daemon version")
        );
        assert!(parse_reply(br#"{"version":3,"type":"x","message":1}"#).is_err());
    }
}
