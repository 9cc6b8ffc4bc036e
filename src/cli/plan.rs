//! `shardbuddy plan`.

use std::process::ExitCode;

pub fn run(_args: Vec<String>) -> ExitCode {
    eprintln!("shardbuddy: 'plan' is not available yet");
    ExitCode::FAILURE
}
