//! Statement faults (test tooling, not in searchd): fail or delay the N-th statement that matches
//! a pattern.
//!
//! A rule is checked against each statement as the node receives it over MySQL (each statement
//! of a COM_QUERY) or HTTP `/sql` (each statement of `mode=raw` and `/cli_json`, the one query of
//! `/sql`), trimmed, before it is parsed. Its pattern matches without regard to case: as a
//! substring, or, when it has a `*` (any run of characters) or `?` (one character), as a glob
//! over the whole statement. Every rule counts the statements it matches, from 1; [`Hits`] says
//! which of them it hits. A hit of `fail('<message>')` answers the statement with that error
//! (searchd's generic statement error on the protocol: MySQL `ERROR 1064 (42000)`, HTTP 500
//! `{"error":"<message>"}`) without running it, and the error is final: it is never forwarded to
//! the helper, and the statements after it in the same request are not run. A hit of
//! `delay(<ms>)` runs the statement that much later. When several rules hit one statement, their
//! delays add up, then the first failing rule (in the order the rules were set) fails it.
//!
//! Rules come from `sim { statement_fault = … }` lines (repeatable) and at run time from the
//! control messages behind `testkit::fail_statement`, `delay_statement` and
//! `clear_statement_faults` (`POST /_sim/cluster` on the API port). Without rules a statement
//! costs one relaxed atomic load.
//!
//! The text form of a rule, used by the configuration and on the wire, is
//! `<hits> <action> <pattern>`: `2 fail('disk full') INSERT INTO t*`, `3+ delay(500) select`,
//! `* fail('no') CREATE TABLE IF NOT EXISTS system.t_s1`.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exec::error::{ErrorCode, ExecError};
use crate::node::Node;

/// Which of the statements a rule matches it hits (counted from 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hits {
    /// Only the N-th (`N`).
    Nth(u64),
    /// The N-th and every one after it (`N+`).
    From(u64),
    /// Every one (`*`).
    Every,
}

impl Hits {
    fn covers(self, count: u64) -> bool {
        match self {
            Hits::Nth(n) => count == n,
            Hits::From(n) => count >= n,
            Hits::Every => true,
        }
    }
}

/// What a hit does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer the statement with this error message, without running it.
    Fail(String),
    /// Run the statement after this delay.
    Delay(Duration),
}

/// One rule: a pattern, the matches it hits, and what it does to them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StatementFault {
    pub pattern: String,
    pub hits: Hits,
    pub action: Action,
}

impl StatementFault {
    pub fn fail(pattern: &str, hits: Hits, message: &str) -> StatementFault {
        StatementFault {
            pattern: pattern.to_string(),
            hits,
            action: Action::Fail(message.to_string()),
        }
    }

    pub fn delay(pattern: &str, hits: Hits, delay: Duration) -> StatementFault {
        StatementFault {
            pattern: pattern.to_string(),
            hits,
            action: Action::Delay(delay),
        }
    }

    /// Reads the text form `<hits> <action> <pattern>`.
    pub fn parse(text: &str) -> Result<StatementFault, String> {
        let text = text.trim();
        let (hits, rest) = text
            .split_once(char::is_whitespace)
            .ok_or_else(|| format!("expected `<hits> <action> <pattern>`, got {text:?}"))?;
        let hits = match hits {
            "*" => Hits::Every,
            h => {
                let (digits, from) = match h.strip_suffix('+') {
                    Some(d) => (d, true),
                    None => (h, false),
                };
                let n: u64 = digits
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("hits {h:?}: expected N, N+ or * (N from 1)"))?;
                if from {
                    Hits::From(n)
                } else {
                    Hits::Nth(n)
                }
            }
        };
        let rest = rest.trim_start();
        let (action, rest) = if let Some(args) = rest.strip_prefix("fail(") {
            let (message, after) = quoted(args)?;
            let after = after
                .strip_prefix(')')
                .ok_or("fail('<message>'): expected `)` after the message")?;
            (Action::Fail(message), after)
        } else if let Some(args) = rest.strip_prefix("delay(") {
            let (ms, after) = args.split_once(')').ok_or("delay(<ms>): expected `)`")?;
            let ms: u64 = ms
                .trim()
                .parse()
                .map_err(|_| format!("delay({ms}): expected milliseconds"))?;
            (Action::Delay(Duration::from_millis(ms)), after)
        } else {
            return Err(format!(
                "expected fail('<message>') or delay(<ms>) after the hits, got {rest:?}"
            ));
        };
        if !rest.starts_with(char::is_whitespace) {
            return Err("expected a pattern after the action".to_string());
        }
        let pattern = rest.trim();
        if pattern.is_empty() {
            return Err("expected a pattern after the action".to_string());
        }
        Ok(StatementFault {
            pattern: pattern.to_string(),
            hits,
            action,
        })
    }

    /// Whether the rule's pattern matches a statement.
    pub fn matches(&self, stmt: &str) -> bool {
        let pattern = self.pattern.to_lowercase();
        let stmt = stmt.trim().to_lowercase();
        if pattern.contains(['*', '?']) {
            let p: Vec<char> = pattern.chars().collect();
            let s: Vec<char> = stmt.chars().collect();
            glob(&p, &s)
        } else {
            stmt.contains(&pattern)
        }
    }
}

/// `'<text>'` (or `"<text>"`) at the start of `s`, with `\'`, `\"` and `\\` escapes; the text and
/// what follows the closing quote.
fn quoted(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    let quote = match chars.next() {
        Some((_, q @ ('\'' | '"'))) => q,
        _ => return Err("fail('<message>'): expected a quoted message".to_string()),
    };
    let mut out = String::new();
    let mut escaped = false;
    for (i, c) in chars {
        if escaped {
            out.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == quote {
            return Ok((out, &s[i + c.len_utf8()..]));
        } else {
            out.push(c);
        }
    }
    Err("fail('<message>'): the message has no closing quote".to_string())
}

/// `*` matches any run of characters, `?` one; the whole of `s`.
fn glob(p: &[char], s: &[char]) -> bool {
    // Iterative matching with one backtrack point (the last `*`).
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(&c) if c == '?' || c == s[si] => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

impl fmt::Display for StatementFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.hits {
            Hits::Nth(n) => write!(f, "{n} ")?,
            Hits::From(n) => write!(f, "{n}+ ")?,
            Hits::Every => f.write_str("* ")?,
        }
        match &self.action {
            Action::Fail(message) => {
                let escaped = message.replace('\\', "\\\\").replace('\'', "\\'");
                write!(f, "fail('{escaped}') ")?;
            }
            Action::Delay(d) => write!(f, "delay({}) ", d.as_millis())?,
        }
        f.write_str(&self.pattern)
    }
}

impl TryFrom<String> for StatementFault {
    type Error = String;
    fn try_from(text: String) -> Result<StatementFault, String> {
        StatementFault::parse(&text)
    }
}

impl From<StatementFault> for String {
    fn from(rule: StatementFault) -> String {
        rule.to_string()
    }
}

/// What the rules make of one statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub delay: Duration,
    pub fail: Option<String>,
}

/// A node's rules with their match counts.
#[derive(Debug, Default)]
pub struct StatementFaults {
    /// Whether any rule is set (the fast path of every statement).
    active: AtomicBool,
    rules: Mutex<Vec<(StatementFault, u64)>>,
}

impl StatementFaults {
    pub fn new(rules: impl IntoIterator<Item = StatementFault>) -> StatementFaults {
        let faults = StatementFaults::default();
        for rule in rules {
            faults.add(rule);
        }
        faults
    }

    /// Adds a rule; it counts matches from now on.
    pub fn add(&self, rule: StatementFault) {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        rules.push((rule, 0));
        self.active.store(true, Ordering::Release);
    }

    /// Removes every rule.
    pub fn clear(&self) {
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        rules.clear();
        self.active.store(false, Ordering::Release);
    }

    /// The rules set now.
    pub fn rules(&self) -> Vec<StatementFault> {
        let rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        rules.iter().map(|(r, _)| r.clone()).collect()
    }

    /// Counts `stmt` against every rule it matches; `None` when no rule hits it.
    pub fn verdict(&self, stmt: &str) -> Option<Verdict> {
        if !self.active.load(Ordering::Relaxed) {
            return None;
        }
        let mut rules = self.rules.lock().unwrap_or_else(|p| p.into_inner());
        let mut verdict: Option<Verdict> = None;
        for (rule, count) in rules.iter_mut() {
            if !rule.matches(stmt) {
                continue;
            }
            *count += 1;
            if !rule.hits.covers(*count) {
                continue;
            }
            let v = verdict.get_or_insert_with(Verdict::default);
            match &rule.action {
                Action::Delay(d) => v.delay += *d,
                Action::Fail(m) => {
                    v.fail.get_or_insert_with(|| m.clone());
                }
            }
        }
        verdict
    }
}

/// Applies the node's rules to a statement about to run: waits out a delay, and answers the error
/// of a failing rule (then the statement must not run).
pub async fn before_statement(node: &Node, stmt: &str) -> Result<(), ExecError> {
    let Some(verdict) = node.statement_faults.verdict(stmt) else {
        return Ok(());
    };
    let shown: String = stmt.trim().chars().take(120).collect();
    if !verdict.delay.is_zero() {
        node.log.line(&format!(
            "sim: statement fault: delaying '{shown}' by {} ms",
            verdict.delay.as_millis()
        ));
        tokio::time::sleep(verdict.delay).await;
    }
    match verdict.fail {
        Some(message) => {
            node.log.line(&format!(
                "sim: statement fault: failing '{shown}' with '{message}'"
            ));
            Err(ExecError {
                code: ErrorCode::Injected,
                message,
                is_syntax: false,
            })
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(text: &str) -> StatementFault {
        StatementFault::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn text_form_round_trips() {
        for (text, want) in [
            (
                "2 fail('disk full') INSERT INTO t*",
                StatementFault::fail("INSERT INTO t*", Hits::Nth(2), "disk full"),
            ),
            (
                "3+ delay(500) select",
                StatementFault::delay("select", Hits::From(3), Duration::from_millis(500)),
            ),
            (
                r"* fail('it\'s \\ gone') CREATE TABLE IF NOT EXISTS system.t_s1",
                StatementFault::fail(
                    "CREATE TABLE IF NOT EXISTS system.t_s1",
                    Hits::Every,
                    r"it's \ gone",
                ),
            ),
        ] {
            assert_eq!(rule(text), want, "{text}");
            assert_eq!(want.to_string(), text);
            assert_eq!(rule(&want.to_string()), want);
            let json = serde_json::to_string(&want).unwrap();
            assert_eq!(serde_json::from_str::<StatementFault>(&json).unwrap(), want);
        }
        assert_eq!(
            rule("1 fail(\"a ) b\") x").action,
            Action::Fail("a ) b".into())
        );
    }

    #[test]
    fn bad_text_forms_are_refused() {
        for text in [
            "",
            "2",
            "0 fail('x') a",
            "x fail('x') a",
            "2 boom('x') a",
            "2 fail(x) a",
            "2 fail('x' a",
            "2 fail('x')",
            "2 fail('x')a",
            "2 delay(ms) a",
            "2 delay(5 a",
        ] {
            assert!(StatementFault::parse(text).is_err(), "{text:?} accepted");
        }
    }

    #[test]
    fn patterns_match_substrings_or_globs_without_case() {
        let m = |pattern: &str, stmt: &str| {
            StatementFault::fail(pattern, Hits::Every, "x").matches(stmt)
        };
        assert!(m("insert into t", "  INSERT INTO t VALUES (1)"));
        assert!(m("VALUES", "insert into t values (1)"));
        assert!(!m("insert into u", "INSERT INTO t VALUES (1)"));
        assert!(m("insert*", "INSERT INTO t VALUES (1)"));
        assert!(
            !m("into*", "INSERT INTO t VALUES (1)"),
            "a glob is anchored"
        );
        assert!(m("*into t *", "INSERT INTO t VALUES (1)"));
        assert!(m(
            "create table if not exists system.t_s?",
            "CREATE TABLE IF NOT EXISTS system.t_s1"
        ));
        assert!(!m(
            "create table if not exists system.t_s?",
            "CREATE TABLE IF NOT EXISTS system.t_s12"
        ));
        assert!(m(
            "create table if not exists system.t_s* *",
            "CREATE TABLE IF NOT EXISTS system.t_s2 (id bigint)"
        ));
        assert!(m("*", "anything"));
        assert!(m("a*b*c", "aXXbYYbZc"));
        assert!(!m("a*b*c", "aXXbYYbZ"));
    }

    #[test]
    fn each_rule_counts_its_own_matches() {
        let faults = StatementFaults::new([
            StatementFault::fail("insert", Hits::Nth(2), "second insert"),
            StatementFault::delay("select", Hits::From(2), Duration::from_millis(7)),
            StatementFault::fail("delete", Hits::Every, "no deletes"),
        ]);
        assert_eq!(faults.verdict("INSERT INTO t VALUES (1)"), None);
        assert_eq!(faults.verdict("SELECT 1"), None);
        assert_eq!(faults.verdict("SHOW TABLES"), None, "matches no rule");
        let fail = |m: &str| {
            Some(Verdict {
                delay: Duration::ZERO,
                fail: Some(m.into()),
            })
        };
        let delay = Some(Verdict {
            delay: Duration::from_millis(7),
            fail: None,
        });
        assert_eq!(
            faults.verdict("INSERT INTO t VALUES (2)"),
            fail("second insert")
        );
        assert_eq!(
            faults.verdict("INSERT INTO t VALUES (3)"),
            None,
            "only the 2nd"
        );
        assert_eq!(faults.verdict("SELECT 2"), delay);
        assert_eq!(faults.verdict("SELECT 3"), delay);
        assert_eq!(
            faults.verdict("DELETE FROM t WHERE id=1"),
            fail("no deletes")
        );
        assert_eq!(
            faults.verdict("DELETE FROM t WHERE id=2"),
            fail("no deletes")
        );
        faults.clear();
        assert_eq!(faults.verdict("DELETE FROM t WHERE id=3"), None);
        assert!(faults.rules().is_empty());
    }

    #[test]
    fn delays_add_up_and_the_first_failing_rule_wins() {
        let faults = StatementFaults::new([
            StatementFault::delay("t", Hits::Every, Duration::from_millis(5)),
            StatementFault::fail("t", Hits::Every, "first"),
            StatementFault::fail("t", Hits::Every, "second"),
            StatementFault::delay("t", Hits::Every, Duration::from_millis(6)),
        ]);
        assert_eq!(
            faults.verdict("SELECT * FROM t"),
            Some(Verdict {
                delay: Duration::from_millis(11),
                fail: Some("first".into()),
            })
        );
    }
}
