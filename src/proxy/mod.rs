//! `shardbuddy proxy`: one MySQL endpoint for the whole cluster.
//!
//! Clients connect to the proxy as to searchd; each connection is relayed to
//! one healthy node for its life ([`session`]), and moves to another node
//! when its node goes away. The nodes are the `--node` seeds plus every
//! member their clusters list ([`backends`]). Nodes without a helper get
//! one inside the proxy ([`local`]), so sharding statements work there too.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use opensrv_mysql::AsyncMysqlIntermediary;
use tokio::io::BufWriter;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{BindAddr, LogLevel};
use crate::handler::Reply;

pub mod backends;
pub mod local;
pub mod metrics;
pub mod session;

use backends::Backends;
use local::LocalHelpers;
use metrics::{ProxyMetrics, ProxySource};

/// How often the nodes are probed and their clusters' members looked up.
const REFRESH: Duration = Duration::from_secs(1);
/// Bytes of a reply gathered before they go to the client (a result set
/// streams through this buffer, it is never held whole).
const WRITE_BUFFER: usize = 64 * 1024;
/// The version a client sees before any node has been asked for its own.
const FALLBACK_VERSION: &str = "5.5.21";

/// How the proxy runs.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: BindAddr,
    /// MySQL listeners (`host:port`) of the nodes to start from.
    pub nodes: Vec<String>,
    pub metrics: Option<BindAddr>,
    pub log_level: LogLevel,
    pub threads: usize,
}

/// What every connection shares.
pub struct Shared {
    pub backends: Arc<Backends>,
    pub metrics: Arc<ProxyMetrics>,
    local: LocalHelpers,
    version: RwLock<String>,
}

impl Shared {
    fn version(&self) -> String {
        self.version
            .read()
            .map(|v| v.clone())
            .unwrap_or_else(|_| FALLBACK_VERSION.to_string())
    }

    /// Runs a statement that failed on `node` through the sharding handlers
    /// when the proxy runs that node's helper; `None` when it does not, or
    /// no handler claims the statement.
    async fn answer_locally(
        &self,
        node: &str,
        user: &str,
        sql: &str,
        error: &mysql_async::ServerError,
    ) -> Option<Reply> {
        let registry = self.local.registry(node)?;
        let request = session::envelope(user, sql, &error.message)?;
        let (_, reply) = registry.claim(&request)?;
        Some(reply.await)
    }

    /// Reads a node's version string once, for the handshake.
    async fn learn_version(&self) {
        for backend in self.backends.candidates(None) {
            let Ok(mut conn) = mysql_async::Conn::new(backends::opts(&backend.mysql, "", "")).await
            else {
                continue;
            };
            use mysql_async::prelude::Queryable;
            let rows: Result<Vec<(String, String)>, _> =
                conn.query("SHOW STATUS LIKE 'version'").await;
            let _ = conn.disconnect().await;
            if let Some((_, version)) = rows.ok().and_then(|r| r.into_iter().next()) {
                if let Ok(mut v) = self.version.write() {
                    *v = version;
                }
                return;
            }
        }
    }
}

/// Runs the proxy until SIGTERM or Ctrl-C.
pub fn run(config: ProxyConfig) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .thread_name("shardbuddy-proxy")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("shardbuddy proxy: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let code = runtime.block_on(serve(config));
    runtime.shutdown_timeout(Duration::from_secs(1));
    code
}

async fn serve(config: ProxyConfig) -> ExitCode {
    let listener = match TcpListener::bind((config.listen.host.as_str(), config.listen.port)).await
    {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!(
                "shardbuddy proxy: cannot listen on {}:{}: {err}; choose another address with --listen",
                config.listen.host, config.listen.port
            );
            return ExitCode::from(2);
        }
    };
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    // The first line on stdout says where clients connect (port 0 picks one).
    println!("shardbuddy proxy listening on {address}");
    crate::app::logging::init(config.log_level);
    let shutdown = CancellationToken::new();
    let tasks = TaskTracker::new();
    let shared = Arc::new(Shared {
        backends: Arc::new(Backends::new(&config.nodes)),
        metrics: Arc::default(),
        local: LocalHelpers::new(shutdown.clone(), tasks.clone()),
        version: RwLock::new(FALLBACK_VERSION.to_string()),
    });
    shared.backends.refresh().await;
    shared.learn_version().await;
    shared.local.cover(&shared.backends);
    tasks.spawn(watch(Arc::clone(&shared), shutdown.clone()));
    if let Some(addr) = &config.metrics {
        let source = Arc::new(ProxySource {
            metrics: Arc::clone(&shared.metrics),
            backends: Arc::clone(&shared.backends),
        });
        crate::metrics::http::start(addr, source, shutdown.clone(), &tasks).await;
    }
    tracing::info!(address = %address, nodes = ?config.nodes, "proxy is serving");
    let connections = TaskTracker::new();
    let ids = AtomicU32::new(1);
    let stop = async {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    tokio::pin!(stop);
    loop {
        let (stream, peer): (_, SocketAddr) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(%err, "accepting a client connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let id = ids.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::clone(&shared);
        connections.spawn(async move {
            shared.metrics.connected();
            let (read, write) = stream.into_split();
            let session = session::Session::new(Arc::clone(&shared), id);
            let write = BufWriter::with_capacity(WRITE_BUFFER, write);
            if let Err(err) = AsyncMysqlIntermediary::run_on(session, read, write).await {
                tracing::debug!(%peer, connection = id, %err, "client connection ended");
            }
            shared.metrics.disconnected();
        });
    }
    tracing::info!("stopping");
    shutdown.cancel();
    tasks.close();
    connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), tasks.wait()).await;
    ExitCode::SUCCESS
}

/// Probes the nodes every [`REFRESH`] and covers new helper-less ones.
async fn watch(shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REFRESH) => {}
        }
        shared.backends.refresh().await;
        shared.local.cover(&shared.backends);
    }
}
