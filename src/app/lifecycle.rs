//! When the process should stop: SIGTERM or SIGINT (searchd stops its helper
//! with SIGTERM), or the parent process going away (spec §1.6–1.7).

use std::fmt;
use std::time::Duration;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// How often the parent process is checked, as Buddy does.
const PARENT_POLL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    Signal(&'static str),
    /// The process that started shardbuddy exited (it was re-parented).
    ParentExited {
        parent: u32,
    },
}

impl fmt::Display for StopReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Signal(name) => write!(f, "received {name}"),
            Self::ParentExited { parent } => write!(f, "parent process {parent} exited"),
        }
    }
}

/// The stop signals, watched from the moment they are installed: a signal
/// that arrives before anyone waits is not lost.
pub struct StopSignals {
    terminate: Signal,
    interrupt: Signal,
}

impl StopSignals {
    /// Installs the handlers; needs a Tokio runtime context. Done before the
    /// handshake, so searchd can stop the helper as soon as it knows it.
    pub fn install() -> std::io::Result<Self> {
        Ok(Self {
            terminate: signal(SignalKind::terminate())?,
            interrupt: signal(SignalKind::interrupt())?,
        })
    }

    /// Resolves when the process should stop. `parent` is the parent pid
    /// seen at start; a different parent pid later means the parent died.
    pub async fn stop_requested(mut self, parent: u32) -> StopReason {
        tokio::select! {
            _ = self.terminate.recv() => StopReason::Signal("SIGTERM"),
            _ = self.interrupt.recv() => StopReason::Signal("SIGINT"),
            reason = parent_exited(parent) => reason,
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
