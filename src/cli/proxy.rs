//! `shardbuddy proxy`: one MySQL endpoint for the whole cluster.

use std::process::ExitCode;

use crate::config::{BindAddr, LogLevel};
use crate::proxy::{self, ProxyConfig};

/// Serve one MySQL endpoint for every node of the cluster
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Serve one MySQL endpoint for the whole cluster. Each client connection is \
                  relayed to one healthy node for its life (SET, transactions and \
                  last_insert_id stay on that node) and moves to another node when its node \
                  goes away. The nodes are the --node addresses plus every member of their \
                  clusters. Nodes started without a helper (buddy_path empty) get one inside \
                  the proxy. Passwords are asked for in clear text (mysql_clear_password), so \
                  keep the proxy on loopback or a trusted network.",
    after_help = "Example: shardbuddy proxy --listen 127.0.0.1:9306 --node 127.0.0.1:19306 \
                  --node 127.0.0.1:29306 --metrics 127.0.0.1:9180"
)]
pub(super) struct Args {
    /// Where clients connect; port 0 picks a free one (printed on stdout)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9306")]
    listen: BindAddr,
    /// The MySQL listener of a node (repeat for more)
    #[arg(long = "node", value_name = "HOST:PORT", required = true)]
    nodes: Vec<String>,
    /// Serve the proxy's Prometheus metrics and status data here
    #[arg(long, value_name = "HOST:PORT", value_parser = crate::metrics::parse_addr)]
    metrics: Option<BindAddr>,
    /// info, debug, debugv or debugvv
    #[arg(long, value_name = "LEVEL", default_value = "info")]
    log_level: LogLevel,
    /// Worker threads [default: number of CPUs]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
}

pub(super) fn run(args: Args) -> ExitCode {
    proxy::run(ProxyConfig {
        listen: args.listen,
        nodes: args.nodes,
        metrics: args.metrics,
        log_level: args.log_level,
        threads: args
            .threads
            .map(usize::from)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)),
    })
}
