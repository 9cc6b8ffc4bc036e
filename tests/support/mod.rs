//! Helpers shared by the integration tests: running the real `shardbuddy`
//! binary, a plain HTTP/1.1 client, a recording HTTP server that stands in
//! for searchd or for another Buddy, and access to the golden recordings.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod fake_http;
pub mod golden;
pub mod http;
pub mod process;

/// Hang protection for waits that normally finish in milliseconds.
pub const HANG_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The value of the first header called `name` (case-insensitive).
pub fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}
