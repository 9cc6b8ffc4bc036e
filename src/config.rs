//! Run-time configuration of the shardbuddy process, and the pure parsing of
//! the values searchd (or an operator) passes on the command line.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use hyper::Uri;

/// searchd's URL when `--listen` is absent (Buddy's default).
pub const DEFAULT_LISTEN_URL: &str = "http://127.0.0.1:9308";
/// The helper listens on loopback only unless `--bind` says otherwise.
pub const DEFAULT_BIND_HOST: &str = "127.0.0.1";
/// Buddy's accepted range for `--threads`.
pub const THREADS_RANGE: std::ops::RangeInclusive<u64> = 1..=256;

/// Everything the process needs to run; built once at start.
#[derive(Clone, PartialEq)]
pub struct Config {
    /// searchd's HTTP URL, the base of every call back (`--listen`).
    pub listen_url: String,
    /// Where the Buddy endpoint listens; port 0 picks a free port (`--bind`).
    pub bind: BindAddr,
    /// Worker threads of the runtime (`--threads`, clamped to 1..=256).
    pub threads: usize,
    /// Initial log level (`--log-level`); `/config` changes it later.
    pub log_level: LogLevel,
    /// Another Buddy that gets every request shardbuddy does not handle.
    pub fallback_url: Option<String>,
    /// `BUDDY_TOKEN`: the bearer token of `system.buddy`. Never logged.
    pub token: Option<String>,
    /// Limit for one call to a daemon.
    pub daemon_timeout: Duration,
    /// Limit for establishing a connection to a daemon or the fallback.
    pub connect_timeout: Duration,
    /// Limit for one forwarded request to the fallback Buddy.
    pub fallback_timeout: Duration,
    /// Largest request body accepted from searchd.
    pub max_body_bytes: usize,
    /// How long in-flight requests may run on after SIGTERM.
    pub shutdown_grace: Duration,
}

impl fmt::Debug for Config {
    // Hand-written so the token never reaches a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen_url", &self.listen_url)
            .field("bind", &self.bind)
            .field("threads", &self.threads)
            .field("log_level", &self.log_level)
            .field("fallback_url", &self.fallback_url)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("daemon_timeout", &self.daemon_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("fallback_timeout", &self.fallback_timeout)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen_url: DEFAULT_LISTEN_URL.to_string(),
            bind: BindAddr {
                host: DEFAULT_BIND_HOST.to_string(),
                port: 0,
            },
            threads: std::thread::available_parallelism().map_or(1, usize::from),
            log_level: LogLevel::Info,
            fallback_url: None,
            token: None,
            daemon_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(3),
            fallback_timeout: Duration::from_secs(300),
            max_body_bytes: 16 * 1024 * 1024,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// A bad value for a known flag. The texts do not repeat the value: clap
/// (and the other callers) name the value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{reason}; expected http://HOST[:PORT]")]
    Url { value: String, reason: &'static str },
    #[error("{reason}; expected HOST[:PORT], for example 127.0.0.1:9999")]
    Bind { value: String, reason: &'static str },
    #[error("expected info, debug, debugv or debugvv")]
    LogLevel(String),
    #[error("expected a positive number of seconds, for example 0.5 or 30")]
    Seconds(String),
}

/// Buddy's log levels. `debugv` and `debugvv` both enable every message;
/// the distinction is kept so `/config` reports what was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Info,
    Debug,
    Debugv,
    Debugvv,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Debug => "debug",
            Self::Debugv => "debugv",
            Self::Debugvv => "debugvv",
        }
    }
}

impl FromStr for LogLevel {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "info" => Ok(Self::Info),
            "debug" => Ok(Self::Debug),
            "debugv" => Ok(Self::Debugv),
            "debugvv" => Ok(Self::Debugvv),
            other => Err(ConfigError::LogLevel(other.to_string())),
        }
    }
}

impl fmt::Display for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `host[:port]` to listen on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindAddr {
    pub host: String,
    pub port: u16,
}

impl FromStr for BindAddr {
    type Err = ConfigError;

    /// Accepts `host`, `host:port`, `[v6]`, `[v6]:port` and a bare IPv6
    /// address; a missing port means 0 (any free port).
    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let err = |reason| ConfigError::Bind {
            value: raw.to_string(),
            reason,
        };
        let (host, port) = if let Some(rest) = raw.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| err("unclosed '['"))?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(
                        after
                            .strip_prefix(':')
                            .ok_or_else(|| err("junk after ']'"))?,
                    ),
                ),
            }
        } else {
            match raw.matches(':').count() {
                0 => (raw, None),
                1 => raw
                    .split_once(':')
                    .map(|(h, p)| (h, Some(p)))
                    .ok_or_else(|| err("bad port"))?,
                _ => (raw, None),
            }
        };
        if host.is_empty() {
            return Err(err("the host is empty"));
        }
        let port = match port {
            None => 0,
            Some(p) => p
                .parse()
                .map_err(|_| err("the port is not a number from 0 to 65535"))?,
        };
        Ok(Self {
            host: host.to_string(),
            port,
        })
    }
}

/// Normalises an HTTP URL given on the command line, as Buddy does for
/// `--listen`: `http://` is optional, and a `0.0.0.0` host (listen on every
/// address) is rewritten to `127.0.0.1` (where to connect). Any path is
/// kept; a trailing `/` is dropped.
pub fn normalize_http_url(raw: &str) -> Result<String, ConfigError> {
    let err = |reason| ConfigError::Url {
        value: raw.to_string(),
        reason,
    };
    let trimmed = raw.trim();
    if trimmed.starts_with("unix:") {
        return Err(err("unix sockets are not supported"));
    }
    let with_scheme = match trimmed.split_once("://") {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("http") => trimmed.to_string(),
        Some(_) => return Err(err("only http:// is supported")),
        None => format!("http://{trimmed}"),
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|_| err("it cannot be parsed"))?;
    let authority = uri.authority().ok_or_else(|| err("it has no host"))?;
    if authority.host().is_empty() || authority.as_str().contains('@') {
        return Err(err("it needs a plain host[:port]"));
    }
    if authority.port_u16().is_none() && authority.as_str() != authority.host() {
        return Err(err("the port is not a number from 0 to 65535"));
    }
    let host = match authority.host() {
        "0.0.0.0" => "127.0.0.1",
        other => other,
    };
    let port = authority
        .port()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let path = uri.path_and_query().map_or("", |p| p.as_str());
    Ok(format!("http://{host}{port}{}", path.trim_end_matches('/')))
}

/// Parses a positive, finite number of seconds (`0.5`, `30`).
pub fn parse_seconds(raw: &str) -> Result<Duration, ConfigError> {
    raw.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| ConfigError::Seconds(raw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_are_normalised_like_buddy() {
        let cases = [
            ("http://127.0.0.1:9312", Ok("http://127.0.0.1:9312")),
            ("127.0.0.1:9312", Ok("http://127.0.0.1:9312")),
            ("http://0.0.0.0:9308", Ok("http://127.0.0.1:9308")),
            ("0.0.0.0:9308", Ok("http://127.0.0.1:9308")),
            ("HTTP://localhost:9308/", Ok("http://localhost:9308")),
            ("http://[::1]:9308", Ok("http://[::1]:9308")),
            ("localhost", Ok("http://localhost")),
            ("http://h:1/buddy/", Ok("http://h:1/buddy")),
            (" http://h:1 ", Ok("http://h:1")),
            ("https://h:1", Err("only http:// is supported")),
            (
                "unix:/run/searchd.sock",
                Err("unix sockets are not supported"),
            ),
            ("http://", Err("it cannot be parsed")),
            ("", Err("it cannot be parsed")),
            ("http://u:p@h:1", Err("it needs a plain host[:port]")),
            ("h:port", Err("the port is not a number from 0 to 65535")),
            ("h:", Err("the port is not a number from 0 to 65535")),
        ];
        for (raw, want) in cases {
            let got = normalize_http_url(raw);
            let want = want.map(str::to_string).map_err(|reason| ConfigError::Url {
                value: raw.to_string(),
                reason,
            });
            assert_eq!(got, want, "{raw:?}");
        }
    }

    #[test]
    fn bind_addresses() {
        let ok = |host: &str, port| {
            Ok(BindAddr {
                host: host.into(),
                port,
            })
        };
        let cases = [
            ("127.0.0.1", ok("127.0.0.1", 0)),
            ("0.0.0.0:9999", ok("0.0.0.0", 9999)),
            ("localhost:0", ok("localhost", 0)),
            ("[::1]:80", ok("::1", 80)),
            ("[::1]", ok("::1", 0)),
            ("::1", ok("::1", 0)),
        ];
        for (raw, want) in cases {
            assert_eq!(raw.parse::<BindAddr>(), want, "{raw:?}");
        }
        for bad in ["", ":80", "h:", "h:99999", "h:x", "[::1", "[::1]x"] {
            assert!(bad.parse::<BindAddr>().is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn log_levels_round_trip() {
        for name in ["info", "debug", "debugv", "debugvv"] {
            assert_eq!(name.parse::<LogLevel>().unwrap().as_str(), name);
        }
        assert_eq!(
            "INFO".parse::<LogLevel>(),
            Err(ConfigError::LogLevel("INFO".into()))
        );
    }

    #[test]
    fn debug_output_hides_the_token() {
        let config = Config {
            token: Some("s3cr3t".into()),
            ..Config::default()
        };
        let text = format!("{config:?}");
        assert!(!text.contains("s3cr3t") && text.contains("<set>"), "{text}");
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_seconds("30"), Ok(Duration::from_secs(30)));
        for bad in ["0", "-1", "x", "inf", "NaN", ""] {
            assert!(parse_seconds(bad).is_err(), "{bad:?}");
        }
    }
}
