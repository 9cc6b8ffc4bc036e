//! The message catalogue, `docs/messages.md`, checked row by row: each text
//! is still where the row says, its test exists and checks it, Buddy's and
//! the daemon's texts are word for word, shardbuddy's own (or the proposed
//! wording) follow the style rules, and no `#[error]` text of the command
//! line, HTTP endpoint or grammar is missing from the table.

use std::path::Path;

use regex::Regex;

/// Buddy's and the daemon's texts that users and Manticore's tests match on
/// (`sharding-behaviour.md` §1.6, the envelope checks of `docs/foundation.md`,
/// searchd's `/sql?mode=raw`). `{…}` stands for what varies.
const VERBATIM: &[&str] = &[
    "The payload is missing",
    "Failed to parse request payload",
    "Invalid request payload is passed",
    "Mandatory field '{0}' is missing",
    "Field '{field}' must be a {php_type}",
    "Buddy protocol version expects '3' but got '{0}'",
    "Do not know how to handle '{0}' type",
    "Do not know how to handle '{0}' path_query",
    "Failed to read config payload",
    "Failed to parse config payload",
    "Mandatory field 'log_level' is missing",
    "Field 'log_level' must be a string",
    "query missing",
    "Duplicate parameter '{0}' found",
    "Parameter '{0}' requires to have a value",
    "Parameter '{0}' requires to have a numeric value",
    "Shard count cannot be greater than 3000",
    "Sharded table requires `rf=n`",
    "You cannot set rf greater than 1 when creating single node sharded table.",
    "You cannot set timeout less than 1 second",
    "Invalid shards or rf options are set",
    "Cluster '{c}' does not exist",
    "The node count for cluster {c} is too low: {count}. You can create local sharded table.",
    "The node count ({count}) is lower than replication factor ({rf})",
    "table '{t}': CREATE TABLE failed: table '{t}' already exists",
    "Local sharded tables cannot be created on a node that is part of a replication cluster ('{name}'). Use CREATE TABLE {name}:{t} instead.",
    "table '{t}' is missing: DROP TABLE failed: table '{t}' must exist",
    "table '{t}' is not sharded: DROP SHARDED TABLE failed: table '{t}' must have been created with sharding enabled",
    "table '{t}' is not sharded: DROP SHARDED TABLE failed: table '{t}' must be sharded",
    "table '{t}' belongs to cluster '{c}': use DROP TABLE {c}:{t}",
    "table '{t}' is a regular table in cluster '{c}': use ALTER CLUSTER {c} DROP {t} to remove it from the cluster, then DROP TABLE {t}",
    "cluster '{c}' is not in primary view (status='{}')",
    "cluster '{c}' local node is not synced (node_state='{}')",
    "cluster '{c}' has unreachable members ({} of {expected} alive)",
    "Permission denied for user '{user}': requires schema permission on table '{table}'",
    "Waiting timeout exceeded.",
    "Settings searchdListen parameter must be set",
];

/// Files whose every `#[error]` text must have a row.
const COVERED_SOURCES: &[&str] = &[
    "src/config.rs",
    "src/cli/plan.rs",
    "src/cli/demo/error.rs",
    "src/protocol/request.rs",
    "src/protocol/resultset.rs",
    "src/sql/error.rs",
    "src/ids.rs",
    "src/client/error.rs",
    "src/failpoint.rs",
    "src/check/mod.rs",
];

struct Row {
    line: usize,
    message: String,
    origin: String,
    source: String,
    test: String,
    proposed: String,
}

fn rows() -> Vec<Row> {
    let doc = read("docs/messages.md");
    let mut rows = Vec::new();
    for (i, line) in doc.lines().enumerate() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // `| message | origin | source | test | proposed |` splits into 7.
        if cells.len() != 7 || cells[1] == "message" || cells[1].starts_with("---") {
            continue;
        }
        rows.push(Row {
            line: i + 1,
            message: cells[1].to_string(),
            origin: cells[2].to_string(),
            source: cells[3].to_string(),
            test: cells[4].to_string(),
            proposed: cells[5].to_string(),
        });
    }
    assert!(
        rows.len() > 50,
        "the table was not read: {} rows",
        rows.len()
    );
    rows
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Source text with string-literal line continuations (`\` + newline +
/// indentation) joined, as the compiler does.
fn joined_source(path: &str) -> String {
    let continuation = Regex::new(r"\\\n\s*").unwrap();
    continuation.replace_all(&read(path), "").into_owned()
}

/// The fixed parts of a text with `{…}` placeholders.
fn fragments(template: &str) -> Vec<String> {
    let placeholder = Regex::new(r"\{[^{}]*\}").unwrap();
    placeholder
        .split(template)
        .map(str::to_string)
        .filter(|f| f.trim().len() >= 3)
        .collect()
}

fn normalized(template: &str) -> String {
    let placeholder = Regex::new(r"\{[^{}]*\}").unwrap();
    placeholder.replace_all(template, "{}").into_owned()
}

#[test]
fn every_row_is_where_it_says_and_checked_by_its_test() {
    let mut problems = Vec::new();
    for row in rows() {
        let at = format!("docs/messages.md:{}", row.line);
        if !["shardbuddy", "Buddy", "daemon"].contains(&row.origin.as_str()) {
            problems.push(format!("{at}: unknown origin '{}'", row.origin));
        }
        let source = joined_source(&row.source);
        for fragment in fragments(&row.message) {
            if !source.contains(&fragment) {
                problems.push(format!("{at}: '{fragment}' is not in {}", row.source));
            }
        }
        if row.test == "no test yet" {
            continue;
        }
        let Some((file, function)) = row.test.split_once("::") else {
            problems.push(format!("{at}: test '{}' is not file::function", row.test));
            continue;
        };
        let test_source = joined_source(file);
        if !test_source.contains(&format!("fn {function}(")) {
            problems.push(format!("{at}: no fn {function} in {file}"));
            continue;
        }
        // A test in `tests/` must mention the text (or read the grammar
        // corpus that does); a unit test next to the text checks it there.
        if file.starts_with("tests/") {
            let mut haystack = test_source;
            if file.starts_with("tests/grammar_") {
                for case in
                    std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("grammar/cases"))
                        .unwrap()
                {
                    haystack.push_str(&std::fs::read_to_string(case.unwrap().path()).unwrap());
                }
            }
            let longest = fragments(&row.message)
                .into_iter()
                .max_by_key(|f| f.len())
                .unwrap_or_default();
            let longest = longest.trim_matches(|c: char| " ;:,.'(".contains(c));
            if !longest.is_empty() && !haystack.contains(longest) {
                problems.push(format!("{at}: {file} does not check '{longest}'"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn buddys_and_the_daemons_texts_are_word_for_word() {
    let known: Vec<String> = VERBATIM.iter().map(|t| normalized(t)).collect();
    for row in rows() {
        let verbatim = known.contains(&normalized(&row.message));
        match row.origin.as_str() {
            "Buddy" | "daemon" => {
                assert!(
                    verbatim,
                    "docs/messages.md:{}: '{}' is not a known {} text",
                    row.line, row.message, row.origin
                );
                assert!(
                    row.proposed.is_empty(),
                    "docs/messages.md:{}: {} texts are not reworded",
                    row.line,
                    row.origin
                );
            }
            // shardbuddy may reuse a Buddy text for its own case, but then
            // says how it should read instead.
            _ => assert!(
                !verbatim || !row.proposed.is_empty(),
                "docs/messages.md:{}: a known text marked shardbuddy's",
                row.line
            ),
        }
    }
}

/// What a message of shardbuddy's own may not look like.
fn style_problems(text: &str) -> Vec<&'static str> {
    let mut found = Vec::new();
    if Regex::new(r"[0-9a-f]{32}").unwrap().is_match(text) {
        found.push("an internal cluster id");
    }
    if text.contains("(on node") || text.contains("system.") {
        found.push("an internal name");
    }
    if Regex::new(r"[.!?] +[A-Z]").unwrap().is_match(text) {
        found.push("more than one sentence");
    }
    if text.contains('\n') || text.contains("<br>") {
        found.push("more than one line");
    }
    found
}

#[test]
fn shardbuddys_own_texts_follow_the_rules() {
    let mut problems = Vec::new();
    for row in rows().iter().filter(|r| r.origin == "shardbuddy") {
        let wording = if row.proposed.is_empty() {
            &row.message
        } else {
            &row.proposed
        };
        for problem in style_problems(wording) {
            problems.push(format!(
                "docs/messages.md:{}: {problem}: {wording}",
                row.line
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The rules catch what the issue found.
    assert!(!style_problems("P03: unknown column type 'txt' (on node 127.0.0.1:9312)").is_empty());
    assert!(!style_problems("cluster 'e416e54ad10eb1aae09e428f4e9452c2' is not ready").is_empty());
    assert!(!style_problems("It failed. Try again.").is_empty());
}

#[test]
fn every_error_text_has_a_row() {
    let documented: Vec<String> = rows().iter().map(|r| normalized(&r.message)).collect();
    let error_attr = Regex::new(r#"#\[error\(\s*"((?:[^"\\]|\\.)*)""#).unwrap();
    let mut missing = Vec::new();
    for path in COVERED_SOURCES {
        let source = joined_source(path);
        for found in error_attr.captures_iter(&source) {
            let text = found[1].replace("\\\"", "\"");
            if fragments(&text).is_empty() {
                continue; // only placeholders: the text is someone else's
            }
            let text = normalized(&text);
            if !documented
                .iter()
                .any(|d| d == &text || text.starts_with(d.as_str()))
            {
                missing.push(format!("{path}: {text}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "no row in docs/messages.md for:\n{}",
        missing.join("\n")
    );
}
