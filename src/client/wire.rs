//! The `/sql?mode=raw` wire format (spec §4.2, §4.5): how a statement is
//! encoded and how the reply is read. Pure functions.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

use super::ClientError;
use crate::protocol::ResultSet;

/// PHP's `rawurlencode` (RFC 3986): only `A-Za-z0-9-_.~` stay as they are.
const RAWURLENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Longest piece of an unexpected reply quoted in an error.
const SNIPPET_CHARS: usize = 200;

/// The form body Buddy sends: `query=` + rawurlencode(SQL).
pub(crate) fn form_body(sql: &str) -> String {
    format!("query={}", utf8_percent_encode(sql, RAWURLENCODE))
}

/// Reads a `/sql?mode=raw` reply: a JSON array of result sets on success, a
/// `{"error": …}` object (usually with a non-200 status) on failure.
pub(crate) fn decode_reply(
    url: &str,
    status: u16,
    body: &[u8],
) -> Result<Vec<ResultSet>, ClientError> {
    let decode_error = |reason: String| ClientError::Decode {
        url: url.to_string(),
        reason,
    };
    let value: Value = serde_json::from_slice(body).map_err(|_| {
        decode_error(format!(
            "HTTP {status} with a body that is not JSON: {}",
            snippet(body)
        ))
    })?;
    match value {
        Value::Object(mut object) if object.contains_key("error") => {
            let message = match object.remove("error") {
                Some(Value::String(text)) => text,
                Some(other) => other.to_string(),
                None => String::new(),
            };
            Err(ClientError::Daemon { status, message })
        }
        Value::Array(sets) if (200..300).contains(&status) => sets
            .iter()
            .enumerate()
            .map(|(i, set)| {
                ResultSet::from_json(set).map_err(|e| decode_error(format!("result set {i}: {e}")))
            })
            .collect(),
        _ => Err(decode_error(format!(
            "HTTP {status} with neither result sets nor an error: {}",
            snippet(body)
        ))),
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(SNIPPET_CHARS).collect();
    if text.chars().nth(SNIPPET_CHARS).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_body_is_php_rawurlencode() {
        let cases = [
            ("SHOW TABLES", "query=SHOW%20TABLES"),
            ("a-b_c.d~e", "query=a-b_c.d~e"),
            ("x='1' + 2;*/\\", "query=x%3D%271%27%20%2B%202%3B%2A%2F%5C"),
            ("\n\t%&=?", "query=%0A%09%25%26%3D%3F"),
            ("é", "query=%C3%A9"),
            ("", "query="),
        ];
        for (sql, want) in cases {
            assert_eq!(form_body(sql), want);
        }
    }

    #[test]
    fn replies_decode_into_sets_or_typed_errors() {
        const URL: &str = "http://n1:9308/sql?mode=raw";
        let ok = decode_reply(
            URL,
            200,
            br#"[{"columns":[{"Table":{"type":"string"}}],"data":[{"Table":"t"}],"total":1,"error":"","warning":""},{"total":0,"error":"","warning":""}]"#,
        )
        .unwrap();
        assert_eq!(
            (ok.len(), ok[0].text(0, "Table").as_deref()),
            (2, Some("t"))
        );

        let daemon = |status: u16, message: &str| {
            Err(ClientError::Daemon {
                status,
                message: message.into(),
            })
        };
        let decode = |reason: &str| {
            Err(ClientError::Decode {
                url: URL.into(),
                reason: reason.into(),
            })
        };
        type Decoded = Result<Vec<ResultSet>, ClientError>;
        let cases: Vec<(u16, &[u8], Decoded)> = vec![
            (
                500,
                br#"{"error":"no such table 'x'"}"#,
                daemon(500, "no such table 'x'"),
            ),
            (
                200,
                br#"{"error":"odd but an error"}"#,
                daemon(200, "odd but an error"),
            ),
            (
                409,
                br#"{"error":{"reason":"r"},"status":409}"#,
                daemon(409, r#"{"reason":"r"}"#),
            ),
            (200, b"[]", Ok(vec![])),
            (
                200,
                b"<html>",
                decode("HTTP 200 with a body that is not JSON: <html>"),
            ),
            (502, b"", decode("HTTP 502 with a body that is not JSON: ")),
            (
                200,
                b"{\"a\":1}",
                decode("HTTP 200 with neither result sets nor an error: {\"a\":1}"),
            ),
            (
                500,
                b"[]",
                decode("HTTP 500 with neither result sets nor an error: []"),
            ),
            (
                200,
                b"[1]",
                decode("result set 0: result set is not a JSON object"),
            ),
        ];
        for (status, body, want) in cases {
            assert_eq!(
                decode_reply(URL, status, body),
                want,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn long_garbage_is_quoted_briefly() {
        let body = "x".repeat(1000);
        let Err(ClientError::Decode { reason, .. }) = decode_reply("u", 200, body.as_bytes())
        else {
            panic!("expected a decode error");
        };
        assert!(
            reason.ends_with(&format!("{}…", "x".repeat(SNIPPET_CHARS))),
            "{reason}"
        );
    }
}
