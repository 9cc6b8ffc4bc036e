//! `shardbuddy demo`.

use std::process::ExitCode;

pub fn run(_args: Vec<String>) -> ExitCode {
    eprintln!("shardbuddy: 'demo' is not available yet");
    ExitCode::FAILURE
}
