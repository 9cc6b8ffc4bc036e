//! `shardbuddy plan`: reads a plan request (JSON) on stdin, prints the plan
//! (JSON) on stdout. The format is described in `docs/plan-format.md`.

use std::io::Read;
use std::process::ExitCode;

use crate::placement::document;

/// Plan shard placement offline: a topology as JSON on stdin, the plan on stdout
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Plan shard placement offline. Reads nodes (with states) and tables (shards, \
                  rf, current placement or null) as JSON on standard input and prints the \
                  target placement, the moves with their reasons, the queue steps per node and \
                  the totals as JSON. The format is described in docs/plan-format.md.",
    after_help = "Example: shardbuddy plan < request.json"
)]
pub(super) struct Args {}

/// Why `shardbuddy plan` printed no plan.
#[derive(Debug, thiserror::Error)]
enum PlanError {
    #[error("shardbuddy plan: cannot read the request from standard input: {0}")]
    Stdin(std::io::Error),
    #[error("shardbuddy plan: {0}")]
    Request(String),
}

pub(super) fn run(_args: Args) -> ExitCode {
    match plan() {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

fn plan() -> Result<String, PlanError> {
    let mut input = String::new();
    std::io::stdin()
        .read_to_string(&mut input)
        .map_err(PlanError::Stdin)?;
    document::run(&input).map_err(|e| PlanError::Request(e.to_string()))
}
