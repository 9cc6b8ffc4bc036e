//! The daemon client against a recording stand-in for searchd: the request
//! on the wire byte for byte, reply decoding, time limits and failures.

mod support;

use std::net::TcpListener;
use std::time::Duration;

use shardbuddy::client::{ClientConfig, ClientError, DaemonClient};
use shardbuddy::ids::NodeId;
use support::fake_http::{FakeHttp, FakeReply};

const EMPTY_OK: &str = r#"[{"total":0,"error":"","warning":""}]"#;

fn client(base_url: &str, token: Option<&str>) -> DaemonClient {
    DaemonClient::new(ClientConfig {
        base_url: base_url.to_string(),
        token: token.map(str::to_string),
        timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(2),
    })
}

fn header_lines(request: &support::fake_http::Recorded) -> Vec<String> {
    request
        .headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect()
}

#[tokio::test]
async fn the_request_is_buddys_byte_for_byte() {
    let searchd = FakeHttp::replying(FakeReply::new(200, EMPTY_OK));
    let sql = "SELECT * FROM t WHERE title = 'a b' -- é;\n+~";
    client(&format!("{}/", searchd.url()), Some("s3cr3t"))
        .as_user("alice")
        .query(sql)
        .await
        .expect("query");

    let requests = searchd.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(
        (request.method.as_str(), request.target.as_str()),
        ("POST", "/sql?mode=raw")
    );
    let body =
        "query=SELECT%20%2A%20FROM%20t%20WHERE%20title%20%3D%20%27a%20b%27%20--%20%C3%A9%3B%0A%2B~";
    assert_eq!(String::from_utf8_lossy(&request.body), body);
    assert_eq!(
        header_lines(request),
        [
            "Content-Type: application/x-www-form-urlencoded".to_string(),
            format!("User-Agent: Manticore Buddy/{}", env!("CARGO_PKG_VERSION")),
            "X-Manticore-User: alice".to_string(),
            "Authorization: Bearer s3cr3t".to_string(),
            "Connection: keep-alive".to_string(),
            format!("Host: {}", searchd.addr),
            format!("Content-Length: {}", body.len()),
        ]
    );
}

#[tokio::test]
async fn identity_headers_follow_the_client() {
    let searchd = FakeHttp::replying(FakeReply::new(200, EMPTY_OK));
    let base = client(&searchd.url(), None);
    base.query("SHOW TABLES").await.unwrap();
    base.as_system().query("SHOW TABLES").await.unwrap();
    base.as_system()
        .as_user("")
        .query("SHOW TABLES")
        .await
        .unwrap();
    client(&searchd.url(), Some(""))
        .query("SHOW TABLES")
        .await
        .unwrap();

    let seen: Vec<(Option<String>, Option<String>)> = searchd
        .requests()
        .iter()
        .map(|r| {
            (
                r.header("X-Manticore-User").map(str::to_string),
                r.header("Authorization").map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (None, None),
            (Some("system.buddy".into()), None),
            (None, None),
            (None, None)
        ]
    );
}

#[tokio::test]
async fn calls_share_one_keep_alive_connection_and_other_nodes_keep_the_token() {
    let searchd = FakeHttp::replying(FakeReply::new(200, EMPTY_OK));
    let other_node = FakeHttp::replying(FakeReply::new(200, EMPTY_OK));
    let local =
        client("http://127.0.0.1:1", Some("tok")).for_node(&NodeId::new(searchd.addr.to_string()));
    assert_eq!(local.base_url(), searchd.url());
    for _ in 0..3 {
        local.query("SELECT 1").await.unwrap();
    }
    let connections: Vec<usize> = searchd.requests().iter().map(|r| r.connection).collect();
    assert_eq!(connections, [0, 0, 0]);

    local
        .for_node(&NodeId::new(other_node.addr.to_string()))
        .as_system()
        .query("SELECT 2")
        .await
        .unwrap();
    let request = &other_node.requests()[0];
    assert_eq!(request.header("Authorization"), Some("Bearer tok"));
    assert_eq!(request.header("X-Manticore-User"), Some("system.buddy"));
}

#[tokio::test]
async fn result_sets_are_decoded() {
    let reply = r#"[{"columns":[{"Table":{"type":"string"}},{"Type":{"type":"string"}}],"data":[{"Table":"t","Type":"rt"},{"Table":"s","Type":"shard"}],"total":2,"error":"","warning":""},{"total":0,"error":"","warning":"w"}]"#;
    let searchd = FakeHttp::replying(FakeReply::new(200, reply));
    let client = client(&searchd.url(), None);
    let sets = client.query("SHOW TABLES; SHOW WARNINGS").await.unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(
        (sets[0].total, sets[0].text(1, "Type").as_deref()),
        (2, Some("shard"))
    );
    assert_eq!(sets[1].warning, "w");
    let first = client.query_one("SHOW TABLES").await.unwrap();
    assert_eq!(first, sets[0]);
}

#[tokio::test]
async fn errors_are_typed() {
    type Check = Box<dyn Fn(&ClientError) -> bool>;
    let cases: Vec<(FakeReply, Check)> = vec![
        (
            FakeReply::new(500, r#"{"error":"no such table 'nope'"}"#),
            Box::new(|e| {
                *e == ClientError::Daemon {
                    status: 500,
                    message: "no such table 'nope'".into(),
                } && e.to_string() == "no such table 'nope'"
            }),
        ),
        (
            FakeReply::new(
                200,
                r#"[{"total":0,"error":"table 's' is a part of cluster 'c'","warning":""}]"#,
            ),
            Box::new(|e| e.daemon_message() == Some("table 's' is a part of cluster 'c'")),
        ),
        (
            FakeReply::new(200, "<html>oops</html>"),
            Box::new(
                |e| matches!(e, ClientError::Decode { reason, .. } if reason.contains("<html>oops</html>")),
            ),
        ),
        (
            FakeReply::new(503, ""),
            Box::new(
                |e| matches!(e, ClientError::Decode { reason, .. } if reason.starts_with("HTTP 503")),
            ),
        ),
        (
            FakeReply::new(200, "[]"),
            Box::new(
                |e| matches!(e, ClientError::Decode { reason, .. } if reason == "the reply holds no result set"),
            ),
        ),
    ];
    for (reply, check) in cases {
        let searchd = FakeHttp::replying(reply.clone());
        let err = client(&searchd.url(), None)
            .query_one("DESC nope")
            .await
            .unwrap_err();
        assert!(check(&err), "{reply:?} gave {err:?}");
        assert!(!err.is_transient(), "{err:?}");
    }
}

#[tokio::test]
async fn slow_daemons_time_out() {
    let searchd = FakeHttp::replying(FakeReply::new(200, EMPTY_OK).delayed(Duration::from_secs(5)));
    let client = DaemonClient::new(ClientConfig {
        base_url: searchd.url(),
        token: None,
        timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_secs(2),
    });
    let err = client.query("SELECT SLEEP(5)").await.unwrap_err();
    assert_eq!(
        err,
        ClientError::Timeout {
            url: format!("{}/sql?mode=raw", searchd.url()),
            after: Duration::from_millis(300)
        }
    );
    assert!(err.is_transient());
}

#[tokio::test]
async fn refused_connections_are_connect_errors() {
    let closed_port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let err = client(&format!("http://127.0.0.1:{closed_port}"), None)
        .query("SELECT 1")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Connect { url, .. } if url.ends_with("/sql?mode=raw")),
        "{err:?}"
    );
    assert!(err.is_transient());
    assert_eq!(err.daemon_message(), None);
}

#[tokio::test]
async fn bad_node_addresses_fail_without_sending() {
    let err = client("http://127.0.0.1:9308", None)
        .for_node(&NodeId::new("not a host"))
        .query("SELECT 1")
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Connect { .. }), "{err:?}");
}

/// searchd closes the connection after every reply that is not 2xx (golden
/// facts §6): a client that put such a connection back would fail the next
/// call on it.
#[tokio::test]
async fn connections_closed_after_error_replies_are_never_reused() {
    let searchd = FakeHttp::start(|request| {
        if String::from_utf8_lossy(&request.body).contains("nosuch") {
            FakeReply::new(500, r#"{"error":"no such table 'nosuch'"}"#)
        } else {
            FakeReply::new(200, EMPTY_OK)
        }
    });
    let client = client(&searchd.url(), None);
    let (mut transport_errors, mut daemon_errors, mut successes) = (0, 0, 0);
    for i in 0..1000 {
        let (sql, is_read) = match i % 4 {
            0 => ("DESC nosuch", true),
            1 => ("SELECT 1", true),
            2 => ("INSERT INTO nosuch VALUES (1)", false),
            _ => ("REPLACE INTO t VALUES (1)", false),
        };
        match client.query(sql).await {
            Ok(_) => successes += 1,
            Err(e) if e.daemon_message().is_some() => daemon_errors += 1,
            Err(e) => {
                transport_errors += 1;
                eprintln!("call {i} ({sql}, read: {is_read}): {e}");
            }
        }
    }
    assert_eq!((transport_errors, daemon_errors, successes), (0, 500, 500));
    // Every error reply ended its connection; successes reused theirs.
    let requests = searchd.requests();
    assert_eq!(requests.len(), 1000, "no request was sent twice");
    let connections: std::collections::BTreeSet<usize> =
        requests.iter().map(|r| r.connection).collect();
    assert_eq!(connections.len(), 501);
}

/// A reused connection that the server closes as the request arrives: a read
/// is sent again on a fresh connection, a write is not (its outcome is
/// unknown, and the caller must find out by reading).
#[tokio::test]
async fn a_stale_connection_replays_reads_only() {
    // The second request on any connection finds it closing.
    let flaky = FakeHttp::start(|request| {
        if request.on_connection == 0 {
            FakeReply::new(200, EMPTY_OK)
        } else {
            FakeReply::hang_up()
        }
    });
    let client = client(&flaky.url(), None);
    client.query("SELECT 1").await.expect("first call");
    client.query("SELECT 2").await.expect("a read is replayed");
    let err = client.query("INSERT INTO t VALUES (1)").await.unwrap_err();
    assert!(
        matches!(err, ClientError::Disconnected { .. }),
        "a write whose outcome is unknown is reported, not replayed: {err:?}"
    );
    let bodies: Vec<(usize, String)> = flaky
        .requests()
        .iter()
        .map(|r| (r.connection, String::from_utf8_lossy(&r.body).into_owned()))
        .collect();
    assert_eq!(
        bodies,
        [
            (0, "query=SELECT%201".to_string()),
            (0, "query=SELECT%202".to_string()),
            (1, "query=SELECT%202".to_string()),
            (1, "query=INSERT%20INTO%20t%20VALUES%20%281%29".to_string()),
        ]
    );
}
