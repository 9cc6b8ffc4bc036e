//! `shardbuddy parse`.

use std::process::ExitCode;

pub fn run(_args: Vec<String>) -> ExitCode {
    eprintln!("shardbuddy: 'parse' is not available yet");
    ExitCode::FAILURE
}
