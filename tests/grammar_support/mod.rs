//! Reads the statement corpus in `grammar/cases/*.cases` (format described in
//! `grammar/README.md`).

use std::fmt;
use std::path::{Path, PathBuf};

/// What a case expects.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Claimed and valid: the statement's JSON.
    Ok(serde_json::Value),
    /// Claimed and invalid: the exact message.
    Error(String),
    NotClaimed,
}

#[derive(Debug, Clone)]
pub struct Case {
    /// `file:line` of the case, for failure messages.
    pub origin: String,
    pub name: String,
    pub sql: String,
    /// The daemon error the statement arrives with.
    pub daemon_error: String,
    /// True when the case names its own daemon error instead of the file's
    /// default (the realistic routing error for the file's statements).
    pub own_daemon_error: bool,
    pub expect: Expect,
}

impl fmt::Display for Case {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {:?}", self.origin, self.name, self.sql)
    }
}

/// Checks every case against `outcome` and fails with all disagreements.
pub fn assert_outcomes(cases: &[Case], outcome: impl Fn(&Case) -> Result<Expect, String>) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let got = outcome(case);
            let report = format!(
                "{case}\n    expected {:?}\n    got      {got:?}",
                case.expect
            );
            (got.as_ref() != Ok(&case.expect)).then_some(report)
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

pub fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("grammar")
        .join("cases")
}

/// Every case of every corpus file, files in name order.
pub fn load() -> Vec<Case> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("grammar/cases exists")
        .map(|entry| entry.expect("readable directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "cases"))
        .collect();
    files.sort();
    files.iter().flat_map(|path| load_file(path)).collect()
}

/// A value as written after `key: `: a JSON string when it starts with `"`
/// (for escapes such as `\n`), otherwise the rest of the line verbatim.
fn decode(value: &str, origin: &str) -> String {
    if value.starts_with('"') {
        serde_json::from_str(value).unwrap_or_else(|e| panic!("{origin}: bad JSON string: {e}"))
    } else {
        value.to_string()
    }
}

#[derive(Default)]
struct Block {
    line: usize,
    name: Option<String>,
    sql: Option<String>,
    daemon: Option<String>,
    expect: Option<Expect>,
}

fn load_file(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).expect("readable corpus file");
    let file = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut default_daemon: Option<String> = None;
    let mut cases = Vec::new();
    let mut block = Block::default();
    let lines = text.lines().map(Some).chain(std::iter::once(None));
    for (index, line) in lines.enumerate() {
        let origin = format!("{file}:{}", index + 1);
        let line = line.unwrap_or("");
        if line.starts_with('#') {
            continue;
        }
        if line.trim().is_empty() {
            let done = std::mem::take(&mut block);
            if let Some(case) = finish(done, &file, &mut default_daemon) {
                cases.push(case);
            }
            continue;
        }
        if block.line == 0 {
            block.line = index + 1;
        }
        if line == "not claimed" {
            set_expect(&mut block, Expect::NotClaimed, &origin);
            continue;
        }
        let (key, value) = line
            .split_once(": ")
            .unwrap_or_else(|| panic!("{origin}: expected `key: value`, got {line:?}"));
        let value = decode(value, &origin);
        match key {
            "case" => block.name = Some(value),
            "sql" => block.sql = Some(value),
            "daemon" => block.daemon = Some(value),
            "error" => set_expect(&mut block, Expect::Error(value), &origin),
            "ok" => {
                let json = serde_json::from_str(&value)
                    .unwrap_or_else(|e| panic!("{origin}: bad JSON after ok: {e}"));
                set_expect(&mut block, Expect::Ok(json), &origin);
            }
            other => panic!("{origin}: unknown key {other:?}"),
        }
    }
    cases
}

fn set_expect(block: &mut Block, expect: Expect, origin: &str) {
    assert!(
        block.expect.is_none(),
        "{origin}: a case has one expected outcome"
    );
    block.expect = Some(expect);
}

fn finish(block: Block, file: &str, default_daemon: &mut Option<String>) -> Option<Case> {
    let origin = format!("{file}:{}", block.line);
    let Some(sql) = block.sql else {
        // A block of its own `daemon:` line sets the file's default.
        if let Some(daemon) = block.daemon {
            assert!(
                block.expect.is_none() && block.name.is_none(),
                "{origin}: stray lines"
            );
            *default_daemon = Some(daemon);
        } else {
            assert!(block.line == 0, "{origin}: a case needs `sql:`");
        }
        return None;
    };
    let expect = block
        .expect
        .unwrap_or_else(|| panic!("{origin}: a case needs an outcome"));
    let own_daemon_error = block.daemon.is_some();
    let daemon_error = block
        .daemon
        .or_else(|| default_daemon.clone())
        .unwrap_or_else(|| panic!("{origin}: no daemon error and no file default"));
    Some(Case {
        origin,
        name: block.name.unwrap_or_else(|| "unnamed".to_string()),
        sql,
        daemon_error,
        own_daemon_error,
        expect,
    })
}
