//! When the process should stop: SIGTERM or SIGINT (searchd stops its helper
//! with SIGTERM), or the parent process going away (spec §1.6–1.7).

use std::fmt;
use std::time::Duration;

use tokio::signal::unix::{signal, SignalKind};

/// How often the parent process is checked, as Buddy does.
const PARENT_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Signal(&'static str),
    /// The process that started shardbuddy exited (it was re-parented).
    ParentExited { parent: u32 },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signal(name) => write!(f, "received {name}"),
            Self::ParentExited { parent } => write!(f, "parent process {parent} exited"),
        }
    }
}

/// Resolves when the process should stop. `parent` is the parent pid seen at
/// start; a different parent pid later means the parent died.
pub async fn stop_requested(parent: u32) -> StopReason {
    tokio::select! {
        reason = on_signal(SignalKind::terminate(), "SIGTERM") => reason,
        reason = on_signal(SignalKind::interrupt(), "SIGINT") => reason,
        reason = parent_exited(parent) => reason,
    }
}

async fn on_signal(kind: SignalKind, name: &'static str) -> StopReason {
    match signal(kind) {
        Ok(mut stream) => {
            stream.recv().await;
            StopReason::Signal(name)
        }
        Err(err) => {
            tracing::error!(%err, "cannot watch {name}; stop the process another way");
            std::future::pending().await
        }
    }
}

async fn parent_exited(parent: u32) -> StopReason {
    let mut ticks = tokio::time::interval(PARENT_POLL);
    loop {
        ticks.tick().await;
        if std::os::unix::process::parent_id() != parent {
            return StopReason::ParentExited { parent };
        }
    }
}
