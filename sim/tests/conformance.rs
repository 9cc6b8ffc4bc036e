//! Replays the golden transcripts of a real searchd 29.2.2 against simulator nodes and compares
//! the normalised outputs: HTTP records byte for byte (status and body), `mysql` records as the
//! real `mysql` client prints them. Records that still differ are listed, with a reason each, in
//! `tests/conformance_allowlist.txt`; the test fails on any other difference and on any listed
//! record that now matches, so the list only shrinks.
//!
//! `CONFORMANCE_REPORT=<file>` writes every difference (expected and actual) for inspection.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use manticore_sim::testkit::{free_ports, http_post, NodeOptions, Ports, SimNode};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;

/// Cases that need replication clusters, which the simulator does not have yet.
const SKIPPED_CASES: &[&str] = &[];
/// How long replayed nodes take to declare a peer dead (milliseconds).
const REPLAY_SUSPECT_MS: u64 = 2000;
/// Records sent with the helper's User-Agent (`buddy_envelopes.jsonl`, the "loop guard" items).
const BUDDY_UA_RECORDS: &[(&str, u32)] = &[("buddy", 43), ("buddy", 45)];
const PLUGIN_DIR: &str = manticore_sim::exec::show::PLUGIN_DIR;
const FAKE_HELPER: &str = env!("CARGO_BIN_EXE_sim-fake-buddy");

#[derive(Debug, Clone, Deserialize)]
struct Record {
    case: String,
    step: u32,
    node: String,
    via: String,
    sql: String,
    output: String,
    status: Option<u16>,
    note: Option<String>,
}

impl Record {
    fn key(&self) -> String {
        format!("{}.{}", self.case, self.step)
    }
}

/// The vendored recordings of a real searchd (`golden/` at the repository root).
fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../golden")
}

/// Counter names whose values the golden files replaced by `{v}` (listed at the end of facts.md).
fn volatile_names(facts: &str) -> HashSet<String> {
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

struct Nodes {
    nodes: BTreeMap<String, SimNode>,
}

impl Nodes {
    /// Nodes n1..nN with ports ascending by node number (outputs sorted by address keep node order).
    fn start(names: &[String], case: &str) -> Nodes {
        let raw: Vec<Ports> = names.iter().map(|_| ports_without_collisions()).collect();
        let sorted = |f: fn(&Ports) -> u16| {
            let mut v: Vec<u16> = raw.iter().map(f).collect();
            v.sort_unstable();
            v
        };
        let (mysql, http, api) = (sorted(|p| p.mysql), sorted(|p| p.http), sorted(|p| p.api));
        let repl = sorted(|p| p.replication);
        let sets: Vec<Ports> = (0..raw.len())
            .map(|i| {
                let r = raw
                    .iter()
                    .find(|p| p.replication == repl[i])
                    .expect("a replication range per node");
                Ports {
                    mysql: mysql[i],
                    http: http[i],
                    api: api[i],
                    replication: r.replication,
                    replication_last: r.replication_last,
                }
            })
            .collect();
        let mut nodes = BTreeMap::new();
        for (i, (name, ports)) in names.iter().zip(sets).enumerate() {
            let options = NodeOptions {
                buddy_path: (case == "buddy" && name == "n1").then(|| FAKE_HELPER.to_string()),
                // Records taken "right after" a kill must still see the dead node, as searchd
                // (4.6–6.5 s) does: a wider margin than the default 1 s under a loaded machine.
                sim_lines: vec![format!("cluster_suspect_ms = {REPLAY_SUSPECT_MS}")],
                ..NodeOptions::default()
            };
            let mut node = SimNode::configure_with_ports(i + 1, ports, options).unwrap();
            node.launch().unwrap();
            nodes.insert(name.clone(), node);
        }
        Nodes { nodes }
    }

    fn node(&self, name: &str) -> &SimNode {
        &self.nodes[name]
    }

    /// Applies what a record's note says happened before it (kills, restarts, directories the
    /// generator created, and waits for the cluster state the note describes).
    fn apply_note(&mut self, note: &str, record_node: &str) {
        let named = |text: &str| -> Vec<String> {
            let re = regex::Regex::new(r"\bn\d\b").unwrap();
            re.find_iter(text).map(|m| m.as_str().to_string()).collect()
        };
        if let Some(rest) = note
            .strip_prefix("generator did mkdir {data_dir}/")
            .or_else(|| note.strip_prefix("after mkdir {data_dir}/"))
        {
            let dir = rest.split_whitespace().next().unwrap_or("");
            let on = named(rest);
            let targets = if on.is_empty() {
                vec![record_node.to_string()]
            } else {
                on
            };
            for t in targets {
                let _ = std::fs::create_dir_all(self.node(&t).data_dir().join(dir));
            }
            return;
        }
        if note.contains("killed") || note.contains("kill -9 of") {
            let victims = match note.find("kill -9 of") {
                Some(pos) => named(&note[pos..]),
                None => named(note).into_iter().take(1).collect(),
            };
            for v in &victims {
                let node = self.nodes.get_mut(v).expect("known node");
                if node.is_running() {
                    node.kill();
                }
            }
            if note.contains("left the view") {
                let observer = self.nodes.keys().find(|k| !victims.contains(k)).cloned();
                if let Some(o) = observer {
                    self.wait_view(&o, &victims, false);
                }
            }
            return;
        }
        if note.starts_with("survivor") && note.ends_with("dead") {
            // "survivor n1, n2+n3 dead": the golden record was taken once it lost the quorum.
            let survivor = named(note).into_iter().next().expect("a survivor");
            wait_until(&format!("{survivor} non-primary"), || {
                let rows = self.status(&survivor, "cluster_%");
                rows.iter()
                    .filter(|(k, _)| k == "cluster_name")
                    .all(|(_, name)| {
                        let key = format!("cluster_{name}_status");
                        rows.iter().any(|(k, v)| *k == key && v == "non-primary")
                    })
            });
            return;
        }
        if let Some(pos) = note.find("left ") {
            // "after n3 left n1's nodes_view"
            let who = named(&note[..pos]);
            let observer = named(&note[pos..]);
            if let (Some(o), false) = (observer.first(), who.is_empty()) {
                self.wait_view(o, &who, false);
            }
            return;
        }
        if note.contains("restart") {
            let restarted: Vec<String> = named(note);
            for r in &restarted {
                let node = self.nodes.get_mut(r).expect("known node");
                if !node.is_running() {
                    node.launch().unwrap();
                }
            }
            for r in &restarted {
                self.wait_synced(r);
            }
        }
    }

    fn status(&self, node: &str, like: &str) -> Vec<(String, String)> {
        let (_, body) = self
            .node(node)
            .raw_sql(&format!("SHOW STATUS LIKE '{like}'"))
            .unwrap_or((0, String::new()));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        json[0]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["Counter"].as_str().unwrap_or("").to_string(),
                    r["Value"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// Waits until every cluster view on `observer` shows (or stops showing) the nodes.
    fn wait_view(&self, observer: &str, nodes: &[String], present: bool) {
        let ids: Vec<String> = nodes.iter().map(|n| self.node(n).node_id()).collect();
        wait_until(&format!("{observer}'s view of {nodes:?}"), || {
            self.status(observer, "cluster_%_nodes_view")
                .iter()
                .all(|(_, view)| {
                    ids.iter()
                        .all(|id| view.split(',').any(|e| e == id) == present)
                })
        });
    }

    /// Waits until a restarted node reports every cluster synced.
    fn wait_synced(&self, node: &str) {
        wait_until(&format!("{node} synced"), || {
            self.status(node, "cluster_%_node_state")
                .iter()
                .all(|(_, state)| state == "synced")
        });
    }

    /// The record's SQL with placeholders replaced by this run's values.
    fn concrete_sql(&self, sql: &str) -> String {
        let mut out = sql.to_string();
        for (name, node) in &self.nodes {
            let p = node.ports();
            out = out
                .replace(&format!("{{{name}.mysql}}"), &p.mysql.to_string())
                .replace(&format!("{{{name}.http}}"), &p.http.to_string())
                .replace(&format!("{{{name}.api}}"), &p.api.to_string());
        }
        out
    }

    /// Plain textual placeholders, as transcripts.md describes them.
    fn normalize(&self, text: &str) -> String {
        let uuid =
            regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
                .unwrap();
        let text = uuid.replace_all(text, "{uuid}");
        let mut out = replace_generated_ids(&text);
        for (name, node) in &self.nodes {
            let p = node.ports();
            out = out.replace(&node.data_dir().display().to_string(), "{data_dir}");
            out = out.replace(&node.dir().display().to_string(), "{node_dir}");
            out = out.replace(
                &format!("{}-{}", p.replication, p.replication_last),
                &format!("{{{name}.repl}}-{{{name}.repl_last}}"),
            );
            out = replace_number(&out, p.mysql, &format!("{{{name}.mysql}}"));
            out = replace_number(&out, p.http, &format!("{{{name}.http}}"));
            out = replace_number(&out, p.api, &format!("{{{name}.api}}"));
            for port in p.replication..=p.replication_last {
                out = replace_number(&out, port, &format!("{{{name}.repl}}"));
            }
        }
        out = out.replace(PLUGIN_DIR, "{plugin_dir}");
        replace_pid_and_took(&out)
    }
}

/// Polls a condition (hang protection only: the replay itself compares exact outputs).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Numbers that appear in outputs and must not be taken for ports by the textual substitution.
const NOT_PORTS: &[u16] = &[42000];

fn ports_without_collisions() -> Ports {
    loop {
        let p = free_ports().unwrap();
        let used = [p.mysql, p.http, p.api];
        let clash = NOT_PORTS
            .iter()
            .any(|n| used.contains(n) || (p.replication..=p.replication_last).contains(n));
        if !clash {
            return p;
        }
    }
}

/// Replaces whole digit runs equal to `n`.
fn replace_number(text: &str, n: u16, with: &str) -> String {
    let needle = n.to_string();
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() && (i == 0 || !bytes[i - 1].is_ascii_digit()) {
            let end = (i..bytes.len())
                .find(|&j| !bytes[j].is_ascii_digit())
                .unwrap_or(bytes.len());
            if text[i..end] == needle {
                out.push_str(with);
            } else {
                out.push_str(&text[i..end]);
            }
            i = end;
        } else {
            let ch = text[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

/// Ids the simulator generated (19 digits, per-start counter in the low 24 bits) → `{idN}`,
/// right-aligned to the number's width so mysql boxes keep their shape.
fn replace_generated_ids(text: &str) -> String {
    let re = regex::Regex::new(r"(\s*)\b(\d{19})\b").unwrap();
    re.replace_all(text, |c: &regex::Captures| {
        let spaces = &c[1];
        let digits = &c[2];
        let n: u64 = digits.parse().unwrap_or(0);
        let placeholder = format!("{{id{}}}", n & 0xff_ffff);
        if spaces.is_empty() {
            placeholder
        } else {
            let width = spaces.len() + digits.len();
            format!("{placeholder:>width$}")
        }
    })
    .to_string()
}

fn replace_pid_and_took(text: &str) -> String {
    let pid = regex::Regex::new(r#"("Setting_name":"worker_pid","Value":)\d+"#).unwrap();
    let text = pid.replace_all(text, "${1}{pid}");
    let box_pid = regex::Regex::new(r"(\| worker_pid +\| )(\d+)").unwrap();
    let text = box_pid.replace_all(&text, "${1}{pid}");
    let took = regex::Regex::new(r#""took":\d+"#).unwrap();
    took.replace_all(&text, "\"took\":{v}").to_string()
}

/// Volatile counter values become `{v}`; mysql boxes holding them are redrawn as the client would.
fn mask_volatile(text: &str, via: &str, volatile: &HashSet<String>) -> String {
    if via != "mysql" {
        let re = regex::Regex::new(r#"\{"(Counter|Variable_name)":"([^"]*)","Value":"[^"]*"\}"#)
            .unwrap();
        return re
            .replace_all(text, |c: &regex::Captures| {
                if volatile.contains(&c[2]) {
                    format!("{{\"{}\":\"{}\",\"Value\":\"{{v}}\"}}", &c[1], &c[2])
                } else {
                    c[0].to_string()
                }
            })
            .to_string();
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        // A box: border, header, border, rows…, border.
        if lines[i].starts_with("+-") && i + 2 < lines.len() && lines[i + 1].starts_with('|') {
            let end = (i + 3..lines.len())
                .find(|&j| lines[j].starts_with("+-"))
                .unwrap_or(lines.len() - 1);
            let rows: Vec<Vec<String>> = lines[i + 3..end].iter().map(|l| cells(l)).collect();
            let touched = rows
                .iter()
                .any(|r| r.len() == 2 && volatile.contains(r[0].as_str()));
            if touched && rows.iter().all(|r| r.len() == 2) {
                let header = cells(lines[i + 1]);
                let rows: Vec<Vec<String>> = rows
                    .into_iter()
                    .map(|r| {
                        if volatile.contains(r[0].as_str()) {
                            vec![r[0].clone(), "{v}".to_string()]
                        } else {
                            r
                        }
                    })
                    .collect();
                out.extend(draw_box(&header, &rows));
                i = end + 1;
                continue;
            }
        }
        out.push(lines[i].to_string());
        i += 1;
    }
    out.join("\n")
}

fn cells(line: &str) -> Vec<String> {
    line.trim_matches('|')
        .split(" | ")
        .map(|c| c.trim().to_string())
        .collect()
}

fn draw_box(header: &[String], rows: &[Vec<String>]) -> Vec<String> {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let border = format!(
        "+{}+",
        widths
            .iter()
            .map(|w| "-".repeat(w + 2))
            .collect::<Vec<_>>()
            .join("+")
    );
    let line = |r: &[String]| {
        format!(
            "|{}|",
            r.iter()
                .zip(&widths)
                .map(|(c, w)| format!(" {c:<w$} "))
                .collect::<Vec<_>>()
                .join("|")
        )
    };
    let mut out = vec![border.clone(), line(header), border.clone()];
    out.extend(rows.iter().map(|r| line(r)));
    out.push(border);
    out
}

/// Runs one record; returns (HTTP status or none, raw output).
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
        "mysql" => (None, mysql_client(node.ports().mysql, &sql)),
        "http_sql_raw" => http("/sql?mode=raw", &form, &encoded),
        "http_sql" => http("/sql", &form, &encoded),
        "http_cli" => http("/cli", &[("User-Agent", ua)], &sql),
        "http_cli_json" => http("/cli_json", &[("User-Agent", ua)], &sql),
        other => panic!("unknown via {other}"),
    }
}

/// `mysql -h127.0.0.1 -P<port> --table -e "<sql>"`, stdout and stderr through one pipe.
fn mysql_client(port: u16, sql: &str) -> String {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let mut child = Command::new("mysql")
        .args(["-h127.0.0.1", &format!("-P{port}"), "--table", "-e", sql])
        .stdin(Stdio::null())
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .spawn()
        .expect("the `mysql` client must be installed (Debian: default-mysql-client)");
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    child.wait().unwrap();
    out
}

fn load_allowlist(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
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

#[test]
fn golden_transcripts() {
    let dir = golden_dir();
    let facts = std::fs::read_to_string(dir.join("facts.md")).unwrap();
    let volatile = volatile_names(&facts);
    let records: Vec<Record> = std::fs::read_to_string(dir.join("transcripts.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let allow_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/conformance_allowlist.txt");
    let allowlist = load_allowlist(&allow_path);

    let mut cases: Vec<String> = Vec::new();
    for r in &records {
        if !cases.contains(&r.case) {
            cases.push(r.case.clone());
        }
    }
    let mut matched = 0;
    let mut compared = 0;
    let mut skipped = 0;
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let mut report = String::new();
    for case in cases {
        let case_records: Vec<&Record> = records.iter().filter(|r| r.case == case).collect();
        if SKIPPED_CASES.contains(&case.as_str()) {
            skipped += case_records.len();
            continue;
        }
        let names: BTreeSet<String> = case_records.iter().map(|r| r.node.clone()).collect();
        let mut nodes = Nodes::start(&names.into_iter().collect::<Vec<_>>(), &case);
        if case == "buddy" {
            let n1 = nodes.node("n1");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while !n1.log_text().contains("[BUDDY] started") {
                assert!(std::time::Instant::now() < deadline, "helper did not start");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
        let mut previous_note = None;
        for r in case_records {
            // A note repeats on every record it describes; it is acted on once.
            if let Some(note) = r.note.as_ref().filter(|n| previous_note != Some(*n)) {
                nodes.apply_note(note, &r.node);
            }
            previous_note = r.note.as_ref();
            let (status, raw) = run_record(&nodes, r);
            // The golden generator masked volatile counters before substituting placeholders.
            let upper = r.sql.to_ascii_uppercase();
            let masked = if upper.contains("SHOW STATUS") || upper.contains("SHOW META") {
                mask_volatile(&raw, &r.via, &volatile)
            } else {
                raw
            };
            let actual = nodes.normalize(&masked);
            compared += 1;
            let same = actual == r.output && status == r.status;
            let key = r.key();
            match (same, allowlist.contains_key(&key)) {
                (true, false) => matched += 1,
                (true, true) => fixed.push(key.clone()),
                (false, true) => {}
                (false, false) => unexpected.push(key.clone()),
            }
            if !same {
                let _ = writeln!(
                    report,
                    "=== {key} ({} {}) {}\n--- expected (status {:?})\n{}\n--- actual (status {:?})\n{}\n",
                    r.node, r.via, r.sql, r.status, r.output, status, actual
                );
            }
        }
    }
    if let Ok(path) = std::env::var("CONFORMANCE_REPORT") {
        std::fs::write(path, &report).unwrap();
    }
    println!(
        "conformance: {matched} of {compared} replayed records match exactly ({} allowlisted, {skipped} skipped with their case)",
        allowlist.len()
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
