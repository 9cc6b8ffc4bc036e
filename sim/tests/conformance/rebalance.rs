//! Case `rebalance` (facts.md §7): what the golden generator did between the records it kept —
//! rows it loaded, a writer running through the RF=1 moves, restarts with write probes, the
//! state-transfer clusters, the wrapper's shards — recreated from what §7 says, and the `note`
//! record of the in-flight read.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::clients::RawMysql;
use super::golden::{Outcome, Record};
use super::nodes::{wait_until, Nodes};
use super::Replay;

/// The text of every row the generator loaded (`rebalance.61` shows it; §7: "`id` + 20-char
/// text").
const TITLE: &str = "abcdefghij0123456789";
/// Rows per INSERT statement when loading.
const BATCH: u64 = 5000;
/// First id of the rows the replay adds for the generator (clear of every id a record uses).
const LOADED_IDS: u64 = 200_001;
/// First id of the writer's rows during the RF=1 moves.
const WRITER_IDS: u64 = 6_000_001;
/// The source node of the RF=1 moves (§7 item 3: n4, where the wrapper lives).
const MOVE_SOURCE: &str = "n4";
/// First id of the probe writes on a restarting node (§7 items 1+2: "id ≥ 9000000").
const PROBE_IDS: u64 = 9_000_000;

fn sql_ok(nodes: &Nodes, node: &str, sql: &str) {
    let (status, body) = nodes.node(node).raw_sql(sql).unwrap();
    assert_eq!(status, 200, "{node}: {sql}: {body}");
    let failed = regex::Regex::new(r#""error":"[^"]"#).unwrap();
    assert!(!failed.is_match(&body), "{node}: {sql}: {body}");
}

/// Inserts `count` rows with ids from `first` (the generator's short rows).
fn load(nodes: &Nodes, node: &str, table: &str, first: u64, count: u64) {
    let mut id = first;
    let end = first + count;
    while id < end {
        let upto = (id + BATCH).min(end);
        let values: Vec<String> = (id..upto).map(|i| format!("({i}, '{TITLE}')")).collect();
        sql_ok(
            nodes,
            node,
            &format!(
                "INSERT INTO {table} (id, title) VALUES {}",
                values.join(", ")
            ),
        );
        id = upto;
    }
}

/// Before a record: directories, notes that need more than the generic handling, data.
/// Returns whether the note was handled here.
pub fn before(nodes: &mut Nodes, r: &Record, note: Option<&String>, replay: &Replay) -> bool {
    // Buddy creates a cluster's directory before CREATE/JOIN ... 'dir' as path (research
    // §9.4); the generator did the same for every cluster of this case, noted or not.
    let as_path = regex::Regex::new(r"(?i)^(CREATE|JOIN) CLUSTER .*'(\w+)' as path").unwrap();
    if let Some(c) = as_path.captures(r.sql.trim()) {
        nodes.mkdir(&r.node, &c[2]);
    }
    let Some(note) = note else {
        return false;
    };
    if note.starts_with("n2 restarted (plain restart") {
        restart_with_probes(nodes, "n2");
        return true;
    }
    if note.starts_with("both members were killed; only n2 restarted") {
        // §7 item 2b: both killed, n2 started alone; it cannot reach n1 for the remote
        // version check and stays `recovery-required`.
        for n in ["n1", "n2"] {
            nodes.node_mut(n).kill();
        }
        nodes.node_mut("n2").launch().unwrap();
        wait_until("n2 recovery-required", || {
            nodes.counter("n2", "cluster_h_status").as_deref() == Some("recovery-required")
        });
        return true;
    }
    if note.starts_with("both restarted, not primary") {
        // §7 item 2b: then n1 came back, primary on its own (size 1, synced after 0.34 s).
        nodes.node_mut("n1").launch().unwrap();
        nodes.wait_synced("n1");
        return true;
    }
    if let Some(step) = move_step(note) {
        let (rows, label) = (step.size.0, &step.size.1);
        if step.number == 1 {
            // §7 item 3: the source shard holds `rows` rows before the move starts.
            let table = format!("system.mv{label}_s0");
            load(nodes, MOVE_SOURCE, &table, 1, rows);
            writer(nodes, &step, replay, Phase::Before(0));
        }
        writer(nodes, &step, replay, Phase::Before(step.number));
        return false;
    }
    if let Some(rows) = sst_rows(Some(note)) {
        // §7 item 5: a cluster on n4 with one table of `rows` short rows, joined by n5.
        let name = cluster_of(&r.sql);
        let table = format!("system.{name}_s0");
        nodes.mkdir("n4", &name);
        sql_ok(nodes, "n4", &format!("CREATE TABLE {table} (title text)"));
        load(nodes, "n4", &table, 1, rows);
        sql_ok(
            nodes,
            "n4",
            &format!("CREATE CLUSTER {name} '{name}' as path"),
        );
        sql_ok(nodes, "n4", &format!("ALTER CLUSTER {name} ADD {table}"));
        return false;
    }
    false
}

/// After a record: the rows the generator loaded right after it.
pub fn after(nodes: &mut Nodes, r: &Record, replay: &Replay) {
    match r.step {
        // §7 item 1: "n1 created `h` with `system.t_s0` (1000 rows)"; ids 1.. (`rebalance.61`).
        1 => load(nodes, "n1", "system.t_s0", 1, 1000),
        // §7 item 1: "5000 more rows inserted through `h:system.t_s0` on n1 while n2 was down".
        33 => load(nodes, "n1", "h:system.t_s0", LOADED_IDS, 5000),
        // §7 item 6: the wrapper's shards hold 10 (`system.w_s0`) and 20 (`system.w_s1`) rows.
        120 => {
            load(nodes, "n4", "system.w_s0", 1, 10);
            load(nodes, "n4", "system.w_s1", 1, 20);
        }
        _ => {}
    }
    if let Some(step) = r.note.as_deref().and_then(move_step) {
        writer(nodes, &step, replay, Phase::After(step.number));
    }
    if let Some(rows) = sst_rows(r.note.as_deref()) {
        // §7 item 5: "the count on n5 was read right after" the JOIN returned: all rows there.
        let name = cluster_of(&r.sql);
        let (_, body) = nodes
            .node(&r.node)
            .raw_sql(&format!("SELECT COUNT(*) FROM system.{name}_s0"))
            .unwrap();
        assert!(
            body.contains(&format!("{{\"count(*)\":{rows}}}")),
            "{name} on {}: {body}",
            r.node
        );
    }
}

/// The table size of a state-transfer record's note (`cluster holds one table of N rows`).
fn sst_rows(note: Option<&str>) -> Option<u64> {
    note?
        .strip_prefix("cluster holds one table of ")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn cluster_of(join: &str) -> String {
    regex::Regex::new(r"JOIN CLUSTER (\w+)")
        .unwrap()
        .captures(join)
        .map(|c| c[1].to_string())
        .expect("a JOIN record")
}

/// A step of an RF=1 move, from a record's note (`RF=1 move 10k, step 4; …`).
struct MoveStep {
    /// (rows, label): `(10000, "10k")`.
    size: (u64, String),
    number: u32,
}

fn move_step(note: &str) -> Option<MoveStep> {
    let c = regex::Regex::new(r"^RF=1 move (\d+)k, step (\d+)")
        .unwrap()
        .captures(note)?;
    let thousands: u64 = c[1].parse().ok()?;
    Some(MoveStep {
        size: (thousands * 1000, format!("{thousands}k")),
        number: c[2].parse().ok()?,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    Before(u32),
    After(u32),
}

/// §7 item 3's writer: the acknowledged inserts per step and those lost (on the source only).
struct WriterPlan {
    ok: Vec<(u32, u64)>,
    lost: Vec<(u32, u64)>,
}

fn writer_plan(facts: &str, rows: u64) -> WriterPlan {
    let header = format!("### Item 3 — RF=1 move through a temporary cluster, {rows} rows");
    let section = facts
        .split(&header)
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .expect("facts.md §7 describes the move");
    let ok = section
        .lines()
        .filter(|l| l.contains("| `OK` |"))
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            let step = cells.get(1)?.split_whitespace().next()?.parse().ok()?;
            Some((step, cells.get(3)?.parse().ok()?))
        })
        .collect();
    let lost = regex::Regex::new(r"'(\d+)': (\d+)")
        .unwrap()
        .captures_iter(
            section
                .lines()
                .find(|l| l.contains("acknowledged OK but are NOT on the target"))
                .unwrap_or(""),
        )
        .filter_map(|c| Some((c[1].parse().ok()?, c[2].parse().ok()?)))
        .collect();
    WriterPlan { ok, lost }
}

/// Replays the writer around one step: a write counted for a step went in before the step
/// took effect, except the lost ones of the step that detached the shard (`ALTER CLUSTER …
/// DROP`, step 5), which went in right after it and so stayed on the source. Later steps'
/// writes land before the source's DROP TABLE and are lost the same way.
fn writer(nodes: &Nodes, step: &MoveStep, replay: &Replay, phase: Phase) {
    /// The step that detaches the shard from the temporary cluster.
    const DETACH: u32 = 5;
    let plan = writer_plan(&replay.facts, step.size.0);
    let count = |list: &[(u32, u64)], s: u32| {
        list.iter()
            .find(|(n, _)| *n == s)
            .map(|(_, c)| *c)
            .unwrap_or(0)
    };
    let n = match phase {
        Phase::Before(s) if s == DETACH => count(&plan.ok, s) - count(&plan.lost, s),
        Phase::Before(s) => count(&plan.ok, s),
        Phase::After(s) if s == DETACH => count(&plan.lost, s),
        Phase::After(_) => 0,
    };
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    for _ in 0..n {
        let id = WRITER_IDS + NEXT.fetch_add(1, Ordering::Relaxed) as u64;
        sql_ok(
            nodes,
            MOVE_SOURCE,
            &format!(
                "INSERT INTO mv{} (id, title) VALUES ({id}, 'writer')",
                step.size.1
            ),
        );
    }
}

/// §7 items 1+2: n2 restarted; the generator tried writes on it every ~0.1 s from the moment
/// it answered until one was accepted; every refusal was one of the recorded texts.
fn restart_with_probes(nodes: &mut Nodes, node: &str) {
    nodes.node_mut(node).launch().unwrap();
    let refusals = [
        "cluster 'h' is not ready, not primary state (closed)",
        "cluster 'h' is not ready, not primary state (joining)",
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut id = PROBE_IDS;
    loop {
        assert!(Instant::now() < deadline, "{node} never accepted a write");
        let (_, body) = nodes
            .node(node)
            .raw_sql(&format!(
                "INSERT INTO system.t_s0 (id, title) VALUES ({id}, 'unprefixed on restarted n2')"
            ))
            .unwrap();
        assert!(
            body.contains("is a part of cluster 'h', use 'h:system.t_s0'"),
            "{body}"
        );
        let (status, body) = nodes
            .node(node)
            .raw_sql(&format!(
                "INSERT INTO h:system.t_s0 (id, title) VALUES ({}, 'on restarted n2')",
                id + 1
            ))
            .unwrap();
        id += 2;
        if status == 200 {
            break;
        }
        assert!(
            refusals.iter().any(|t| body.contains(t)),
            "a refusal §7 does not list: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    nodes.wait_synced(node);
}

/// `rebalance.140`: a read through a wrapper whose agent never answers is in flight while the
/// wrapper is dropped and re-created (§7 item 6). Rendered in the generator's words; durations
/// are compared at 0.1 s (facts.md's granularity) and SHOW META's `time`, a volatile counter,
/// as `{v}`, on both sides.
pub fn note_record(nodes: &mut Nodes, r: &Record, _replay: &Replay) -> Outcome {
    let blackhole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = blackhole.local_addr().unwrap().port();
    nodes
        .extra
        .push((port.to_string(), "{blackhole}".to_string()));
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    blackhole.set_nonblocking(true).unwrap();
    let hole = {
        let (accepted, stop) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            // Connections are accepted and held, never answered.
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                match blackhole.accept() {
                    Ok((s, _)) => {
                        held.push(s);
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        })
    };
    let mysql = nodes.node(&r.node).ports().mysql;
    let mut admin = RawMysql::connect(mysql).unwrap();
    let wrapper =
        format!("(title text) type='shard' local='system.w_s0' agent='127.0.0.1:{port}:system.x'");
    admin
        .query("DROP TABLE IF EXISTS w OPTION force=1")
        .unwrap();
    let created = admin
        .query(&format!("CREATE TABLE w {wrapper}"))
        .unwrap()
        .render();
    let reader = std::thread::spawn(move || {
        let mut conn = RawMysql::connect(mysql).unwrap();
        let started = Instant::now();
        let rows = conn.query("SELECT COUNT(*) FROM w").unwrap();
        let took = started.elapsed();
        let meta = conn.query("SHOW META").unwrap();
        (rows, took, meta)
    });
    // "at t=0.5 s", once the read is in flight (its agent connection is held).
    let t0 = Instant::now();
    wait_until("the read to reach the agent", || {
        accepted.load(Ordering::Relaxed) > 0 && t0.elapsed() >= Duration::from_millis(500)
    });
    let drop_sent = Instant::now();
    let dropped = admin.query("DROP TABLE w OPTION force=1").unwrap();
    let drop_took = drop_sent.elapsed();
    let recreated = admin
        .query("CREATE TABLE w (title text) type='shard' local='system.w_s1'")
        .unwrap();
    let both_took = drop_sent.elapsed();
    let (rows, took, meta) = reader.join().expect("the reader");
    stop.store(true, Ordering::Relaxed);
    let _ = hole.join();
    let text = format!(
        "wrapper w = `{}` (create: `{created}`; the agent port accepts TCP connections and never answers). Reader thread: `SELECT COUNT(*) FROM w` started at t=0; at t=0.5 s another connection ran `DROP TABLE w OPTION force=1` → `{}` (returned after {:.2} s) and `CREATE TABLE w (title text) type='shard' local='system.w_s1'` → `{}` (both done {:.2} s after the DROP was sent). The in-flight SELECT returned after {:.2} s: `{}`; its SHOW META: `{}`.",
        wrapper,
        dropped.render(),
        drop_took.as_secs_f64(),
        recreated.render(),
        both_took.as_secs_f64(),
        took.as_secs_f64(),
        rows.render(),
        meta.render(),
    );
    let coarse = |t: &str| coarse_timings(t);
    Outcome::compare_with(
        r,
        &coarse(&r.output),
        r.status,
        &coarse(&nodes.normalize(&text)),
    )
}

/// Durations to 0.1 s, and SHOW META's `time` as `{v}`.
fn coarse_timings(text: &str) -> String {
    let secs = regex::Regex::new(r"(\d+\.\d+) s\b").unwrap();
    let text = secs.replace_all(text, |c: &regex::Captures| {
        let v: f64 = c[1].parse().unwrap_or(0.0);
        format!("{v:.1} s")
    });
    let time = regex::Regex::new(r#"\["time", "[0-9.]+"\]"#).unwrap();
    time.replace_all(&text, r#"["time", "{v}"]"#).to_string()
}
