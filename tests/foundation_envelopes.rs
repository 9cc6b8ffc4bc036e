//! What shardbuddy answers to envelopes, through the real binary: every
//! request a real searchd sent its helper gets the "not mine" reply unless
//! it is a sharding statement, and every malformed envelope gets Buddy's
//! exact error text without hurting the process.

mod support;

use serde_json::{json, Value};
use support::golden::recorded_envelopes;
use support::http;
use support::process::Shardbuddy;

const SQL_TYPE: &str = "unknown sql request";

/// The reply a helper that handles nothing must give (spec §3.2): the
/// daemon's own error; for JSON requests its original error body if any.
fn expected_not_mine(envelope: &Value) -> String {
    let (response_type, message) = if envelope["type"] == SQL_TYPE {
        (
            "sql response",
            json!({ "error": envelope["error"]["message"] }),
        )
    } else if envelope["error"]["body"].is_null() {
        (
            "json response",
            json!({ "error": envelope["error"]["message"] }),
        )
    } else {
        ("json response", envelope["error"]["body"].clone())
    };
    json!({"version": 3, "type": response_type, "message": message, "meta": null, "error_code": 0})
        .to_string()
}

#[test]
fn every_recorded_searchd_request_gets_the_not_mine_reply() {
    let buddy = Shardbuddy::start(&["--log-level=debug"]);
    let recorded = recorded_envelopes();
    assert!(
        recorded.len() >= 20,
        "only {} recorded envelopes",
        recorded.len()
    );
    for envelope in &recorded {
        let headers: Vec<(&str, &str)> = envelope
            .headers
            .iter()
            .filter(|(name, _)| !matches!(name.as_str(), "Host" | "Content-Length"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reply = http::request(
            buddy.addr,
            "POST",
            &envelope.path,
            &headers,
            envelope.body.as_bytes(),
        );
        let parsed: Value = serde_json::from_str(&envelope.body).expect("recorded body is JSON");
        assert_eq!(reply.status, 200, "{}", envelope.item);
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{}",
            envelope.item
        );
        if envelope.is_sharding_statement() {
            // A sharding statement is answered by shardbuddy itself (here with
            // an error, as no searchd is listening), never passed back.
            let reply: Value = serde_json::from_str(&reply.text()).expect("reply is JSON");
            assert_eq!(reply["type"], "sql response", "{}", envelope.item);
            // Over HTTP /sql the daemon's own error status is kept (0), so
            // the client sees an error shaped like the daemon's own errors.
            let http_sql = parsed["message"]["path_query"]
                .as_str()
                .is_some_and(|p| p.starts_with("/sql"));
            let status = if http_sql { 0 } else { 200 };
            assert_eq!(reply["error_code"], status, "{}", envelope.item);
            assert!(reply["message"]["error"].is_string(), "{}", envelope.item);
            continue;
        }
        if envelope.is_console() {
            // Run on the daemon first: with none listening, that error is shown.
            let reply: Value = serde_json::from_str(&reply.text()).expect("reply is JSON");
            assert_eq!(reply["type"], "json response", "{}", envelope.item);
            let error = reply["message"]["error"].as_str().unwrap_or_default();
            assert!(error.starts_with("cannot connect to "), "{}", envelope.item);
            continue;
        }
        assert_eq!(
            reply.text(),
            expected_not_mine(&parsed),
            "{}",
            envelope.item
        );
    }
    let claimed_count = recorded
        .iter()
        .filter(|e| e.is_sharding_statement())
        .count();
    // The recordings hold CREATE … shards, CREATE/DROP c:t and SHOW SHARDING STATUS.
    assert!(claimed_count >= 4, "only {claimed_count} claimed envelopes");
    // Every request is logged at debug level with its Request-ID.
    assert!(
        buddy.output.wait_for("request_id={conn_id}_{crc}"),
        "{:?}",
        buddy.output.lines()
    );
}

#[test]
fn golden_shapes_are_what_the_spec_promises() {
    // Spot checks, written out, of the two acceptance examples.
    let buddy = Shardbuddy::start(&[]);
    let sql = r#"{"type":"unknown sql request","error":{"message":"P02: syntax error, unexpected identifier near 'SELEC 1'","body":null},"version":3,"user":"root","message":{"path_query":"","body":"SELEC 1","http_method":""}}"#;
    assert_eq!(
        http::post(buddy.addr, sql.as_bytes()).text(),
        r#"{"version":3,"type":"sql response","message":{"error":"P02: syntax error, unexpected identifier near 'SELEC 1'"},"meta":null,"error_code":0}"#
    );
    let insert = r#"{"type":"unknown json request","error":{"message":"table 'missing_table' absent","body":{"error":{"type":"action_request_validation_exception","reason":"table 'missing_table' absent","table":"missing_table"},"status":409}},"version":3,"user":"","message":{"path_query":"/insert","body":"{\"table\":\"missing_table\",\"id\":1,\"doc\":{\"a\":1}}","http_method":"POST"}}"#;
    assert_eq!(
        http::post(buddy.addr, insert.as_bytes()).text(),
        r#"{"version":3,"type":"json response","message":{"error":{"type":"action_request_validation_exception","reason":"table 'missing_table' absent","table":"missing_table"},"status":409},"meta":null,"error_code":0}"#
    );
}

/// A valid envelope with some fields replaced (`None` removes the field);
/// `path` is `field` or `parent.field`.
fn envelope_with(changes: &[(&str, Option<Value>)]) -> Vec<u8> {
    let mut envelope = json!({
        "type": SQL_TYPE,
        "error": {"message": "P02: syntax error", "body": null},
        "version": 3,
        "user": "root",
        "message": {"path_query": "", "body": "SELEC 1", "http_method": ""}
    });
    for (path, value) in changes {
        let (parent, field) = match path.split_once('.') {
            Some((parent, field)) => (&mut envelope[parent], field),
            None => (&mut envelope, *path),
        };
        let object = parent.as_object_mut().expect("object");
        match value {
            Some(v) => object.insert(field.to_string(), v.clone()),
            None => object.remove(field),
        };
    }
    serde_json::to_vec(&envelope).expect("serialize")
}

fn invalid_reply(response_type: &str, text: &str) -> String {
    json!({"version": 3, "type": response_type, "message": {"error": text}, "meta": null, "error_code": 400}).to_string()
}

#[test]
fn malformed_envelopes_get_exact_texts_and_the_process_survives() {
    let buddy = Shardbuddy::start(&[]);
    let ten_mb_garbage = vec![b'x'; 10 * 1024 * 1024];
    let deep_nesting = format!("{}{}", "[".repeat(200_000), "]".repeat(200_000)).into_bytes();
    let deep_in_field = String::from_utf8(envelope_with(&[]))
        .unwrap()
        .replace(
            r#""body":null"#,
            &format!(r#""body":{}{}"#, "[".repeat(1000), "]".repeat(1000)),
        )
        .into_bytes();
    let sql = "sql response";
    let json_type = "json response";
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        ("empty body", vec![], json_type, "The payload is missing"),
        (
            "whitespace",
            b"  \n".to_vec(),
            json_type,
            "Failed to parse request payload",
        ),
        (
            "truncated JSON",
            b"{\"type\":".to_vec(),
            json_type,
            "Failed to parse request payload",
        ),
        (
            "not JSON at all",
            b"type=unknown".to_vec(),
            json_type,
            "Failed to parse request payload",
        ),
        (
            "non-UTF-8",
            b"{\"type\":\"\xff\xfe\"}".to_vec(),
            json_type,
            "Failed to parse request payload",
        ),
        (
            "10 MB of garbage",
            ten_mb_garbage,
            json_type,
            "Failed to parse request payload",
        ),
        (
            "200k levels of nesting",
            deep_nesting,
            json_type,
            "Failed to parse request payload",
        ),
        (
            "JSON array",
            b"[]".to_vec(),
            json_type,
            "Invalid request payload is passed",
        ),
        (
            "JSON string",
            b"\"x\"".to_vec(),
            json_type,
            "Invalid request payload is passed",
        ),
        (
            "JSON number",
            b"3".to_vec(),
            json_type,
            "Invalid request payload is passed",
        ),
        (
            "JSON null",
            b"null".to_vec(),
            json_type,
            "Invalid request payload is passed",
        ),
        (
            "empty object",
            b"{}".to_vec(),
            json_type,
            "Mandatory field 'type' is missing",
        ),
        (
            "type is a number",
            envelope_with(&[("type", Some(json!(7)))]),
            json_type,
            "Field 'type' must be a string",
        ),
        (
            "no error",
            envelope_with(&[("error", None)]),
            sql,
            "Mandatory field 'error' is missing",
        ),
        (
            "error is a v2 string",
            envelope_with(&[("error", Some(json!("text")))]),
            sql,
            "Field 'error' must be a array",
        ),
        (
            "no message",
            envelope_with(&[("message", None)]),
            sql,
            "Mandatory field 'message' is missing",
        ),
        (
            "message is a list",
            envelope_with(&[("message", Some(json!(["x"])))]),
            sql,
            "Field 'message' must be a array",
        ),
        (
            "no path_query",
            envelope_with(&[("message.path_query", None)]),
            sql,
            "Mandatory field 'path_query' is missing",
        ),
        (
            "path_query is a number",
            envelope_with(&[("message.path_query", Some(json!(1)))]),
            sql,
            "Field 'path_query' must be a string",
        ),
        (
            "no body",
            envelope_with(&[("message.body", None)]),
            sql,
            "Mandatory field 'body' is missing",
        ),
        (
            "body is an object",
            envelope_with(&[("message.body", Some(json!({"q": 1})))]),
            sql,
            "Field 'body' must be a string",
        ),
        (
            "no version",
            envelope_with(&[("version", None)]),
            sql,
            "Mandatory field 'version' is missing",
        ),
        (
            "version is a string",
            envelope_with(&[("version", Some(json!("3")))]),
            sql,
            "Field 'version' must be a integer",
        ),
        (
            "version is a float",
            envelope_with(&[("version", Some(json!(3.5)))]),
            sql,
            "Field 'version' must be a integer",
        ),
        (
            "version 2",
            envelope_with(&[("version", Some(json!(2)))]),
            sql,
            "Buddy protocol version expects '3' but got '2'",
        ),
        (
            "version 4",
            envelope_with(&[("version", Some(json!(4)))]),
            sql,
            "Buddy protocol version expects '3' but got '4'",
        ),
        (
            "unknown type",
            envelope_with(&[("type", Some(json!("unknown xml request")))]),
            json_type,
            "Do not know how to handle 'unknown xml request' type",
        ),
        (
            "path_query is not a path",
            envelope_with(&[("message.path_query", Some(json!("cli")))]),
            sql,
            "Do not know how to handle 'cli' path_query",
        ),
        (
            "user is a number",
            envelope_with(&[("user", Some(json!(0)))]),
            sql,
            "Field 'user' must be a string",
        ),
        (
            "http_method is a list",
            envelope_with(&[("message.http_method", Some(json!([])))]),
            sql,
            "Field 'message.http_method' must be a string",
        ),
        (
            "error.message is an object",
            envelope_with(&[("error.message", Some(json!({})))]),
            sql,
            "Field 'error.message' must be a string",
        ),
        (
            "deep nesting inside a field",
            deep_in_field,
            json_type,
            "Failed to parse request payload",
        ),
    ];
    assert!(cases.len() >= 20);
    for (what, body, response_type, text) in &cases {
        let reply = http::post(buddy.addr, body);
        assert_eq!(reply.status, 200, "{what}");
        assert_eq!(reply.text(), invalid_reply(response_type, text), "{what}");
    }

    // Still alive and answering normally.
    let reply = http::post(buddy.addr, &envelope_with(&[]));
    assert_eq!(
        reply.text(),
        r#"{"version":3,"type":"sql response","message":{"error":"P02: syntax error"},"meta":null,"error_code":0}"#
    );
}

#[test]
fn a_ten_megabyte_statement_is_processed() {
    let buddy = Shardbuddy::start(&[]);
    let statement = format!("INSERT INTO t VALUES {}", "(1,'abc'),".repeat(1024 * 1024));
    let body = envelope_with(&[
        ("message.body", Some(json!(statement))),
        ("error.message", Some(json!("big"))),
    ]);
    assert!(body.len() > 10 * 1024 * 1024);
    let reply = http::post(buddy.addr, &body);
    assert_eq!(reply.json()["message"], json!({"error": "big"}));
    assert_eq!(reply.json()["error_code"], json!(0));
}

#[test]
fn bodies_over_the_limit_are_refused_without_reading_them_all() {
    let buddy = Shardbuddy::start(&["--max-body-size=1048576"]);
    let body = envelope_with(&[("message.body", Some(json!("x".repeat(2 * 1024 * 1024))))]);
    let reply = http::post(buddy.addr, &body);
    assert_eq!(reply.status, 413);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(
        reply.json(),
        json!({"error": "request body is larger than 1048576 bytes; raise --max-body-size to accept it"})
    );
    // A request within the limit still works.
    assert_eq!(
        http::post(buddy.addr, &envelope_with(&[])).json()["error_code"],
        json!(0)
    );
}

/// A 50 MB body that is not JSON to its end: a 52 MB array of zeros once
/// peaked at 1.9 GB (the body became a JSON tree before the envelope was
/// checked), and an object of 5M keys left 170 MB held afterwards.
fn fifty_megabytes_of_malformed_json() -> [(&'static str, Vec<u8>); 2] {
    let mut array = b"[".to_vec();
    array.extend(std::iter::repeat_n(*b"0,", 25 * 1024 * 1024).flatten());
    let mut object = b"{".to_vec();
    for i in 0..3_900_000 {
        object.extend(format!("\"k{i:07}\":0,").as_bytes());
    }
    [("array", array), ("object", object)]
}

/// Sends `body` with chunked transfer coding (no declared length).
fn post_chunked(addr: std::net::SocketAddr, body: &[u8]) -> http::HttpReply {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(support::HANG_TIMEOUT))
        .expect("timeout");
    let head =
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n";
    let mut sent = stream.write_all(head.as_bytes());
    for chunk in body.chunks(1024 * 1024) {
        if sent.is_err() {
            break;
        }
        sent = stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|()| stream.write_all(chunk))
            .and_then(|()| stream.write_all(b"\r\n"));
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no reply: {text:?}"));
    http::HttpReply {
        status,
        headers: Vec::new(),
        body: Vec::new(),
    }
}

/// Defect 3: memory amplification on the helper port. A helper receiving a
/// 50 MB malformed body peaks under 150 MB resident and returns within
/// 10 MB of its idle size, with the default limit (the body is refused)
/// and with a limit that lets it be read and parsed.
#[test]
fn defect_3_memory_amplification_on_the_helper_port() {
    const MIB: u64 = 1024;
    for flags in [&[][..], &["--max-body-size=67108864"][..]] {
        let buddy = Shardbuddy::start(flags);
        // A first request, so what every request allocates is in the idle size.
        assert_eq!(http::post(buddy.addr, &envelope_with(&[])).status, 200);
        let idle = buddy.memory_kib("VmRSS");
        for (shape, body) in fifty_megabytes_of_malformed_json() {
            assert!(body.len() >= 50_000_000, "{shape}: {}", body.len());
            for chunked in [false, true] {
                buddy.reset_peak_memory();
                let reply = if chunked {
                    post_chunked(buddy.addr, &body)
                } else {
                    http::post(buddy.addr, &body)
                };
                let want = if flags.is_empty() { 413 } else { 200 };
                assert_eq!(reply.status, want, "{flags:?} {shape} chunked={chunked}");
                if !flags.is_empty() && !chunked {
                    assert_eq!(
                        reply.text(),
                        invalid_reply("json response", "Failed to parse request payload")
                    );
                }
                let peak = buddy.memory_kib("VmHWM");
                assert!(
                    peak < 150 * MIB,
                    "{flags:?} {shape} chunked={chunked}: peak {} MB",
                    peak / MIB
                );
                let settled = support::process::poll(support::HANG_TIMEOUT, || {
                    buddy.memory_kib("VmRSS") < idle + 10 * MIB
                });
                assert!(
                    settled,
                    "{flags:?} {shape} chunked={chunked}: {} MB held after the reply, {} MB idle",
                    buddy.memory_kib("VmRSS") / MIB,
                    idle / MIB
                );
            }
        }
    }
}
