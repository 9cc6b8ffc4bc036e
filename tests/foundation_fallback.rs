//! The fallback chain: requests shardbuddy does not handle go, verbatim, to
//! another Buddy, whose reply is relayed; without a reachable fallback the
//! daemon's own error comes back.

mod support;

use serde_json::json;
use support::fake_http::{FakeHttp, FakeReply};
use support::golden::recorded_envelopes;
use support::http;
use support::process::Shardbuddy;

const OTHER_BUDDY_REPLY: &str = r#"{"version":3,"type":"sql response","message":[{"total":0,"error":"","warning":""}],"meta":null,"error_code":200}"#;

#[test]
fn unclaimed_envelopes_reach_the_other_buddy_verbatim_and_its_reply_is_relayed() {
    let other = FakeHttp::replying(FakeReply::new(200, OTHER_BUDDY_REPLY));
    let buddy = Shardbuddy::start(&[&format!("--fallback-url={}", other.url())]);
    // Sharding statements are shardbuddy's own; everything else goes on.
    let envelopes: Vec<_> = recorded_envelopes()
        .into_iter()
        .filter(|e| !e.is_sharding_statement())
        .collect();
    assert!(
        envelopes.len() >= 12,
        "only {} unclaimed envelopes",
        envelopes.len()
    );
    for envelope in &envelopes {
        let headers: Vec<(&str, &str)> = envelope
            .headers
            .iter()
            .filter(|(name, _)| name == "Request-ID" || name == "Content-Type")
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let reply = http::request(buddy.addr, "POST", "/", &headers, envelope.body.as_bytes());
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (200, OTHER_BUDDY_REPLY),
            "{}",
            envelope.item
        );
    }

    let received = other.requests();
    assert_eq!(received.len(), envelopes.len());
    for (got, sent) in received.iter().zip(&envelopes) {
        assert_eq!((got.method.as_str(), got.target.as_str()), ("POST", "/"));
        assert_eq!(
            String::from_utf8_lossy(&got.body),
            sent.body,
            "{}",
            sent.item
        );
        assert_eq!(got.header("Request-ID"), Some("{conn_id}_{crc}"));
        assert_eq!(
            got.header("Content-Type"),
            Some("application/json; charset=UTF-8")
        );
    }
}

#[test]
fn the_fallback_status_and_body_are_kept() {
    let other = FakeHttp::replying(FakeReply::new(500, r#"{"error":"plugin crashed"}"#));
    let buddy = Shardbuddy::start_with_env(&[], &[("SHARDBUDDY_FALLBACK_URL", &other.url())]);
    let envelope = r#"{"type":"unknown json request","error":{"message":"m","body":null},"version":3,"message":{"path_query":"/cli","body":"SHOW TABLES","http_method":"POST"}}"#;
    let reply = http::post(buddy.addr, envelope.as_bytes());
    assert_eq!(
        (reply.status, reply.text().as_str()),
        (500, r#"{"error":"plugin crashed"}"#)
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(other.requests().len(), 1);
}

#[test]
fn a_sharding_statement_on_the_console_is_never_left_to_the_fallback() {
    let other = FakeHttp::replying(FakeReply::new(200, OTHER_BUDDY_REPLY));
    let buddy = Shardbuddy::start(&[&format!("--fallback-url={}", other.url())]);
    let envelope = r#"{"type":"unknown json request","error":{"message":"","body":null},"version":3,"message":{"path_query":"/cli","body":"SHOW SHARDING STATUS","http_method":"POST"}}"#;
    let reply: serde_json::Value =
        serde_json::from_str(&http::post(buddy.addr, envelope.as_bytes()).text()).unwrap();
    // shardbuddy ran it itself: on the daemon first, which is not listening here.
    assert_eq!(reply["type"], "json response");
    let error = reply["message"]["error"].as_str().unwrap_or_default();
    assert!(error.starts_with("cannot connect to "), "{reply}");
    assert!(other.requests().is_empty());
}

#[test]
fn an_unreachable_fallback_gives_the_daemons_own_error() {
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let buddy = Shardbuddy::start(&[&format!("--fallback-url=127.0.0.1:{closed_port}")]);
    let envelope = r#"{"type":"unknown sql request","error":{"message":"P02: syntax error","body":null},"version":3,"message":{"path_query":"","body":"SELEC 1"}}"#;
    let reply = http::post(buddy.addr, envelope.as_bytes());
    assert_eq!(
        reply.text(),
        r#"{"version":3,"type":"sql response","message":{"error":"P02: syntax error"},"meta":null,"error_code":0}"#
    );
    assert!(
        buddy.output.wait_for("the fallback Buddy failed"),
        "{:?}",
        buddy.output.lines()
    );
}

#[test]
fn malformed_envelopes_are_answered_here_not_forwarded() {
    let other = FakeHttp::replying(FakeReply::new(200, OTHER_BUDDY_REPLY));
    let buddy = Shardbuddy::start(&[&format!("--fallback-url={}", other.url())]);
    let reply = http::post(buddy.addr, br#"{"type":"unknown sql request","error":{},"version":2,"message":{"path_query":"","body":""}}"#);
    assert_eq!(
        reply.json()["message"],
        json!({"error": "Buddy protocol version expects '3' but got '2'"})
    );
    assert!(other.requests().is_empty());
}
