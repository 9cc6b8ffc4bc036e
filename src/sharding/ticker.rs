//! The one loop shape of the background tasks: run a round every period, at
//! once when woken, earlier when a round asks for it, and stop on shutdown.

use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub struct Ticker<'a> {
    period: Duration,
    wake: &'a Notify,
    shutdown: &'a CancellationToken,
}

impl<'a> Ticker<'a> {
    pub fn new(period: Duration, wake: &'a Notify, shutdown: &'a CancellationToken) -> Self {
        Self {
            period,
            wake,
            shutdown,
        }
    }

    /// Waits for the next round: after `due` (the period when `None`), or
    /// when woken. `false` once shutdown began.
    pub async fn next(&self, due: Option<Duration>) -> bool {
        if self.shutdown.is_cancelled() {
            return false;
        }
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = tokio::time::sleep(due.unwrap_or(self.period)) => true,
            _ = self.wake.notified() => true,
        }
    }
}

/// Wake-ups between the tasks and statement handlers of this process.
#[derive(Debug, Default)]
pub struct Signals {
    /// New queue rows for this node were written locally.
    pub executor: Notify,
    /// A request, a group change or a finished row: the master should look.
    pub master: Notify,
    /// The lease should be (re)considered now.
    pub heartbeat: Notify,
    /// A `table:<t>` value changed locally: waiting statements should re-read.
    pub table_changed: Notify,
}
