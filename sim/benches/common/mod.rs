//! Helpers shared by the benchmarks.
#![allow(dead_code)]

use std::time::Duration;

use manticore_sim::testkit::SimNode;
use mysql_async::{Conn, Opts};

/// A numeric setting from the environment.
pub fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

pub async fn connect(node: &SimNode) -> Conn {
    Conn::new(Opts::from_url(&node.mysql_url()).expect("url"))
        .await
        .expect("connect")
}

pub fn report(what: &str, ops: u64, took: Duration) {
    println!(
        "{what}: {ops} ops in {:.2} s = {:.0} ops/s",
        took.as_secs_f64(),
        ops as f64 / took.as_secs_f64()
    );
}
