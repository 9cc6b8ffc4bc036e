//! `shardbuddy parse`: checks one statement offline, the way the running
//! helper would judge it.
//!
//! Prints the statement as one line of JSON and exits 0; prints the exact
//! error the user would see and exits 1; prints `not claimed` and exits 2
//! when shardbuddy would leave the statement to the daemon. Everything goes
//! to standard output, since it is the answer asked for.

use std::io::Read;
use std::process::ExitCode;

use crate::sql;

/// Exit status for a command line that cannot be understood (BSD `EX_USAGE`),
/// kept apart from the three verdicts.
pub(super) const EXIT_USAGE: u8 = 64;

/// Check a sharding statement offline, the way the helper would judge it
#[derive(Debug, clap::Args)]
#[command(
    long_about = "Check a statement offline, the way the helper would judge it: prints the \
                  statement as JSON and exits 0 when it is valid, prints the error the user \
                  would see and exits 1 when it is invalid, prints `not claimed` and exits 2 \
                  when shardbuddy leaves it to the daemon. Usage errors exit 64.",
    after_help = "Example: shardbuddy parse \"CREATE TABLE c:t (title text) shards='4' rf='2'\""
)]
pub(super) struct Args {
    /// Judge the statement as if the daemon had failed with this error
    /// (by default: the error that routes the statement to shardbuddy).
    #[arg(long, value_name = "TEXT")]
    daemon_error: Option<String>,

    /// The statement; read from standard input when absent.
    sql: Option<String>,
}

pub(super) fn run(args: Args) -> ExitCode {
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
