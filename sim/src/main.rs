//! `manticore-sim -c <config> [--nodetach]`: runs one simulated searchd node in the foreground.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use manticore_sim::config::Config;

#[derive(Parser)]
#[command(
    name = "manticore-sim",
    about = "A Manticore-compatible node simulator"
)]
struct Args {
    /// searchd-style configuration file.
    #[arg(short = 'c', long = "config")]
    config: PathBuf,
    /// Accepted for searchd compatibility; the simulator always stays in the foreground.
    #[arg(long)]
    nodetach: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("FATAL: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("FATAL: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(manticore_sim::daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("FATAL: {e}");
            ExitCode::FAILURE
        }
    }
}
