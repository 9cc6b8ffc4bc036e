//! Replays the golden transcripts of a real searchd 29.2.2 against simulator nodes and compares
//! the normalised outputs: HTTP records byte for byte (status and body), `mysql` records as the
//! real `mysql` client prints them, `raw_http`/`raw_mysql` records byte for byte at the socket.
//! Records that still differ are listed, with a reason each, in
//! `tests/conformance_allowlist.txt`; the test fails on any other difference and on any listed
//! record that now matches, so the list only shrinks.
//!
//! `golden_transcripts` replays `transcripts.jsonl` (cases 1–5), `golden_connections_and_moves`
//! replays `transcripts-connections-and-moves.jsonl` (cases `http` and `rebalance`). Each
//! replay runs its nodes with the searchd build its recording shows.
//!
//! `CONFORMANCE_REPORT=<file>` writes every difference (expected and actual) for inspection,
//! to `<file>.<recording>`; `CONFORMANCE_CASES=<case>,…` replays only those cases.

#[path = "conformance/clients.rs"]
mod clients;
#[path = "conformance/golden.rs"]
mod golden;
#[path = "conformance/nodes.rs"]
mod nodes;
#[path = "conformance/normalize.rs"]
mod normalize;
#[path = "conformance/raw_http.rs"]
mod raw_http;
#[path = "conformance/rebalance.rs"]
mod rebalance;

use std::collections::{BTreeSet, HashSet};

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use golden::{Outcome, Record};
use manticore_sim::testkit::http_post;
use nodes::Nodes;
use normalize::mask_volatile;

/// Records sent with the helper's User-Agent (`buddy_envelopes.jsonl`, the "loop guard" items).
const BUDDY_UA_RECORDS: &[(&str, u32)] = &[("buddy", 43), ("buddy", 45)];

/// What a replay of one recording needs besides its records.
struct Replay {
    facts: String,
    volatile: HashSet<String>,
    version: String,
}

#[test]
fn golden_transcripts() {
    replay_file("transcripts.jsonl", false, None);
}

#[test]
fn golden_connections_and_moves() {
    replay_file("transcripts-connections-and-moves.jsonl", true, None);
}

/// Replays the cases of a recording (all, or those listed; in parallel threads when
/// `parallel`) and judges them.
fn replay_file(file: &str, parallel: bool, replayed: Option<&[&str]>) {
    let records = golden::load_records(file);
    let facts = golden::facts();
    let replay = Replay {
        volatile: golden::volatile_names(&facts),
        version: golden::build_version(&records),
        facts,
    };
    // `CONFORMANCE_CASES=http,rebalance` replays only these cases (while working on them).
    let only: Option<Vec<String>> = std::env::var("CONFORMANCE_CASES")
        .ok()
        .map(|v| v.split(',').map(|c| c.trim().to_string()).collect());
    let mut cases: Vec<String> = Vec::new();
    for r in &records {
        let wanted = only.as_ref().is_none_or(|o| o.contains(&r.case))
            && replayed.is_none_or(|c| c.contains(&r.case.as_str()));
        if wanted && !cases.contains(&r.case) {
            cases.push(r.case.clone());
        }
    }
    let outcomes: Vec<Outcome> = if parallel {
        std::thread::scope(|scope| {
            let handles: Vec<_> = cases
                .iter()
                .map(|case| {
                    let (records, replay) = (&records, &replay);
                    scope.spawn(move || replay_case(case, records, replay))
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a replayed case panicked"))
                .collect()
        })
    } else {
        cases
            .iter()
            .flat_map(|case| replay_case(case, &records, &replay))
            .collect()
    };
    golden::judge(file, &cases, &outcomes);
}

fn replay_case(case: &str, records: &[Record], replay: &Replay) -> Vec<Outcome> {
    let case_records: Vec<&Record> = records.iter().filter(|r| r.case == case).collect();
    let names: BTreeSet<String> = case_records.iter().map(|r| r.node.clone()).collect();
    let mut nodes = Nodes::start(
        &names.into_iter().collect::<Vec<_>>(),
        case,
        &replay.version,
    );
    match case {
        "buddy" => {
            let n1 = nodes.node("n1");
            nodes::wait_until("the helper to start", || {
                n1.log_text().contains("[BUDDY] started")
            });
        }
        "http" => http_setup(&nodes),
        _ => {}
    }
    let mut outcomes = Vec::new();
    let mut previous_note = None;
    for r in case_records {
        // A note repeats on every record it describes; it is acted on once.
        let fresh_note = r.note.as_ref().filter(|n| previous_note != Some(*n));
        let consumed = case == "rebalance" && rebalance::before(&mut nodes, r, fresh_note, replay);
        if let (Some(note), false) = (fresh_note, consumed) {
            if r.via != "note" {
                nodes.apply_note(note, &r.node);
            }
        }
        previous_note = r.note.as_ref();
        outcomes.push(match r.via.as_str() {
            "note" => rebalance::note_record(&mut nodes, r, replay),
            "raw_http" => raw_http_record(&nodes, r, replay),
            _ => {
                let (status, raw) = run_record(&nodes, r);
                // The golden generator masked volatile counters before substituting placeholders.
                let upper = r.sql.to_ascii_uppercase();
                let masked = if upper.contains("SHOW STATUS") || upper.contains("SHOW META") {
                    mask_volatile(&raw, &r.via, &replay.volatile)
                } else {
                    raw
                };
                Outcome::compare(r, status, &nodes.normalize(&masked))
            }
        });
        if case == "rebalance" {
            rebalance::after(&mut nodes, r, replay);
        }
    }
    outcomes
}

/// Case `http`: one RT table `t` with the two documents record `http.3` shows
/// (`SELECT * FROM t`), the only table `http.1` lists.
fn http_setup(nodes: &Nodes) {
    for sql in [
        "CREATE TABLE t (title text, n int)",
        "INSERT INTO t (id, title, n) VALUES (1, 'hello', 1), (2, 'world', 2)",
    ] {
        let (status, body) = nodes.node("n1").raw_sql(sql).unwrap();
        assert_eq!(status, 200, "{sql}: {body}");
    }
}

/// A `raw_http` record: a dialog replayed byte for byte, or one of the large bodies.
fn raw_http_record(nodes: &Nodes, r: &Record, replay: &Replay) -> Outcome {
    let port = nodes.node(&r.node).ports().http;
    let raw = if r.output.starts_with(">>> send: ") {
        let mib: u64 = regex::Regex::new(r"with a (\d+) MiB body")
            .unwrap()
            .captures(&r.sql)
            .and_then(|c| c[1].parse().ok())
            .expect("a large-body record names its size");
        let size = raw_http::large_body_sizes(&replay.facts)
            .into_iter()
            .find(|(m, _)| *m == mib)
            .map(|(_, bytes)| bytes)
            .expect("facts.md §6 lists the body size");
        raw_http::replay_large_body(port, size)
    } else {
        raw_http::replay_dialog(port, &r.output)
    };
    // `"took":N` is a placeholder of transcripts.md the generator did not apply inside raw
    // dialogs: both sides get it.
    let expected = normalize::replace_pid_and_took(&r.output);
    Outcome::compare_with(r, &expected, r.status, &nodes.normalize(&raw))
}

/// Runs one record through the client its `via` names; returns (HTTP status or none, output).
fn run_record(nodes: &Nodes, r: &Record) -> (Option<u16>, String) {
    let node = nodes.node(&r.node);
    let sql = nodes.concrete_sql(&r.sql);
    let buddy_ua = BUDDY_UA_RECORDS.contains(&(r.case.as_str(), r.step));
    let ua = if buddy_ua {
        "Manticore Buddy/0.0.1"
    } else {
        "golden-gen/1.0"
    };
    let form = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("User-Agent", ua),
    ];
    let encoded = format!("query={}", utf8_percent_encode(&sql, NON_ALPHANUMERIC));
    let http = |path: &str, headers: &[(&str, &str)], body: &str| {
        let (status, body) = http_post(node.ports().http, path, headers, body).unwrap();
        (Some(status), body)
    };
    match r.via.as_str() {
        "mysql" => (None, clients::mysql_client(node.ports().mysql, &sql)),
        "http_sql_raw" => http("/sql?mode=raw", &form, &encoded),
        "http_sql" => http("/sql", &form, &encoded),
        "http_cli" => http("/cli", &[("User-Agent", ua)], &sql),
        "http_cli_json" => http("/cli_json", &[("User-Agent", ua)], &sql),
        "raw_mysql" => (r.status, raw_mysql_dialog(node.ports().mysql, &r.output)),
        other => panic!("unknown via {other}"),
    }
}

/// A `raw_mysql` record: the statements its output lists (`<sql>  ->  <reply>`), run one after
/// another on one connection.
fn raw_mysql_dialog(port: u16, output: &str) -> String {
    let mut conn = clients::RawMysql::connect(port).expect("mysql handshake");
    let mut out = format!("server version in the handshake: {}\n", conn.server_version);
    for line in output.lines().skip(1) {
        let Some((sql, _)) = line.split_once("  ->  ") else {
            continue;
        };
        let reply = conn.query(sql).expect("mysql query");
        out.push_str(&format!("{sql}  ->  {}\n", reply.render()));
    }
    out
}
