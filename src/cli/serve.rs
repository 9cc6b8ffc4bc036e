//! `shardbuddy serve`.

use std::process::ExitCode;

pub fn run(_args: Vec<String>) -> ExitCode {
    eprintln!("shardbuddy: 'serve' is not available yet");
    ExitCode::FAILURE
}
