//! Drives the real `shardbuddy parse` binary, one process per corpus case,
//! and checks that its output and exit status agree with the corpus.
//!
//! A case with its own daemon error is run with `--daemon-error`; the others
//! run without it, so the binary judges them as if the daemon had failed with
//! the routing error, which must agree with the file's default error.

mod grammar_support;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use grammar_support::{assert_outcomes, load, Case, Expect};

fn shardbuddy() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shardbuddy"))
}

fn run_parse(case: &Case) -> Output {
    let mut command = shardbuddy();
    command.arg("parse");
    if case.own_daemon_error {
        command.arg("--daemon-error").arg(&case.daemon_error);
    }
    // `--` keeps a statement that starts with `-` from reading as an option.
    command
        .arg("--")
        .arg(&case.sql)
        .output()
        .expect("shardbuddy runs")
}

/// Exit status and the one line of output the corpus expects.
fn verdict(output: &Output) -> Result<Expect, String> {
    let stdout = String::from_utf8(output.stdout.clone()).map_err(|e| e.to_string())?;
    let line = stdout
        .strip_suffix('\n')
        .filter(|line| !line.contains('\n'))
        .ok_or_else(|| format!("expected exactly one line of output, got {stdout:?}"))?;
    match output.status.code() {
        Some(0) => serde_json::from_str(line)
            .map(Expect::Ok)
            .map_err(|e| e.to_string()),
        Some(1) => Ok(Expect::Error(line.to_string())),
        Some(2) if line == "not claimed" => Ok(Expect::NotClaimed),
        other => Err(format!("exit status {other:?} with output {line:?}")),
    }
}

#[test]
fn the_binary_agrees_with_the_corpus() {
    assert_outcomes(&load(), |case| verdict(&run_parse(case)));
}

fn parse_stdin(sql: &str) -> Output {
    let mut child = shardbuddy()
        .arg("parse")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("shardbuddy runs");
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(sql.as_bytes())
        .expect("stdin accepts");
    child.wait_with_output().expect("shardbuddy finishes")
}

#[test]
fn the_statement_can_come_from_standard_input() {
    let output = parse_stdin("-- a multi-line statement\nDROP TABLE\n\tIF EXISTS c:t;\n");
    assert_eq!(
        verdict(&output),
        Ok(Expect::Ok(serde_json::json!({
            "statement": "drop_sharded", "if_exists": true, "cluster": "c", "table": "t"
        })))
    );
    assert_eq!(verdict(&parse_stdin("select 1")), Ok(Expect::NotClaimed));
}

#[test]
fn acceptance_examples() {
    let run = |sql: &str| verdict(&shardbuddy().args(["parse", sql]).output().expect("runs"));
    let create = "create table c:t(id bigint, title text) min_infix_len='3' SHARDS = '4' rf='2'";
    assert_eq!(
        run(create),
        Ok(Expect::Ok(serde_json::json!({
            "statement": "create_sharded",
            "if_not_exists": false,
            "cluster": "c",
            "table": "t",
            "columns": "id bigint, title text",
            "options": [{"name": "min_infix_len", "value": "3"}],
            "shards": 4,
            "rf": 2,
            "timeout": null
        })))
    );
    assert_eq!(
        run("create table c:t(id bigint, title text) min_infix_len='3' shards='5' shards='3' rf='1'"),
        Ok(Expect::Error("Duplicate parameter 'shards' found".into()))
    );
    assert_eq!(run("create table t (id bigint)"), Ok(Expect::NotClaimed));
}

#[test]
fn a_bad_command_line_is_neither_a_verdict_nor_silent() {
    let output = shardbuddy()
        .args(["parse", "--no-such-flag"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(64));
    assert!(output.stdout.is_empty());
    assert!(!output.stderr.is_empty());
}
