//! `shardbuddy parse`: checks one statement offline, the way the running
//! helper would judge it.
//!
//! Prints the statement as one line of JSON and exits 0; prints the exact
//! error the user would see and exits 1; prints `not claimed` and exits 2
//! when shardbuddy would leave the statement to the daemon. Everything goes
//! to standard output, since it is the answer asked for.

use std::io::Read;
use std::process::ExitCode;

use clap::Parser;

use crate::sql;

/// Exit status for a command line that cannot be understood (BSD `EX_USAGE`),
/// kept apart from the three verdicts.
const EXIT_USAGE: u8 = 64;

#[derive(Debug, clap::Parser)]
#[command(
    name = "shardbuddy parse",
    about = "Check a statement offline: JSON and exit 0 when valid, the error and exit 1 when \
             invalid, `not claimed` and exit 2 when shardbuddy leaves it to the daemon"
)]
struct Args {
    /// Judge the statement as if the daemon had failed with this error
    /// (by default: the error that routes the statement to shardbuddy).
    #[arg(long, value_name = "TEXT")]
    daemon_error: Option<String>,

    /// The statement; read from standard input when absent.
    sql: Option<String>,
}

pub fn run(args: Vec<String>) -> ExitCode {
    let argv = std::iter::once("shardbuddy parse".to_string()).chain(args);
    let args = match Args::try_parse_from(argv) {
        Ok(args) => args,
        Err(err) => {
            let shown = err.print();
            return if err.use_stderr() || shown.is_err() {
                ExitCode::from(EXIT_USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let statement = match args.sql {
        Some(sql) => sql,
        None => {
            let mut sql = String::new();
            if let Err(err) = std::io::stdin().read_to_string(&mut sql) {
                eprintln!("shardbuddy parse: cannot read the statement from standard input: {err}");
                return ExitCode::from(EXIT_USAGE);
            }
            sql
        }
    };
    let verdict = match &args.daemon_error {
        Some(error) => sql::claim(&statement, error),
        None => match sql::parse(&statement) {
            Err(err) if err.is_not_claimed() => None,
            result => Some(result),
        },
    };
    report(verdict)
}

fn report(verdict: Option<Result<sql::Statement, sql::SqlError>>) -> ExitCode {
    match verdict {
        Some(Ok(statement)) => match serde_json::to_string(&statement) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("shardbuddy parse: cannot print the statement: {err}");
                ExitCode::FAILURE
            }
        },
        Some(Err(err)) => {
            println!("{err}");
            ExitCode::FAILURE
        }
        None => {
            println!("not claimed");
            ExitCode::from(2)
        }
    }
}
