//! The vendored recordings: records, the volatile counter names, the allowlist, and the tally of
//! a replay against them.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
pub struct Record {
    pub case: String,
    pub step: u32,
    pub node: String,
    pub via: String,
    pub sql: String,
    pub output: String,
    pub status: Option<u16>,
    pub note: Option<String>,
}

impl Record {
    pub fn key(&self) -> String {
        format!("{}.{}", self.case, self.step)
    }
}

/// The vendored recordings of a real searchd (`golden/` at the repository root).
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden")
}

pub fn facts() -> String {
    std::fs::read_to_string(golden_dir().join("facts.md")).expect("golden/facts.md")
}

pub fn load_records(file: &str) -> Vec<Record> {
    std::fs::read_to_string(golden_dir().join(file))
        .unwrap_or_else(|e| panic!("golden/{file}: {e}"))
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("golden/{file}: {e}")))
        .collect()
}

/// Counter names whose values the golden files replaced by `{v}` (listed at the end of facts.md).
pub fn volatile_names(facts: &str) -> HashSet<String> {
    let section = facts
        .split("## Values replaced by `{v}`")
        .nth(1)
        .unwrap_or("");
    section
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .map(str::to_string)
        .collect()
}

/// The searchd build a recording was made with, as its own records show it (the `version`
/// status counter, a `Server:` header, or the MySQL handshake).
pub fn build_version(records: &[Record]) -> String {
    let re = regex::Regex::new(r"(\d+\.\d+\.\d+ [0-9a-f]{7,}@\d+)").unwrap();
    records
        .iter()
        .filter(|r| {
            r.sql.contains("'version'")
                || r.output.contains("\nServer: ")
                || r.output.starts_with("server version in the handshake")
        })
        .find_map(|r| re.captures(&r.output).map(|c| c[1].to_string()))
        .expect("the recording shows the searchd version somewhere")
}

pub fn allowlist_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance_allowlist.txt")
}

/// `<case.step> <reason>` lines.
pub fn load_allowlist() -> BTreeMap<String, String> {
    std::fs::read_to_string(allowlist_path())
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once(char::is_whitespace)
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// One replayed record, normalised.
pub struct Outcome {
    pub key: String,
    pub same: bool,
    /// Expected and actual, for the report (empty when they match).
    pub report: String,
}

impl Outcome {
    pub fn compare(r: &Record, status: Option<u16>, actual: &str) -> Outcome {
        Outcome::compare_with(r, &r.output, status, actual)
    }

    /// Compares with `expected`, the record's output after a normalisation both sides share.
    pub fn compare_with(r: &Record, expected: &str, status: Option<u16>, actual: &str) -> Outcome {
        let same = actual == expected && status == r.status;
        let mut report = String::new();
        if !same {
            let _ = writeln!(
                report,
                "=== {} ({} {}) {}\n--- expected (status {:?})\n{}\n--- actual (status {:?})\n{}\n",
                r.key(),
                r.node,
                r.via,
                r.sql,
                r.status,
                expected,
                status,
                actual
            );
        }
        Outcome {
            key: r.key(),
            same,
            report,
        }
    }
}

/// Checks the outcomes of one recording against the allowlist: fails on any difference not
/// listed and on any listed record (of these cases) that now matches.
pub fn judge(label: &str, cases: &[String], outcomes: &[Outcome]) {
    let allowlist = load_allowlist();
    let mut matched = 0;
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let mut report = String::new();
    for o in outcomes {
        report.push_str(&o.report);
        match (o.same, allowlist.contains_key(&o.key)) {
            (true, false) => matched += 1,
            (true, true) => fixed.push(o.key.clone()),
            (false, true) => {}
            (false, false) => unexpected.push(o.key.clone()),
        }
    }
    let listed = allowlist
        .keys()
        .filter(|k| {
            k.split_once('.')
                .is_some_and(|(case, _)| cases.iter().any(|c| c == case))
        })
        .count();
    if let Ok(path) = std::env::var("CONFORMANCE_REPORT") {
        let path = format!("{path}.{label}");
        std::fs::write(&path, &report).unwrap();
    }
    println!(
        "conformance ({label}): {matched} of {} replayed records match exactly ({listed} allowlisted)",
        outcomes.len()
    );
    assert!(
        unexpected.is_empty(),
        "records differing from the golden transcripts and not allowlisted: {unexpected:?}"
    );
    assert!(
        fixed.is_empty(),
        "allowlisted records that now match (remove them from the list): {fixed:?}"
    );
}
