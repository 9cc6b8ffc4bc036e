//! `manticore-sim -c <config> [--nodetach] [--new-cluster]`, `--stop`, `--stopwait`, `--status`:
//! one simulated searchd node, with searchd's command line.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use manticore_sim::config::Config;
use manticore_sim::control;
use manticore_sim::daemon::StartOptions;

#[derive(Parser)]
#[command(
    name = "manticore-sim",
    about = "A Manticore-compatible node simulator"
)]
struct Args {
    /// searchd-style configuration file.
    #[arg(short = 'c', long = "config")]
    config: PathBuf,
    /// Stay in the foreground (without it the daemon detaches once it accepts connections).
    #[arg(long)]
    nodetach: bool,
    /// Bootstrap every saved replication cluster here as its primary component.
    #[arg(long = "new-cluster")]
    new_cluster: bool,
    /// Like `--new-cluster` (searchd's variant that skips its restart protection).
    #[arg(long = "new-cluster-force")]
    new_cluster_force: bool,
    /// Send SIGTERM to the daemon named by the pid file and return.
    #[arg(long, conflicts_with_all = ["stopwait", "status"])]
    stop: bool,
    /// Send SIGTERM to the daemon named by the pid file and wait until it exited.
    #[arg(long, conflicts_with = "status")]
    stopwait: bool,
    /// Print the running daemon's status counters (exit code 1 when it does not answer).
    #[arg(long)]
    status: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    // A daemon started in the background reports on its standard output (see `control`).
    let child = std::env::var_os(control::CHILD_ENV).is_some();
    let fatal = |e: &dyn std::fmt::Display| {
        if child {
            let _ = writeln!(std::io::stdout(), "{}{e}", control::FATAL_PREFIX);
        } else {
            eprintln!("FATAL: {e}");
        }
        ExitCode::FAILURE
    };
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => return fatal(&e),
    };
    if args.stop || args.stopwait {
        return control::stop(&config, args.stopwait);
    }
    if args.status {
        return control::status(&config);
    }
    let options = StartOptions {
        new_cluster: args.new_cluster || args.new_cluster_force,
    };
    if !args.nodetach {
        let mut daemon_args = vec!["-c".to_string(), args.config.display().to_string()];
        if options.new_cluster {
            daemon_args.push("--new-cluster".to_string());
        }
        return control::daemonize(&config, &daemon_args);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fatal(&e),
    };
    let ready = move || {
        if child {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "{}", control::READY_LINE);
            let _ = out.flush();
        }
    };
    match runtime.block_on(manticore_sim::daemon::run_with(config, options, ready)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fatal(&e),
    }
}
