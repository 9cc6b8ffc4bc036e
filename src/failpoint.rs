//! Failpoints: named places in the executor, the master and the helper's
//! request path where a test (or an operator reproducing a problem) makes
//! the process fail on purpose.
//!
//! They are compiled into every build and cost one relaxed atomic load
//! while none is set. They are set at start from `SHARDBUDDY_FAILPOINTS`
//! and at run time through `/config` (`{"failpoints":"…"}`), both in the
//! form `name=action[,name=action…]`, where an action is
//!
//! | action | what the place does |
//! |---|---|
//! | `panic` | panics (the task it runs in ends) |
//! | `abort` | ends the process at once, as `kill -9` would (no clean-up) |
//! | `error(<text>)` | fails with `<text>`, the way that place fails |
//! | `delay(<ms>)` | waits that long, then goes on |
//! | `hang` | never goes on |
//! | `off` | nothing (removes the setting) |
//!
//! Why not the `fail` crate: its points exist only in builds with its
//! feature on, and then each check takes a lock and looks the name up; its
//! `sleep` and `pause` block the thread, which stalls a tokio worker; and it
//! has no process-exit action. What is needed here fits in this file.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, RwLock};
use std::task::{Context, Poll};
use std::time::Duration;

/// The executor is about to run a queue row's statement.
pub const EXECUTOR_BEFORE_RUN: &str = "executor.before_run";
/// The executor ran a row's statement and has not recorded it yet.
pub const EXECUTOR_AFTER_RUN: &str = "executor.after_run";
/// The executor is about to record rows as processed.
pub const EXECUTOR_BEFORE_RECORD: &str = "executor.before_record";
/// The executor recorded rows as processed.
pub const EXECUTOR_AFTER_RECORD: &str = "executor.after_record";
/// The master planned an operation and writes nothing yet.
pub const MASTER_AFTER_PLAN: &str = "master.after_plan";
/// The master wrote an operation's queue rows, not its commit record.
pub const MASTER_AFTER_ROWS: &str = "master.after_rows";
/// The master wrote an operation's commit record.
pub const MASTER_AFTER_COMMIT: &str = "master.after_commit";
/// The helper accepted a request from searchd (a valid envelope).
pub const HELPER_RECEIVED: &str = "helper.received";
/// A CREATE or DROP wrote its request and reads its outcome (each read;
/// `error` fails the read).
pub const HELPER_AFTER_REQUEST: &str = "helper.after_request";
/// A CREATE or DROP read its outcome and is about to answer.
pub const HELPER_BEFORE_REPLY: &str = "helper.before_reply";

/// Every failpoint, in the order a CREATE or DROP passes them.
pub const NAMES: &[&str] = &[
    HELPER_RECEIVED,
    HELPER_AFTER_REQUEST,
    MASTER_AFTER_PLAN,
    MASTER_AFTER_ROWS,
    MASTER_AFTER_COMMIT,
    EXECUTOR_BEFORE_RUN,
    EXECUTOR_AFTER_RUN,
    EXECUTOR_BEFORE_RECORD,
    EXECUTOR_AFTER_RECORD,
    HELPER_BEFORE_REPLY,
];

/// What a failpoint does when reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Panic,
    Abort,
    Error(String),
    Delay(Duration),
    Hang,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Panic => f.write_str("panic"),
            Action::Abort => f.write_str("abort"),
            Action::Error(text) => write!(f, "error({text})"),
            Action::Delay(d) => write!(f, "delay({})", d.as_millis()),
            Action::Hang => f.write_str("hang"),
        }
    }
}

/// A failpoint set to `error(<text>)` was reached; the place fails with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}")]
pub struct Injected {
    pub name: &'static str,
    pub text: String,
}

/// Why a failpoint setting was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingError {
    #[error("'{0}' is not name=action; expected for example executor.before_run=abort")]
    Shape(String),
    #[error("there is no failpoint '{0}'; the failpoints are {names}", names = NAMES.join(", "))]
    UnknownName(String),
    #[error(
        "'{0}' is not an action; expected panic, abort, error(<text>), delay(<ms>), hang or off"
    )]
    UnknownAction(String),
}

/// Whether any failpoint is set: the only thing read while none is.
static ARMED: AtomicBool = AtomicBool::new(false);
static SETTINGS: LazyLock<RwLock<BTreeMap<&'static str, Action>>> =
    LazyLock::new(|| RwLock::new(BTreeMap::new()));

/// Reaches failpoint `name`: nothing unless it is set. The check is made
/// when the future is created (callers await it at once), inline, so an
/// unset failpoint costs one relaxed load, a branch and a poll that returns
/// at once; the place's work is boxed only while some failpoint is set.
#[inline]
pub fn hit(name: &'static str) -> Hit {
    if ARMED.load(Ordering::Relaxed) {
        Hit(Some(Box::pin(act(name))))
    } else {
        Hit(None)
    }
}

/// What a set failpoint does, boxed.
type Acting = Pin<Box<dyn Future<Output = Result<(), Injected>> + Send>>;

/// The future of [`hit`].
#[must_use = "a failpoint acts only when awaited"]
pub struct Hit(Option<Acting>);

impl Future for Hit {
    type Output = Result<(), Injected>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            None => Poll::Ready(Ok(())),
            Some(acting) => acting.as_mut().poll(cx),
        }
    }
}

/// What failpoint `name` does, when any failpoint is set.
#[cold]
async fn act(name: &'static str) -> Result<(), Injected> {
    let action = match SETTINGS.read() {
        Ok(settings) => settings.get(name).cloned(),
        Err(poisoned) => poisoned.into_inner().get(name).cloned(),
    };
    let Some(action) = action else {
        return Ok(());
    };
    tracing::warn!(failpoint = name, %action, "failpoint reached");
    match action {
        Action::Panic => panic!("failpoint {name} reached"),
        Action::Abort => {
            // As `kill -9` would: no clean-up, no core file.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            std::process::abort()
        }
        Action::Error(text) => Err(Injected { name, text }),
        Action::Delay(d) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        Action::Hang => std::future::pending().await,
    }
}

/// Replaces every setting with those of `spec` (`""` clears them all).
pub fn configure(spec: &str) -> Result<(), SettingError> {
    let parsed = parse(spec)?;
    let mut settings = SETTINGS.write().unwrap_or_else(|p| p.into_inner());
    *settings = parsed;
    ARMED.store(!settings.is_empty(), Ordering::Relaxed);
    Ok(())
}

/// The settings, in `configure`'s form (`""` when none is set).
pub fn current() -> String {
    let settings = SETTINGS.read().unwrap_or_else(|p| p.into_inner());
    settings
        .iter()
        .map(|(name, action)| format!("{name}={action}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Parses `name=action[,name=action…]`; a later setting of a name wins,
/// `off` removes it. Commas inside `error(…)` belong to the text.
pub fn parse(spec: &str) -> Result<BTreeMap<&'static str, Action>, SettingError> {
    let mut settings = BTreeMap::new();
    for item in split_items(spec) {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let (name, action) = item
            .split_once('=')
            .ok_or_else(|| SettingError::Shape(item.to_string()))?;
        let name = NAMES
            .iter()
            .copied()
            .find(|known| *known == name.trim())
            .ok_or_else(|| SettingError::UnknownName(name.trim().to_string()))?;
        match parse_action(action.trim())? {
            Some(action) => settings.insert(name, action),
            None => settings.remove(name),
        };
    }
    Ok(settings)
}

/// `None` for `off`.
fn parse_action(raw: &str) -> Result<Option<Action>, SettingError> {
    let unknown = || SettingError::UnknownAction(raw.to_string());
    let argument = |prefix: &str| {
        raw.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('('))
            .and_then(|rest| rest.strip_suffix(')'))
    };
    Ok(Some(match raw {
        "off" => return Ok(None),
        "panic" => Action::Panic,
        "abort" => Action::Abort,
        "hang" => Action::Hang,
        _ => {
            if let Some(text) = argument("error") {
                Action::Error(text.to_string())
            } else if let Some(ms) = argument("delay") {
                Action::Delay(Duration::from_millis(
                    ms.trim().parse().map_err(|_| unknown())?,
                ))
            } else {
                return Err(unknown());
            }
        }
    }))
}

/// Splits at commas outside parentheses.
fn split_items(spec: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, c) in spec.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&spec[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&spec[start..]);
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    type Settings = BTreeMap<&'static str, Action>;

    #[test]
    fn settings_are_parsed() {
        let ok = |pairs: &[(&'static str, Action)]| Ok(pairs.iter().cloned().collect());
        let cases: Vec<(&str, Result<Settings, SettingError>)> = vec![
            ("", ok(&[])),
            (" , ", ok(&[])),
            (
                "executor.before_run=abort",
                ok(&[(EXECUTOR_BEFORE_RUN, Action::Abort)]),
            ),
            (
                "master.after_rows=delay(250), helper.received=error(no, not now)",
                ok(&[
                    (MASTER_AFTER_ROWS, Action::Delay(Duration::from_millis(250))),
                    (HELPER_RECEIVED, Action::Error("no, not now".into())),
                ]),
            ),
            (
                "executor.after_run=panic,executor.after_run=hang",
                ok(&[(EXECUTOR_AFTER_RUN, Action::Hang)]),
            ),
            ("executor.after_run=panic,executor.after_run=off", ok(&[])),
            ("abort", Err(SettingError::Shape("abort".into()))),
            (
                "nowhere=abort",
                Err(SettingError::UnknownName("nowhere".into())),
            ),
            (
                "executor.before_run=explode",
                Err(SettingError::UnknownAction("explode".into())),
            ),
            (
                "executor.before_run=delay(soon)",
                Err(SettingError::UnknownAction("delay(soon)".into())),
            ),
        ];
        for (spec, want) in cases {
            assert_eq!(parse(spec), want, "{spec:?}");
        }
        assert_eq!(
            SettingError::Shape("abort".into()).to_string(),
            "'abort' is not name=action; expected for example executor.before_run=abort"
        );
    }

    #[test]
    fn actions_print_as_they_are_written() {
        let spec =
            "executor.before_run=error(a, b),helper.received=delay(5),master.after_plan=hang";
        let parsed = parse(spec).unwrap();
        let printed: Vec<String> = parsed.iter().map(|(n, a)| format!("{n}={a}")).collect();
        assert_eq!(parse(&printed.join(",")).unwrap(), parsed);
    }

    #[tokio::test]
    async fn a_set_failpoint_acts_and_an_unset_one_does_nothing() {
        // The one test that changes the process-wide settings, on points no
        // other unit test reaches.
        configure("executor.after_record=error(refused),executor.before_record=delay(1)").unwrap();
        assert_eq!(
            hit(EXECUTOR_AFTER_RECORD).await,
            Err(Injected {
                name: EXECUTOR_AFTER_RECORD,
                text: "refused".into()
            })
        );
        assert_eq!(hit(EXECUTOR_BEFORE_RECORD).await, Ok(()));
        assert_eq!(
            current(),
            "executor.after_record=error(refused),executor.before_record=delay(1)"
        );
        configure("").unwrap();
        assert_eq!(hit(EXECUTOR_AFTER_RECORD).await, Ok(()));
        assert_eq!(current(), "");
    }
}
