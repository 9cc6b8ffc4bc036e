//! `shardbuddy proxy`'s own errors: an address it cannot listen on, nodes
//! it cannot reach, prepared statements.

mod sharding_support;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder};
use sharding_support::proxy::Proxy;

/// A port nothing listens on: bound, then freed.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A proxy on a free port whose only node is not running; returns it and
/// its address.
fn proxy_without_nodes() -> (Child, String) {
    proxy_in_front_of(&format!("127.0.0.1:{}", closed_port()))
}

/// A proxy on a free port in front of `node`; returns it and its address
/// (from the first line it prints).
fn proxy_in_front_of(node: &str) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardbuddy"))
        .args(["proxy", "--listen", "127.0.0.1:0", "--node", node])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the proxy starts");
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("shardbuddy proxy listening on ")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_string();
    (child, addr)
}

#[tokio::test]
async fn a_client_no_node_can_serve_is_told_which_nodes_to_check() {
    let (mut child, addr) = proxy_without_nodes();
    let (host, port) = addr.rsplit_once(':').unwrap();
    let opts = OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port.parse().unwrap())
        .user(Some("root"));
    let err = Conn::new(opts).await.expect_err("refused").to_string();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        err.contains("no node of the cluster can be reached (127.0.0.1:"),
        "{err}"
    );
    assert!(
        err.contains("); check that the nodes given with --node are running"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prepared_statements_are_refused_with_what_to_send_instead() {
    let node = sharding_support::start(0, &[]);
    let proxy = Proxy::start(&[&node], &[]);
    let mut conn = Conn::new(Opts::from_url(&proxy.url()).unwrap())
        .await
        .expect("a connection through the proxy");
    let answer: Option<u64> = conn.query_first("SELECT 1").await.unwrap();
    assert_eq!(answer, Some(1), "text statements go through");
    let err = conn.prep("SELECT 1").await.unwrap_err().to_string();
    assert!(
        err.contains(
            "prepared statements are not supported through the proxy; send the statement as text"
        ),
        "{err}"
    );
}

#[test]
fn an_address_in_use_is_refused_with_the_option_to_change() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = Command::new(env!("CARGO_BIN_EXE_shardbuddy"))
        .args([
            "proxy",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--node",
            "127.0.0.1:9306",
        ])
        .output()
        .expect("the proxy runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with(&format!(
            "shardbuddy proxy: cannot listen on 127.0.0.1:{port}: "
        )),
        "{stderr}"
    );
    assert!(
        stderr
            .trim_end()
            .ends_with("; choose another address with --listen"),
        "{stderr}"
    );
}

/// A MySQL server that answers every statement with an empty OK, except an
/// `INSERT`, during which it goes away.
struct DropsWrites;

#[async_trait::async_trait]
impl<W: tokio::io::AsyncWrite + Send + Unpin> opensrv_mysql::AsyncMysqlShim<W> for DropsWrites {
    type Error = std::io::Error;

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        _info: opensrv_mysql::StatementMetaWriter<'a, W>,
    ) -> std::io::Result<()> {
        Err(std::io::Error::other("no prepared statements here"))
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: opensrv_mysql::ParamParser<'a>,
        _results: opensrv_mysql::QueryResultWriter<'a, W>,
    ) -> std::io::Result<()> {
        Err(std::io::Error::other("no prepared statements here"))
    }

    async fn on_close(&mut self, _stmt: u32) {}

    async fn on_query<'a>(
        &'a mut self,
        query: &'a str,
        results: opensrv_mysql::QueryResultWriter<'a, W>,
    ) -> std::io::Result<()> {
        if query.starts_with("INSERT") {
            return Err(std::io::Error::other("the node goes away"));
        }
        results
            .completed(opensrv_mysql::OkResponse::default())
            .await
    }
}

#[tokio::test]
async fn a_write_whose_node_goes_away_may_have_run_and_is_said_so() {
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let node = backend.local_addr().unwrap().to_string();
    let server = tokio::spawn(async move {
        loop {
            let (stream, _) = backend.accept().await.unwrap();
            tokio::spawn(async move {
                let (read, write) = stream.into_split();
                let _ =
                    opensrv_mysql::AsyncMysqlIntermediary::run_on(DropsWrites, read, write).await;
            });
        }
    });
    let (mut child, addr) = proxy_in_front_of(&node);
    let mut conn = Conn::new(Opts::from_url(&format!("mysql://root@{addr}")).unwrap())
        .await
        .expect("a connection through the proxy");
    let err = conn
        .query_drop("INSERT INTO t (id) VALUES (1)")
        .await
        .unwrap_err()
        .to_string();
    child.kill().unwrap();
    child.wait().unwrap();
    server.abort();
    assert!(
        err.contains(&format!(
            "node {node} went away while running the statement, which may or may not have taken \
             effect; check and run it again if needed"
        )),
        "{err}"
    );
}
