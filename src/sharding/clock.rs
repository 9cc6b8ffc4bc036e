//! The only place the wall clock is read. Queue and state timestamps are
//! wall-clock milliseconds/seconds (PHP Buddy's formats); durations and
//! timeouts that decide behaviour use `Instant` instead.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub fn now_s() -> i64 {
    now_ms() / 1000
}
