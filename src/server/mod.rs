//! The Buddy HTTP endpoint searchd posts failed statements to (spec §2–3).
//!
//! [`run`] accepts connections until the shutdown token fires, then stops
//! accepting, lets in-flight requests finish within the grace period, and
//! returns. Routing is in `routes`, the envelope → handler → reply path in
//! `dispatch`, the log-level endpoint in `config_endpoint`.

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::FallbackBuddy;
use crate::config::LogLevel;
use crate::handler::Registry;

mod config_endpoint;
mod dispatch;
mod routes;

/// A connection that sends no complete request head for this long is closed.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop
/// does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Reads and changes the process log level (`/config`).
pub trait LogLevelControl: Send + Sync {
    fn current(&self) -> LogLevel;
    fn set(&self, level: LogLevel) -> Result<(), String>;
}

/// What every request needs, shared by all connections.
pub struct ServerState {
    registry: Registry,
    fallback: Option<FallbackBuddy>,
    log_level: Arc<dyn LogLevelControl>,
    max_body_bytes: usize,
    /// Connections and handler runs, so shutdown can wait for them.
    tasks: TaskTracker,
}

impl ServerState {
    pub fn new(
        registry: Registry,
        fallback: Option<FallbackBuddy>,
        log_level: Arc<dyn LogLevelControl>,
        max_body_bytes: usize,
    ) -> Self {
        Self {
            registry,
            fallback,
            log_level,
            max_body_bytes,
            tasks: TaskTracker::new(),
        }
    }
}

/// Serves `listener` until `shutdown` is cancelled, then waits at most
/// `grace` for in-flight requests.
pub async fn run(
    listener: TcpListener,
    state: Arc<ServerState>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(err) => {
                    tracing::warn!(%err, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        state.tasks.spawn(serve_connection(
            stream,
            Arc::clone(&state),
            shutdown.clone(),
        ));
    }
    drop(listener);
    state.tasks.close();
    if tokio::time::timeout(grace, state.tasks.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            in_flight = state.tasks.len(),
            "requests still running after {grace:?}; abandoning them"
        );
    }
}

async fn serve_connection(stream: TcpStream, state: Arc<ServerState>, shutdown: CancellationToken) {
    let service = service_fn(move |request| {
        let state = Arc::clone(&state);
        async move { Ok::<_, std::convert::Infallible>(routes::respond(state, request).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%err, "connection ended with an error");
    }
}
