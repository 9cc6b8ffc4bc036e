//! Logs go to stdout, which searchd relays into its own log as
//! `[BUDDY] <line>`; searchd adds the timestamp, so none is printed here, and
//! no colours. The level can be changed at run time through `/config`.

use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, Registry};

use crate::config::LogLevel;
use crate::server::LogLevelControl;

/// The handle `/config` uses to change the level of the installed logger.
pub struct LogControl {
    filter: reload::Handle<Targets, Registry>,
    level: Mutex<LogLevel>,
}

/// The environment variable that picks the log format.
pub const FORMAT_ENV: &str = "SHARDBUDDY_LOG_FORMAT";

/// Whether `SHARDBUDDY_LOG_FORMAT` asks for one JSON object per line.
fn json_wanted(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.trim().eq_ignore_ascii_case("json"))
}

/// Installs the process-wide logger. Call only after the handshake line has
/// been printed: nothing may reach stdout before it.
///
/// With `SHARDBUDDY_LOG_FORMAT=json` every line is one JSON object (level,
/// message and the event's fields: `table`, `group`, `node`, …), which
/// searchd relays as it is behind its `[BUDDY]` prefix.
pub fn init(level: LogLevel) -> Arc<LogControl> {
    let (filter, handle) = reload::Layer::new(filter_for(level));
    let json = json_wanted(std::env::var(FORMAT_ENV).ok().as_deref());
    let text = (!json).then(|| {
        fmt::layer()
            .with_writer(std::io::stdout)
            .with_ansi(false)
            .without_time()
            .with_target(false)
    });
    let json = json.then(|| {
        fmt::layer()
            .json()
            .with_writer(std::io::stdout)
            .without_time()
            .with_target(false)
            .with_current_span(false)
            .with_span_list(false)
            .flatten_event(true)
    });
    // Fails only if a logger is already installed, which then keeps working.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(text)
        .with(json)
        .try_init();
    Arc::new(LogControl {
        filter: handle,
        level: Mutex::new(level),
    })
}

/// Buddy's levels on tracing's. Libraries (the HTTP stack) only speak up
/// with warnings, except at `debugvv`, which shows everything.
fn filter_for(level: LogLevel) -> Targets {
    let (own, others) = match level {
        LogLevel::Info => (LevelFilter::INFO, LevelFilter::WARN),
        LogLevel::Debug => (LevelFilter::DEBUG, LevelFilter::WARN),
        LogLevel::Debugv => (LevelFilter::TRACE, LevelFilter::WARN),
        LogLevel::Debugvv => (LevelFilter::TRACE, LevelFilter::TRACE),
    };
    Targets::new()
        .with_target(env!("CARGO_CRATE_NAME"), own)
        .with_default(others)
}

impl LogLevelControl for LogControl {
    fn current(&self) -> LogLevel {
        *self.level.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, level: LogLevel) -> Result<(), String> {
        let mut current = self.level.lock().unwrap_or_else(PoisonError::into_inner);
        self.filter
            .reload(filter_for(level))
            .map_err(|err| format!("cannot change the log level: {err}"))?;
        *current = level;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_asked_for_by_name() {
        assert!(json_wanted(Some("json")));
        assert!(json_wanted(Some(" JSON ")));
        assert!(!json_wanted(Some("text")));
        assert!(!json_wanted(None));
    }

    #[test]
    fn buddy_levels_map_onto_tracing_levels() {
        use tracing::Level;
        let own = env!("CARGO_CRATE_NAME");
        // (level, own crate's most verbose level, a library's most verbose level)
        let cases = [
            (LogLevel::Info, Level::INFO, Level::WARN),
            (LogLevel::Debug, Level::DEBUG, Level::WARN),
            (LogLevel::Debugv, Level::TRACE, Level::WARN),
            (LogLevel::Debugvv, Level::TRACE, Level::TRACE),
        ];
        let all = [
            Level::ERROR,
            Level::WARN,
            Level::INFO,
            Level::DEBUG,
            Level::TRACE,
        ];
        for (level, own_max, lib_max) in cases {
            let f = filter_for(level);
            for l in all {
                assert_eq!(f.would_enable(own, &l), l <= own_max, "{level} {own} {l}");
                assert_eq!(
                    f.would_enable("hyper_util", &l),
                    l <= lib_max,
                    "{level} lib {l}"
                );
            }
        }
    }
}
