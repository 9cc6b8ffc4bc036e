//! `shardbuddy plan`: reads a plan request (JSON) on stdin, prints the plan
//! (JSON) on stdout. The format is described in `docs/plan-format.md`.

use std::io::Read;
use std::process::ExitCode;

use crate::placement::document;

const USAGE: &str = "usage: shardbuddy plan < request.json

Reads nodes (with states), tables (shards, rf, current placement or null) as
JSON on stdin and prints the target placement, the moves with their reasons,
the queue steps per node and the totals as JSON. See docs/plan-format.md.";

pub fn run(args: Vec<String>) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if let Some(unknown) = args.first() {
        eprintln!("shardbuddy plan: unexpected argument '{unknown}'\n{USAGE}");
        return ExitCode::FAILURE;
    }
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!("shardbuddy plan: cannot read stdin: {e}");
        return ExitCode::FAILURE;
    }
    match document::run(&input) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shardbuddy plan: {e}");
            ExitCode::FAILURE
        }
    }
}
