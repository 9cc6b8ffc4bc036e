//! This process's pulse: which shardbuddy process a node runs now, and a
//! counter it renews while it is alive. The heartbeat writes it into the
//! node's registration every interval, and a statement waiting for its
//! outcome writes it more often, so the master can tell whether the process
//! that received a statement is still there to answer it.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::sharding::clock::{now_ms, now_s};
use crate::sharding::records::Registration;

#[derive(Debug)]
pub struct Pulse {
    instance: String,
    beat: AtomicU64,
}

impl Pulse {
    /// A pulse for this process: its instance names the process id and the
    /// moment it started, unique per node.
    pub fn new() -> Self {
        Self {
            instance: format!("{}-{}", std::process::id(), now_ms()),
            beat: AtomicU64::new(0),
        }
    }

    /// Which process this is (recorded in each request it writes).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The registration to write now: the next beat of this process.
    pub fn registration(&self) -> Registration {
        Registration {
            seen_at: now_s(),
            version: crate::VERSION.to_string(),
            instance: self.instance.clone(),
            beat: self.beat.fetch_add(1, Ordering::Relaxed) + 1,
        }
    }
}

impl Default for Pulse {
    fn default() -> Self {
        Self::new()
    }
}
