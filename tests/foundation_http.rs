//! The HTTP surface besides envelopes: `/config` (spec §1.8), methods other
//! than POST, and the run-time log level.

mod support;

use serde_json::json;
use support::http::{self, HttpReply};
use support::process::Shardbuddy;

fn config(buddy: &Shardbuddy, method: &str, body: &str) -> HttpReply {
    http::request(
        buddy.addr,
        method,
        "/config",
        &[("Content-Type", "application/json; charset=UTF-8")],
        body.as_bytes(),
    )
}

#[test]
fn config_reads_and_sets_the_log_level() {
    let buddy = Shardbuddy::start(&["--log-level=debugvv"]);
    let get = config(&buddy, "GET", "");
    assert_eq!(
        (get.status, get.text().as_str()),
        (200, r#"{"log_level":"debugvv"}"#)
    );
    assert_eq!(get.header("content-type"), Some("application/json"));

    for level in ["debug", "debugv", "info"] {
        let set = config(&buddy, "POST", &format!(r#"{{"log_level":"{level}"}}"#));
        assert_eq!(
            (set.status, set.json()),
            (200, json!({ "log_level": level }))
        );
        assert_eq!(
            config(&buddy, "GET", "").json(),
            json!({ "log_level": level })
        );
    }
}

#[test]
fn bad_config_changes_are_refused_and_change_nothing() {
    let buddy = Shardbuddy::start(&[]);
    let cases = [
        (
            r#"{"log_level":"verbose"}"#,
            "'verbose' is not a log level: expected info, debug, debugv or debugvv",
        ),
        (r#"{"log_level":2}"#, "Field 'log_level' must be a string"),
        (
            r#"{"level":"debug"}"#,
            "Mandatory field 'log_level' is missing",
        ),
        ("log_level=debug", "Failed to parse config payload"),
    ];
    for (body, text) in cases {
        let reply = config(&buddy, "POST", body);
        assert_eq!(reply.status, 500, "{body}");
        assert_eq!(reply.json(), json!({"error": text, "code": 500}), "{body}");
    }
    assert_eq!(
        config(&buddy, "GET", "").json(),
        json!({"log_level": "info"})
    );
}

#[test]
fn a_config_change_too_large_to_read_is_refused() {
    let buddy = Shardbuddy::start(&[]);
    let body = format!(r#"{{"log_level":"debug","pad":"{}"}}"#, "x".repeat(70_000));
    let reply = config(&buddy, "POST", &body);
    assert_eq!(reply.status, 500);
    assert_eq!(
        reply.json(),
        json!({"error": "Failed to read config payload", "code": 500})
    );
    assert_eq!(
        config(&buddy, "GET", "").json(),
        json!({"log_level": "info"})
    );
}

#[test]
fn other_methods_on_config_are_not_allowed() {
    let buddy = Shardbuddy::start(&[]);
    for method in ["PUT", "DELETE", "PATCH"] {
        let reply = config(&buddy, method, r#"{"log_level":"debug"}"#);
        assert_eq!(reply.status, 405, "{method}");
        assert_eq!(reply.header("allow"), Some("GET, POST"), "{method}");
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{method}"
        );
    }
    assert_eq!(
        config(&buddy, "GET", "").json(),
        json!({"log_level": "info"})
    );
}

#[test]
fn non_post_requests_elsewhere_get_an_empty_400() {
    let buddy = Shardbuddy::start(&[]);
    for (method, path) in [
        ("GET", "/"),
        ("PUT", "/"),
        ("DELETE", "/sql"),
        ("GET", "/config/x"),
    ] {
        let reply = http::request(buddy.addr, method, path, &[], b"");
        assert_eq!(reply.status, 400, "{method} {path}");
        assert!(reply.body.is_empty(), "{method} {path}");
        assert_eq!(reply.header("content-type"), Some("application/json"));
    }
}

#[test]
fn envelopes_are_accepted_on_any_path() {
    let buddy = Shardbuddy::start(&[]);
    let envelope = r#"{"type":"unknown sql request","error":{"message":"e","body":null},"version":3,"message":{"path_query":"","body":"x"}}"#;
    for path in ["/", "/anything", "/sql?mode=raw", "/config2"] {
        let reply = http::request(buddy.addr, "POST", path, &[], envelope.as_bytes());
        assert_eq!(reply.json()["message"], json!({"error": "e"}), "{path}");
    }
}

#[test]
fn the_log_level_changes_at_run_time() {
    let buddy = Shardbuddy::start(&[]);
    let envelope = |id: &str| {
        let reply = http::request(
            buddy.addr,
            "POST",
            "/",
            &[("Request-ID", id)],
            br#"{"type":"unknown sql request","error":{"message":"e","body":null},"version":3,"message":{"path_query":"","body":"x"}}"#,
        );
        assert_eq!(reply.status, 200);
    };
    envelope("7_quiet");
    assert_eq!(
        config(&buddy, "POST", r#"{"log_level":"debug"}"#).status,
        200
    );
    envelope("8_loud");
    assert!(
        buddy.output.wait_for("request_id=8_loud"),
        "{:?}",
        buddy.output.lines()
    );
    let lines = buddy.output.lines();
    assert!(!lines.iter().any(|l| l.contains("7_quiet")), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("log level changed") && l.contains("debug")),
        "{lines:?}"
    );
}

const ENVELOPE: &[u8] = br#"{"type":"unknown sql request","error":{"message":"e","body":null},"version":3,"message":{"path_query":"","body":"x"}}"#;

#[test]
fn failpoints_are_set_at_start_and_through_config() {
    let buddy = Shardbuddy::start_with_env(
        &[],
        &[(
            "SHARDBUDDY_FAILPOINTS",
            "helper.received=error(refused here)",
        )],
    );
    let refused = http::post(buddy.addr, ENVELOPE);
    assert_eq!(refused.json()["message"], json!({"error": "refused here"}));
    assert_eq!(
        config(&buddy, "GET", "").json(),
        json!({"log_level": "info", "failpoints": "helper.received=error(refused here)"})
    );
    // Replaced at run time, then cleared: the request path works again.
    let set = config(
        &buddy,
        "POST",
        r#"{"failpoints":"helper.received=delay(1),executor.before_run=abort"}"#,
    );
    assert_eq!(
        set.json(),
        json!({"log_level": "info", "failpoints": "executor.before_run=abort,helper.received=delay(1)"})
    );
    assert_eq!(
        http::post(buddy.addr, ENVELOPE).json()["message"],
        json!({"error": "e"})
    );
    let bad = config(
        &buddy,
        "POST",
        r#"{"failpoints":"helper.received=explode"}"#,
    );
    assert_eq!(
        (bad.status, bad.json()["error"].clone()),
        (
            500,
            json!("'explode' is not an action; expected panic, abort, error(<text>), delay(<ms>), hang or off")
        )
    );
    assert_eq!(
        config(&buddy, "POST", r#"{"failpoints":""}"#).json(),
        json!({"log_level": "info"})
    );
}

#[test]
fn an_abort_failpoint_ends_the_process_at_once() {
    let mut buddy =
        Shardbuddy::start_with_env(&[], &[("SHARDBUDDY_FAILPOINTS", "helper.received=abort")]);
    assert!(http::try_request(buddy.addr, "POST", "/", &[], ENVELOPE).is_err());
    let status = buddy
        .wait_exit(support::HANG_TIMEOUT)
        .expect("the process ended");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9), "{status:?}: ended as by kill -9");
}

#[test]
fn a_bad_failpoint_setting_stops_the_start() {
    let output = std::process::Command::new(support::process::BINARY)
        .env("SHARDBUDDY_FAILPOINTS", "nowhere=abort")
        .output()
        .expect("run shardbuddy");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("invalid value 'nowhere=abort' of SHARDBUDDY_FAILPOINTS: there is no failpoint 'nowhere'"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no handshake");
}
