//! Server mode: the command line searchd starts its helper with
//! (`<buddy_path> --listen=<url> --threads=<n> [--log-level=…] …`).
//!
//! searchd must never fail to start its helper because of a flag it or an
//! operator added, so arguments are filtered before clap sees them: unknown
//! ones are set aside and logged as warnings once logging is up, and for
//! flags given twice the first value wins (as with Buddy's `--threads`).
//! Invalid values of known flags are refused before the handshake, with the
//! reason on stderr, which searchd copies into its log.

use std::process::ExitCode;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};

use super::Cli;

use crate::config::{normalize_http_url, parse_seconds, BindAddr, Config, LogLevel, THREADS_RANGE};

/// The environment variable that names a fallback Buddy.
const FALLBACK_ENV: &str = "SHARDBUDDY_FALLBACK_URL";
/// The bearer token of `system.buddy`, set by searchd when auth is on.
const TOKEN_ENV: &str = "BUDDY_TOKEN";
/// Failpoints set from the start (`name=action[,…]`, see [`crate::failpoint`]).
const FAILPOINTS_ENV: &str = "SHARDBUDDY_FAILPOINTS";

/// The options of helper mode, the command line searchd starts its helper
/// with. Part of [`Cli`], so `shardbuddy --help` shows them next to the
/// commands.
#[derive(clap::Args, Debug)]
#[command(next_help_heading = "Helper options (searchd passes --listen, --threads, --log-level)")]
pub(crate) struct HelperArgs {
    /// searchd's HTTP URL to call back; `http://` is optional and a 0.0.0.0
    /// host becomes 127.0.0.1 [default: http://127.0.0.1:9308]
    #[arg(long, value_name = "URL", value_parser = normalize_http_url)]
    listen: Option<String>,
    /// Address of the helper endpoint; port 0 picks a free port
    /// [default: 127.0.0.1:0]
    #[arg(long, value_name = "HOST[:PORT]")]
    bind: Option<BindAddr>,
    /// Worker threads, clamped to 1..=256 [default: number of CPUs]
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    threads: Option<i64>,
    /// info, debug, debugv or debugvv [default: info]
    #[arg(long, value_name = "LEVEL")]
    log_level: Option<LogLevel>,
    /// Accepted for compatibility; shardbuddy sends no telemetry
    #[arg(long)]
    disable_telemetry: bool,
    /// Accepted for compatibility and ignored
    #[arg(long, value_name = "SECONDS")]
    telemetry_period: Option<String>,
    /// Accepted for compatibility and ignored (Buddy plugin selection)
    #[arg(long, value_name = "PLUGIN")]
    skip: Vec<String>,
    /// Accepted for compatibility and ignored (Buddy plugin selection)
    #[arg(long, value_name = "PLUGIN")]
    enable_plugin: Vec<String>,
    /// Another Buddy (e.g. PHP Buddy) that receives every request shardbuddy
    /// does not handle; also read from SHARDBUDDY_FALLBACK_URL
    #[arg(long, value_name = "URL", value_parser = normalize_http_url)]
    fallback_url: Option<String>,
    /// Time limit for one call to a daemon [default: 60]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    daemon_timeout: Option<Duration>,
    /// Time limit for connecting to a daemon or the fallback [default: 3]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    connect_timeout: Option<Duration>,
    /// Time limit for one request forwarded to the fallback Buddy [default: 300]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    fallback_timeout: Option<Duration>,
    /// How long in-flight requests may finish after SIGTERM [default: 5]
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    shutdown_grace: Option<Duration>,
    /// Largest request body accepted from searchd [default: 16777216]
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    max_body_size: Option<u64>,
}

/// How a known long flag is written on the command line.
struct Flag {
    name: &'static str,
    takes_value: bool,
    repeatable: bool,
}

const fn flag(name: &'static str, takes_value: bool, repeatable: bool) -> Flag {
    Flag {
        name,
        takes_value,
        repeatable,
    }
}

const FLAGS: &[Flag] = &[
    flag("listen", true, false),
    flag("bind", true, false),
    flag("threads", true, false),
    flag("log-level", true, false),
    flag("disable-telemetry", false, false),
    flag("telemetry-period", true, false),
    flag("skip", true, true),
    flag("enable-plugin", true, true),
    flag("fallback-url", true, false),
    flag("daemon-timeout", true, false),
    flag("connect-timeout", true, false),
    flag("fallback-timeout", true, false),
    flag("shutdown-grace", true, false),
    flag("max-body-size", true, false),
    flag("help", false, false),
    flag("version", false, false),
];

/// Server-mode entry point.
pub fn run(args: Vec<String>) -> ExitCode {
    let token = take_token();
    if let Ok(spec) = std::env::var(FAILPOINTS_ENV) {
        if let Err(err) = crate::failpoint::configure(&spec) {
            let message = format!("invalid value '{spec}' of {FAILPOINTS_ENV}: {err}");
            Cli::command()
                .error(ErrorKind::InvalidValue, message)
                .exit();
        }
    }
    let fallback_env = std::env::var(FALLBACK_ENV).ok();
    match parse(args, fallback_env, token) {
        Ok((config, ignored)) => crate::app::run(config, &ignored),
        // Prints help/version on stdout (exit 0) or the problem on stderr (exit 2).
        Err(err) => err.exit(),
    }
}

/// Reads `BUDDY_TOKEN` once and removes it from the environment, as Buddy
/// does, so it does not leak into anything started later.
fn take_token() -> Option<String> {
    let token = std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty());
    // Called before any other thread exists, so changing the environment is sound.
    std::env::remove_var(TOKEN_ENV);
    token
}

/// Builds the configuration from argv (without the program name), the
/// fallback URL from the environment and the token. Returns the arguments
/// that were set aside as unknown.
fn parse(
    args: Vec<String>,
    fallback_env: Option<String>,
    token: Option<String>,
) -> Result<(Config, Vec<String>), clap::Error> {
    let (known, ignored) = filter_args(args);
    // Only known flags are left, so no command can appear here.
    let parsed =
        Cli::try_parse_from(std::iter::once("shardbuddy".to_string()).chain(known))?.helper;
    let fallback_url = match (
        parsed.fallback_url,
        fallback_env.filter(|v| !v.trim().is_empty()),
    ) {
        (Some(url), _) => Some(url),
        (None, Some(raw)) => Some(normalize_http_url(&raw).map_err(|err| {
            Cli::command().error(
                ErrorKind::InvalidValue,
                format!("invalid value '{raw}' of {FALLBACK_ENV}: {err}"),
            )
        })?),
        (None, None) => None,
    };
    let defaults = Config::default();
    let config = Config {
        listen_url: parsed.listen.unwrap_or(defaults.listen_url),
        bind: parsed.bind.unwrap_or(defaults.bind),
        threads: parsed.threads.map_or(defaults.threads, clamp_threads),
        log_level: parsed.log_level.unwrap_or(defaults.log_level),
        fallback_url,
        token,
        daemon_timeout: parsed.daemon_timeout.unwrap_or(defaults.daemon_timeout),
        connect_timeout: parsed.connect_timeout.unwrap_or(defaults.connect_timeout),
        fallback_timeout: parsed.fallback_timeout.unwrap_or(defaults.fallback_timeout),
        max_body_bytes: parsed.max_body_size.map_or(defaults.max_body_bytes, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        }),
        shutdown_grace: parsed.shutdown_grace.unwrap_or(defaults.shutdown_grace),
    };
    Ok((config, ignored))
}

fn clamp_threads(n: i64) -> usize {
    let clamped = u64::try_from(n)
        .unwrap_or(0)
        .clamp(*THREADS_RANGE.start(), *THREADS_RANGE.end());
    usize::try_from(clamped).unwrap_or(1)
}

/// Splits argv into arguments clap should parse, normalised to
/// `--name=value` (or `--name`), and unknown arguments to be ignored.
fn filter_args(args: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut known = Vec::new();
    let mut ignored = Vec::new();
    let mut seen: Vec<&'static str> = Vec::new();
    let mut args = args.into_iter().peekable();
    while let Some(arg) = args.next() {
        let spelled = match arg.as_str() {
            "-h" => "--help",
            "-V" => "--version",
            other => other,
        };
        let (name, inline_value) = match spelled
            .strip_prefix("--")
            .map(|rest| rest.split_once('=').unwrap_or((rest, "")))
        {
            Some((name, value)) if spelled.contains('=') => (name, Some(value.to_string())),
            Some((name, _)) => (name, None),
            None => ("", None),
        };
        let Some(flag) = FLAGS.iter().find(|f| f.name == name) else {
            ignored.push(arg);
            continue;
        };
        let value = match (flag.takes_value, inline_value) {
            (true, Some(value)) => Some(value),
            (true, None) => match args.peek() {
                Some(next) if !next.starts_with("--") => args.next(),
                _ => {
                    ignored.push(arg);
                    continue;
                }
            },
            (false, _) => None,
        };
        if !flag.repeatable && seen.contains(&flag.name) {
            ignored.push(match value {
                Some(v) => format!("--{}={v}", flag.name),
                None => arg,
            });
            continue;
        }
        seen.push(flag.name);
        known.push(match value {
            Some(v) => format!("--{}={v}", flag.name),
            None => format!("--{}", flag.name),
        });
    }
    (known, ignored)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn argv_is_filtered_leniently() {
        let cases: [(&[&str], &[&str], &[&str]); 9] = [
            (
                &["--listen=http://127.0.0.1:9312", "--threads=2"],
                &["--listen=http://127.0.0.1:9312", "--threads=2"],
                &[],
            ),
            (
                &["--threads=1", "--threads=8"],
                &["--threads=1"],
                &["--threads=8"],
            ),
            (
                &["--listen", "h:1", "--bind", "127.0.0.1:0"],
                &["--listen=h:1", "--bind=127.0.0.1:0"],
                &[],
            ),
            (&["--skip=a", "--skip=b"], &["--skip=a", "--skip=b"], &[]),
            (&["--disable-telemetry=1"], &["--disable-telemetry"], &[]),
            (
                &["--frobnicate", "--x=1", "stray", "-q"],
                &[],
                &["--frobnicate", "--x=1", "stray", "-q"],
            ),
            (&["--listen"], &[], &["--listen"]),
            (
                &["--listen", "--threads=2"],
                &["--threads=2"],
                &["--listen"],
            ),
            (&["-h", "-V"], &["--help", "--version"], &[]),
        ];
        for (input, want_known, want_ignored) in cases {
            let (known, ignored) = filter_args(strings(input));
            assert_eq!(
                (known, ignored),
                (strings(want_known), strings(want_ignored)),
                "{input:?}"
            );
        }
    }

    #[test]
    fn searchd_argv_builds_the_config() {
        let args = strings(&[
            "--listen=http://0.0.0.0:9312",
            "--disable-telemetry",
            "--threads=300",
            "--log-level=debugv",
            "--unknown-flag",
        ]);
        let (config, ignored) = parse(args, None, Some("secret".into())).unwrap();
        assert_eq!(config.listen_url, "http://127.0.0.1:9312");
        assert_eq!(config.threads, 256);
        assert_eq!(config.log_level, LogLevel::Debugv);
        assert_eq!(config.token.as_deref(), Some("secret"));
        assert_eq!(
            config.bind,
            BindAddr {
                host: "127.0.0.1".into(),
                port: 0
            }
        );
        assert_eq!(ignored, strings(&["--unknown-flag"]));
    }

    #[test]
    fn defaults_and_tuning_flags() {
        let (config, _) = parse(vec![], None, None).unwrap();
        assert_eq!(
            config,
            Config {
                threads: config.threads,
                ..Config::default()
            }
        );
        assert_eq!(config.listen_url, "http://127.0.0.1:9308");

        let args = strings(&[
            "--daemon-timeout=1.5",
            "--connect-timeout=2",
            "--fallback-timeout=9",
            "--shutdown-grace=0.5",
            "--max-body-size=1024",
            "--threads=-3",
        ]);
        let (config, _) = parse(args, None, None).unwrap();
        assert_eq!(config.daemon_timeout, Duration::from_millis(1500));
        assert_eq!(config.connect_timeout, Duration::from_secs(2));
        assert_eq!(config.fallback_timeout, Duration::from_secs(9));
        assert_eq!(config.shutdown_grace, Duration::from_millis(500));
        assert_eq!(config.max_body_bytes, 1024);
        assert_eq!(config.threads, 1);
    }

    #[test]
    fn fallback_url_comes_from_flag_or_environment() {
        let env = || Some("127.0.0.1:9999".to_string());
        let cases = [
            (vec![], None, None),
            (vec![], env(), Some("http://127.0.0.1:9999")),
            (vec![], Some(" ".to_string()), None),
            (
                strings(&["--fallback-url=http://h:1"]),
                env(),
                Some("http://h:1"),
            ),
        ];
        for (args, env_value, want) in cases {
            let (config, _) = parse(args, env_value, None).unwrap();
            assert_eq!(config.fallback_url.as_deref(), want);
        }
        let err = parse(vec![], Some("unix:/x".into()), None).unwrap_err();
        assert!(
            err.to_string()
                .contains("invalid value 'unix:/x' of SHARDBUDDY_FALLBACK_URL: unix sockets"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_of_known_flags_are_refused() {
        for bad in [
            "--listen=https://h:1",
            "--bind=h:x",
            "--threads=many",
            "--log-level=loud",
            "--daemon-timeout=0",
            "--max-body-size=0",
        ] {
            let err = parse(strings(&[bad]), None, None).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{bad}: {err}");
        }
    }

    #[test]
    fn the_plugin_manifest_matches_the_command_line() {
        let manifest: serde_json::Value =
            serde_json::from_str(include_str!("../../plugin.json")).expect("plugin.json is JSON");
        assert_eq!(manifest["version"], crate::VERSION);
        assert_eq!(
            manifest["protocol_version"],
            crate::protocol::PROTOCOL_VERSION
        );
        let listed: Vec<&str> = manifest["flags"]
            .as_array()
            .expect("flags")
            .iter()
            .map(|f| f["flag"].as_str().expect("flag name"))
            .collect();
        let accepted: Vec<String> = FLAGS.iter().map(|f| format!("--{}", f.name)).collect();
        assert_eq!(listed, accepted);
        let defaults = Config::default();
        let default_of = |flag: &str| {
            manifest["flags"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["flag"] == flag)
                .unwrap()["default"]
                .clone()
        };
        assert_eq!(default_of("--listen"), defaults.listen_url.as_str());
        assert_eq!(
            default_of("--max-body-size"),
            defaults.max_body_bytes.to_string().as_str()
        );
        assert_eq!(
            default_of("--shutdown-grace"),
            defaults.shutdown_grace.as_secs().to_string().as_str()
        );
        assert_eq!(
            default_of("--daemon-timeout"),
            defaults.daemon_timeout.as_secs().to_string().as_str()
        );
        assert_eq!(
            default_of("--connect-timeout"),
            defaults.connect_timeout.as_secs().to_string().as_str()
        );
        assert_eq!(
            default_of("--fallback-timeout"),
            defaults.fallback_timeout.as_secs().to_string().as_str()
        );
    }

    #[test]
    fn help_and_version_are_answers_not_errors() {
        for (arg, kind) in [
            ("--help", ErrorKind::DisplayHelp),
            ("--version", ErrorKind::DisplayVersion),
        ] {
            assert_eq!(parse(strings(&[arg]), None, None).unwrap_err().kind(), kind);
        }
    }
}
