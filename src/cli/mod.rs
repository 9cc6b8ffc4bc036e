//! The command line: Buddy-compatible server mode plus offline subcommands.
//!
//! `shardbuddy [--listen=…] [--threads=…] …` runs the helper process the way
//! searchd starts it; `shardbuddy parse|plan|demo …` are tools for people.

use std::process::ExitCode;

mod demo;
mod parse;
mod plan;
mod serve;

/// Entry point of the `shardbuddy` binary.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("parse") => parse::run(args[1..].to_vec()),
        Some("plan") => plan::run(args[1..].to_vec()),
        Some("demo") => demo::run(args[1..].to_vec()),
        _ => serve::run(args),
    }
}
