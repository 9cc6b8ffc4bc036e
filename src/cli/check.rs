//! `shardbuddy check --node <host:http_port>`: compares the sharding metadata
//! with what every node holds and prints each discrepancy on a line of its
//! own (see [`crate::check`]). Exit status 0: consistent; 1: discrepancies
//! found; 2: the check could not be made.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::check;
use crate::client::{ClientConfig, DaemonClient};

/// Exit status when the check could not be made at all.
const EXIT_UNCHECKED: u8 = 2;

/// Check that every node holds what the sharding metadata says
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Check that every node holds what the sharding metadata says. Reads \
                  system.sharding_table and the operation records through --node, then every \
                  node of the cluster: physical shard tables, type='shard' tables and where \
                  they send each shard, replication clusters, and the row counts of the \
                  copies of each shard. Prints every discrepancy on a line of its own and \
                  exits with 0 only when there is none (1 when there are, 2 when the check \
                  could not be made). Reads only; changes nothing. With auth on, set \
                  BUDDY_TOKEN to system.buddy's token.",
    after_help = "Example: shardbuddy check --node 127.0.0.1:9308"
)]
pub(super) struct Args {
    /// Any node's HTTP listener
    #[arg(long, value_name = "HOST:HTTP_PORT")]
    node: String,
    /// Time limit of each request to a node, in seconds
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = crate::config::parse_seconds)]
    timeout: Duration,
}

pub(super) fn run(args: Args) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("shardbuddy check: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_UNCHECKED);
        }
    };
    let base_url = if args.node.contains("://") {
        args.node.clone()
    } else {
        format!("http://{}", args.node)
    };
    let client = DaemonClient::new(ClientConfig {
        base_url,
        token: std::env::var("BUDDY_TOKEN").ok(),
        timeout: args.timeout,
        connect_timeout: args.timeout.min(Duration::from_secs(3)),
    })
    .as_system();
    match runtime.block_on(check::check(Arc::new(client))) {
        Ok(report) => {
            for (node, error) in &report.unread {
                eprintln!("note: node {node} holds no copy and could not be read: {error}");
            }
            for discrepancy in &report.discrepancies {
                println!("{discrepancy}");
            }
            eprintln!(
                "{} table(s) on {} node(s): {}",
                report.tables,
                report.nodes.len(),
                match report.discrepancies.len() {
                    0 => "consistent".to_string(),
                    1 => "1 discrepancy".to_string(),
                    n => format!("{n} discrepancies"),
                }
            );
            if report.is_consistent() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("shardbuddy check: {e}");
            ExitCode::from(EXIT_UNCHECKED)
        }
    }
}
