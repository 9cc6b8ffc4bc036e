//! Timings and limits of the sharding subsystem, in one place. Defaults suit
//! production; every value can be overridden by an environment variable so
//! tests and the demo can run faster (searchd passes a fixed command line, so
//! flags are not the right channel).

use std::time::Duration;

use crate::sharding::records::{QueueRow, QueueStatus};

/// Retry policy of failed queue rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts after which a failing row is final.
    pub max_tries: u32,
    /// Delay after the first failed attempt; doubled after each further one.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// How long to wait after the `tries`-th failed attempt.
    pub fn backoff(&self, tries: u32) -> Duration {
        let doublings = tries.saturating_sub(1).min(16);
        self.base_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }

    /// Whether a row in `error` has used up its attempts.
    pub fn is_final(&self, row: &QueueRow) -> bool {
        row.status == QueueStatus::Error && row.tries >= self.max_tries
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardingConfig {
    /// How often executors and the master look for new work written by other
    /// nodes (local writes wake them at once). `SHARDBUDDY_POLL_MS`.
    pub poll_interval: Duration,
    /// Heartbeat and lease renewal period. `SHARDBUDDY_HEARTBEAT_MS`.
    pub heartbeat_interval: Duration,
    /// A master that has not renewed its lease for this long is replaced.
    /// `SHARDBUDDY_LEASE_TIMEOUT_MS`.
    pub lease_timeout: Duration,
    /// Failing queue rows. `SHARDBUDDY_MAX_TRIES`, `SHARDBUDDY_RETRY_BASE_MS`,
    /// `SHARDBUDDY_RETRY_MAX_MS`.
    pub retry: RetryPolicy,
    /// CREATE's default `timeout`, and DROP's. `SHARDBUDDY_DEFAULT_TIMEOUT_S`.
    pub default_timeout: Duration,
    /// How long a statement keeps waiting after its deadline for the rollback
    /// of the live nodes to finish. `SHARDBUDDY_ROLLBACK_GRACE_MS`.
    pub rollback_grace: Duration,
    /// Finished operation groups are purged from the queue after this long.
    /// `SHARDBUDDY_RETENTION_S`.
    pub retention: Duration,
    /// How often a waiting statement re-reads its table's state.
    /// `SHARDBUDDY_WAIT_POLL_MS`.
    pub wait_poll: Duration,
    /// How long a lost node must stay lost before its tables are
    /// rebalanced; 0 reacts at once. `SHARDBUDDY_REBALANCE_DELAY_MS`.
    pub rebalance_delay: Duration,
    /// Tables rebalanced at the same time. `SHARDBUDDY_REBALANCE_PARALLEL`.
    pub rebalance_parallel: usize,
    /// How long after a failed rebalance of a table the next one may start.
    /// `SHARDBUDDY_REBALANCE_RETRY_S`.
    pub rebalance_retry: Duration,
    /// Whether the master rebalances on its own when membership changes;
    /// off, only `REBALANCE TABLE` starts one (replica sets that lost their
    /// majority are still promoted). `SHARDBUDDY_REBALANCE_AUTO` (`1`/`0`).
    pub rebalance_auto: bool,
    /// Failed rebalances of a table in a row after which it is only
    /// rebalanced by `REBALANCE TABLE`. `SHARDBUDDY_REBALANCE_ATTEMPTS`.
    pub rebalance_attempts: u32,
    /// How long a rebalance may make no progress, with none of its steps
    /// running on a live shardbuddy, before the master undoes it as stalled.
    /// `SHARDBUDDY_STALL_S`.
    pub stall_after: Duration,
    /// How often the master looks for orphans (objects on a node no
    /// metadata accounts for) and removes them through the queue; `None`
    /// (`0`): never. `SHARDBUDDY_CLEANUP_MS`.
    pub cleanup_interval: Option<Duration>,
}

impl Default for ShardingConfig {
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_millis(50),
            heartbeat_interval: Duration::from_secs(1),
            lease_timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                max_tries: 5,
                base_backoff: Duration::from_millis(250),
                max_backoff: Duration::from_secs(5),
            },
            default_timeout: Duration::from_secs(30),
            rollback_grace: Duration::from_secs(15),
            retention: Duration::from_secs(600),
            wait_poll: Duration::from_millis(20),
            rebalance_delay: Duration::ZERO,
            rebalance_parallel: 2,
            rebalance_retry: Duration::from_secs(30),
            rebalance_auto: true,
            rebalance_attempts: 5,
            stall_after: Duration::from_secs(600),
            cleanup_interval: Some(Duration::from_secs(60)),
        }
    }
}

impl ShardingConfig {
    /// Defaults overridden by `SHARDBUDDY_*` variables from `env`. Unparsable
    /// values are reported and ignored.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> (Self, Vec<String>) {
        let mut c = Self::default();
        let mut warnings = Vec::new();
        let mut read = |name: &str, unit_ms: u64, slot: &mut Duration| {
            if let Some(raw) = env(name) {
                match raw.trim().parse::<u64>() {
                    Ok(v) if v > 0 => *slot = Duration::from_millis(v.saturating_mul(unit_ms)),
                    _ => warnings.push(format!(
                        "ignoring {name}={raw}: expected a positive integer"
                    )),
                }
            }
        };
        read("SHARDBUDDY_POLL_MS", 1, &mut c.poll_interval);
        read("SHARDBUDDY_HEARTBEAT_MS", 1, &mut c.heartbeat_interval);
        read("SHARDBUDDY_LEASE_TIMEOUT_MS", 1, &mut c.lease_timeout);
        read("SHARDBUDDY_RETRY_BASE_MS", 1, &mut c.retry.base_backoff);
        read("SHARDBUDDY_RETRY_MAX_MS", 1, &mut c.retry.max_backoff);
        read("SHARDBUDDY_DEFAULT_TIMEOUT_S", 1000, &mut c.default_timeout);
        read("SHARDBUDDY_ROLLBACK_GRACE_MS", 1, &mut c.rollback_grace);
        read("SHARDBUDDY_RETENTION_S", 1000, &mut c.retention);
        read("SHARDBUDDY_WAIT_POLL_MS", 1, &mut c.wait_poll);
        read("SHARDBUDDY_REBALANCE_RETRY_S", 1000, &mut c.rebalance_retry);
        read("SHARDBUDDY_STALL_S", 1000, &mut c.stall_after);
        if let Some(raw) = env("SHARDBUDDY_REBALANCE_DELAY_MS") {
            match raw.trim().parse::<u64>() {
                Ok(v) => c.rebalance_delay = Duration::from_millis(v),
                _ => warnings.push(format!(
                    "ignoring SHARDBUDDY_REBALANCE_DELAY_MS={raw}: expected a number of milliseconds"
                )),
            }
        }
        if let Some(raw) = env("SHARDBUDDY_CLEANUP_MS") {
            match raw.trim().parse::<u64>() {
                Ok(0) => c.cleanup_interval = None,
                Ok(v) => c.cleanup_interval = Some(Duration::from_millis(v)),
                _ => warnings.push(format!(
                    "ignoring SHARDBUDDY_CLEANUP_MS={raw}: expected a number of milliseconds (0: no cleanup)"
                )),
            }
        }
        if let Some(raw) = env("SHARDBUDDY_REBALANCE_PARALLEL") {
            match raw.trim().parse::<usize>() {
                Ok(v) if v > 0 => c.rebalance_parallel = v,
                _ => warnings.push(format!(
                    "ignoring SHARDBUDDY_REBALANCE_PARALLEL={raw}: expected a positive integer"
                )),
            }
        }
        if let Some(raw) = env("SHARDBUDDY_REBALANCE_AUTO") {
            match raw.trim() {
                "1" | "on" | "true" => c.rebalance_auto = true,
                "0" | "off" | "false" => c.rebalance_auto = false,
                _ => warnings.push(format!(
                    "ignoring SHARDBUDDY_REBALANCE_AUTO={raw}: expected 1 or 0"
                )),
            }
        }
        if let Some(raw) = env("SHARDBUDDY_REBALANCE_ATTEMPTS") {
            match raw.trim().parse::<u32>() {
                Ok(v) if v > 0 => c.rebalance_attempts = v,
                _ => warnings.push(format!(
                    "ignoring SHARDBUDDY_REBALANCE_ATTEMPTS={raw}: expected a positive integer"
                )),
            }
        }
        if let Some(raw) = env("SHARDBUDDY_MAX_TRIES") {
            match raw.trim().parse::<u32>() {
                Ok(v) if v > 0 => c.retry.max_tries = v,
                _ => warnings.push(format!(
                    "ignoring SHARDBUDDY_MAX_TRIES={raw}: expected a positive integer"
                )),
            }
        }
        (c, warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let policy = RetryPolicy {
            max_tries: 3,
            base_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
        };
        assert_eq!(policy.backoff(1), Duration::from_millis(100));
        assert_eq!(policy.backoff(2), Duration::from_millis(200));
        assert_eq!(policy.backoff(10), Duration::from_secs(1));
    }

    #[test]
    fn environment_overrides_defaults() {
        let env: BTreeMap<&str, &str> = [
            ("SHARDBUDDY_POLL_MS", "10"),
            ("SHARDBUDDY_LEASE_TIMEOUT_MS", "1500"),
            ("SHARDBUDDY_RETENTION_S", "2"),
            ("SHARDBUDDY_MAX_TRIES", "0"),
            ("SHARDBUDDY_HEARTBEAT_MS", "soon"),
        ]
        .into();
        let (c, warnings) = ShardingConfig::from_env(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(c.poll_interval, Duration::from_millis(10));
        assert_eq!(c.lease_timeout, Duration::from_millis(1500));
        assert_eq!(c.retention, Duration::from_secs(2));
        assert_eq!(c.retry.max_tries, ShardingConfig::default().retry.max_tries);
        assert_eq!(
            c.heartbeat_interval,
            ShardingConfig::default().heartbeat_interval
        );
        assert_eq!(warnings.len(), 2);
    }

    #[test]
    fn an_unusable_value_is_named_in_the_warning() {
        let env: BTreeMap<&str, &str> = [
            ("SHARDBUDDY_HEARTBEAT_MS", "soon"),
            ("SHARDBUDDY_REBALANCE_PARALLEL", "0"),
        ]
        .into();
        let (_, warnings) = ShardingConfig::from_env(|k| env.get(k).map(|v| v.to_string()));
        assert_eq!(
            warnings,
            [
                "ignoring SHARDBUDDY_HEARTBEAT_MS=soon: expected a positive integer",
                "ignoring SHARDBUDDY_REBALANCE_PARALLEL=0: expected a positive integer",
            ]
        );
    }
}
