//! The command line: Buddy-compatible helper mode plus commands for people.
//!
//! `shardbuddy [--listen=…] [--threads=…] …` runs the helper process the way
//! searchd starts it; `shardbuddy demo|plan|parse …` are tools for people,
//! and `shardbuddy help [COMMAND]` (or `--help` anywhere) explains both.
//!
//! Which of the two a command line is, is decided by its first argument: a
//! flag (or nothing) is helper mode, parsed leniently because searchd must
//! never fail to start its helper over an extra flag; a word is a command,
//! parsed strictly, so a typo (`shardbuddy demoo`) fails with clap's
//! suggestion and exit status 2 instead of silently starting a helper.

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod check;
mod demo;
mod parse;
mod plan;
mod proxy;
mod serve;

/// Exit status of a command line that cannot be understood (clap's).
const EXIT_USAGE: u8 = 2;

const ABOUT: &str = "A Buddy-compatible sharding helper for Manticore Search";

const LONG_ABOUT: &str = "A Buddy-compatible sharding helper for Manticore Search.

Helper mode (no command): searchd starts shardbuddy from `buddy_path` with the helper \
options below and forwards every statement it cannot run itself; shardbuddy answers the \
sharding statements (CREATE TABLE … shards='N' rf='M', DROP TABLE, SHOW SHARDING …) and \
hands everything else back. Unknown --options are ignored with a warning in this mode, so \
searchd never fails to start its helper.

Try `shardbuddy demo` for a local three-node cluster to experiment with.";

/// The whole command line. Only commands are parsed with it directly; helper
/// mode goes through `serve`, which filters the arguments first.
#[derive(Debug, Parser)]
#[command(
    name = "shardbuddy",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    propagate_version = true,
    override_usage = "shardbuddy [HELPER OPTIONS]\n       shardbuddy <COMMAND> [OPTIONS]",
    after_help = "Run `shardbuddy help <COMMAND>` for the options of a command."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    helper: serve::HelperArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The commands; each one's help comes from its `Args` (doc comment: the
/// one-line summary; `long_about`: the `--help` text).
#[derive(Debug, Subcommand)]
enum Command {
    Check(check::Args),
    Demo(demo::Args),
    Plan(plan::Args),
    Parse(parse::Args),
    Proxy(proxy::Args),
}

/// Entry point of the `shardbuddy` binary.
pub fn main() -> ExitCode {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if is_helper_mode(&args) {
        return serve::run(args);
    }
    let first = args.first().cloned().unwrap_or_default();
    let argv = std::iter::once(OsString::from("shardbuddy")).chain(args.iter().map(OsString::from));
    match Cli::try_parse_from(argv) {
        Ok(Cli {
            command: Some(command),
            ..
        }) => match command {
            Command::Check(args) => check::run(args),
            Command::Demo(args) => demo::run(args),
            Command::Plan(args) => plan::run(args),
            Command::Parse(args) => parse::run(args),
            Command::Proxy(args) => proxy::run(args),
        },
        // A word that is no command fails to parse, so this is not reached;
        // without a command, shardbuddy is the helper.
        Ok(Cli { command: None, .. }) => serve::run(args),
        Err(err) => exit_for(&err, &first),
    }
}

/// Helper mode: no arguments, or a flag where a command would go.
fn is_helper_mode(args: &[String]) -> bool {
    args.first().is_none_or(|a| a.starts_with('-'))
}

/// Prints clap's answer (help and version on stdout, errors on stderr) and
/// picks the exit status: `parse` keeps its own status for usage errors,
/// because its 2 means "not claimed".
fn exit_for(err: &clap::Error, first: &str) -> ExitCode {
    let printed = err.print();
    if !err.use_stderr() && printed.is_ok() {
        return ExitCode::SUCCESS;
    }
    if first == "parse" {
        return ExitCode::from(parse::EXIT_USAGE);
    }
    ExitCode::from(EXIT_USAGE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("shardbuddy").chain(args.iter().copied()))
    }

    #[test]
    fn a_flag_or_nothing_first_is_helper_mode() {
        let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(is_helper_mode(&strings(&[])));
        assert!(is_helper_mode(&strings(&["--listen=h:1", "stray"])));
        assert!(is_helper_mode(&strings(&["-h"])));
        assert!(!is_helper_mode(&strings(&["demo"])));
        assert!(!is_helper_mode(&strings(&["demoo", "--listen=h:1"])));
    }

    #[test]
    fn commands_parse_and_typos_get_a_suggestion() {
        assert!(matches!(
            parse(&["demo", "--nodes", "2"]).unwrap().command,
            Some(Command::Demo(_))
        ));
        assert!(matches!(
            parse(&["plan"]).unwrap().command,
            Some(Command::Plan(_))
        ));
        let err = parse(&["demoo"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidSubcommand);
        assert!(err.to_string().contains("'demo'"), "{err}");
        assert_eq!(parse(&["help"]).unwrap_err().kind(), ErrorKind::DisplayHelp);
        assert_eq!(
            parse(&["demo", "--version"]).unwrap_err().kind(),
            ErrorKind::DisplayVersion
        );
    }

    #[test]
    fn the_command_line_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
