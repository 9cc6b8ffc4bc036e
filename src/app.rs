//! The composition root: builds the clients, the handler table and the
//! background services from a [`Config`], and runs the Buddy endpoint until
//! the process is told to stop.
//!
//! Start-up order matters to searchd: bind first, then print the handshake
//! line as the very first bytes on stdout, and only then start logging.

use std::io::Write;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::process::ExitCode;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{ClientConfig, DaemonClient, FallbackBuddy};
use crate::config::{BindAddr, Config};
use crate::console::ConsoleHandler;
use crate::handler::{Handler, Registry};
use crate::metrics;
use crate::server::{self, ServerState};
use crate::sharding::{self, ShardingConfig, ShardingHandler};

mod lifecycle;
pub(crate) mod logging;
mod memory;

use lifecycle::StopSignals;

/// What handlers and background services are built from.
pub struct AppContext {
    pub config: Arc<Config>,
    /// A client for the local daemon (`--listen`); derive per-user, system
    /// and per-node clients from it so they share one connection pool.
    pub daemon: DaemonClient,
    /// Cancelled when the process stops; background services watch it.
    pub shutdown: CancellationToken,
    /// Background services spawn their tasks here; shutdown waits for them
    /// (within the grace period).
    pub tasks: TaskTracker,
}

/// Reads the sharding settings from the environment and starts the
/// sharding background services.
pub fn start_sharding(ctx: &AppContext) -> Arc<sharding::ops::Context> {
    let (config, warnings) = ShardingConfig::from_env(|name| std::env::var(name).ok());
    for warning in warnings {
        tracing::warn!("{warning}");
    }
    sharding::start(config, &ctx.daemon, &ctx.shutdown, &ctx.tasks)
}

/// The statement handlers, in the order they are asked to claim a request;
/// the first claim wins.
pub fn handlers(ctx: &AppContext, sharding: &Arc<sharding::ops::Context>) -> Vec<Box<dyn Handler>> {
    let statements =
        || -> Vec<Box<dyn Handler>> { vec![Box::new(ShardingHandler::new(Arc::clone(sharding)))] };
    let console = ConsoleHandler::new(
        Registry::new(statements()),
        ctx.daemon.clone(),
        ctx.config.fallback_url.is_some(),
    );
    let mut handlers: Vec<Box<dyn Handler>> = vec![Box::new(console)];
    handlers.extend(statements());
    handlers
}

/// Serves the metrics and the status page when `SHARDBUDDY_METRICS_ADDR`
/// asks for them. A bad address or a taken port is logged, never fatal:
/// searchd must keep its helper.
async fn start_metrics(ctx: &AppContext, sharding: &Arc<sharding::ops::Context>) {
    let Ok(raw) = std::env::var(metrics::ADDR_ENV) else {
        return;
    };
    match metrics::parse_addr(&raw) {
        Ok(addr) => {
            let source = Arc::new(metrics::HelperSource::new(Arc::clone(sharding)));
            metrics::http::start(&addr, source, ctx.shutdown.clone(), &ctx.tasks).await;
        }
        Err(err) => tracing::warn!(
            "{} is not an address to serve metrics on ({err}); metrics are off",
            metrics::ADDR_ENV
        ),
    }
}

/// Runs the helper process: binds, prints the handshake, serves until
/// SIGTERM/SIGINT or the parent's death, and exits 0.
pub fn run(config: Config, ignored_args: &[String]) -> ExitCode {
    let parent = std::os::unix::process::parent_id();
    memory::return_large_blocks();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.threads)
        .thread_name("shardbuddy-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("shardbuddy: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let (signals, listener) = match runtime
        .block_on(async { Ok::<_, String>((install_signals()?, bind(&config.bind)?)) })
    {
        Ok(ready) => ready,
        Err(err) => {
            eprintln!("shardbuddy: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = listener.local_addr().and_then(print_handshake) {
        eprintln!("shardbuddy: cannot announce the listening address: {err}");
        return ExitCode::FAILURE;
    }
    let log_control = logging::init(config.log_level);
    for arg in ignored_args {
        tracing::warn!(argument = %arg, "ignoring an unknown command-line argument");
    }
    let result = runtime.block_on(serve(
        Arc::new(config),
        listener,
        log_control,
        signals,
        parent,
    ));
    // Tasks abandoned after the grace period must not delay the exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "the server failed");
            ExitCode::FAILURE
        }
    }
}

fn install_signals() -> Result<StopSignals, String> {
    StopSignals::install().map_err(|err| format!("cannot install signal handlers: {err}"))
}

fn bind(addr: &BindAddr) -> Result<TcpListener, String> {
    let listen = || -> std::io::Result<TcpListener> {
        let listener = StdTcpListener::bind((addr.host.as_str(), addr.port))?;
        listener.set_nonblocking(true)?;
        TcpListener::from_std(listener)
    };
    listen().map_err(|err| {
        format!(
            "cannot listen on {}:{}: {err}; choose another address with --bind (port 0 picks a free one)",
            addr.host, addr.port
        )
    })
}

/// `Buddy v<version> started <ip>:<port>`: the line searchd waits for.
fn print_handshake(addr: SocketAddr) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "Buddy v{} started {addr}", crate::VERSION)?;
    stdout.flush()
}

async fn serve(
    config: Arc<Config>,
    listener: TcpListener,
    log_control: Arc<logging::LogControl>,
    signals: StopSignals,
    parent: u32,
) -> std::io::Result<()> {
    let ctx = AppContext {
        daemon: DaemonClient::new(ClientConfig {
            base_url: config.listen_url.clone(),
            token: config.token.clone(),
            timeout: config.daemon_timeout,
            connect_timeout: config.connect_timeout,
        }),
        config: Arc::clone(&config),
        shutdown: CancellationToken::new(),
        tasks: TaskTracker::new(),
    };
    let sharding = start_sharding(&ctx);
    let registry = Registry::new(handlers(&ctx, &sharding));
    start_metrics(&ctx, &sharding).await;
    let fallback = config
        .fallback_url
        .as_deref()
        .map(|url| FallbackBuddy::new(url, config.connect_timeout, config.fallback_timeout));
    tracing::info!(
        version = crate::VERSION,
        daemon = %config.listen_url,
        fallback = config.fallback_url.as_deref().unwrap_or("none"),
        handlers = ?registry.names(),
        threads = config.threads,
        "shardbuddy is serving"
    );
    let state = Arc::new(ServerState::new(
        registry,
        fallback,
        log_control,
        config.max_body_bytes,
    ));
    let server = tokio::spawn(server::run(
        listener,
        state,
        ctx.shutdown.clone(),
        config.shutdown_grace,
    ));

    let reason = signals.stop_requested(parent).await;
    tracing::info!(%reason, grace = ?config.shutdown_grace, "stopping");
    ctx.shutdown.cancel();
    ctx.tasks.close();
    let (served, services) = tokio::join!(
        server,
        tokio::time::timeout(config.shutdown_grace, ctx.tasks.wait())
    );
    if services.is_err() {
        tracing::warn!(
            "background services did not stop within {:?}",
            config.shutdown_grace
        );
    }
    served.map_err(std::io::Error::other)?;
    tracing::info!("stopped");
    Ok(())
}
