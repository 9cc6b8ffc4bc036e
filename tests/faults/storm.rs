//! A storm: one client per node creating and dropping tables of its own as
//! fast as it is answered (so the operations of different tables overlap
//! and share internal clusters), while a chaos task aborts a random node's
//! shardbuddy at a random failpoint or kills it (`kill -9`) every few
//! hundred milliseconds. Every OK must be true at once; an error of
//! shardbuddy's must leave the table as it was; at the end the cluster must
//! be consistent and every table's writes readable.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use manticore_sim::testkit::SimNode;

use crate::harness::*;
use crate::sharding_support::*;
use crate::Tally;
use shardbuddy::failpoint;

/// What a client knows of one of its tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Known {
    Exists,
    Absent,
    /// Its last statement got searchd's own error (the helper died).
    Unknown,
}

/// What one client did.
#[derive(Debug, Default)]
struct Client {
    ops: usize,
    ok: usize,
    helper_gone: usize,
    errors: BTreeMap<String, usize>,
    violations: Vec<String>,
    tables: BTreeMap<String, Known>,
    /// Every statement and its answer, printed when something is wrong.
    history: Vec<String>,
}

/// Whether `table` is placed, asked through `node` until its helper answers.
async fn placed_now(node: &SimNode, table: &str) -> Option<bool> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Some(copies) = try_copies(node, table).await {
            return Some(!copies.is_empty());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn client(nodes: Arc<Nodes>, index: usize, seed: u64, stop: Arc<AtomicBool>) -> Client {
    let node = &nodes[index];
    let mut rng = Rng::new(seed);
    let mut out = Client::default();
    let names: Vec<String> = (0..3).map(|i| format!("s{index}x{i}")).collect();
    for name in &names {
        out.tables.insert(name.clone(), Known::Absent);
    }
    while !stop.load(Ordering::Relaxed) {
        let name = names[rng.range(0, names.len() as u64 - 1) as usize].clone();
        let known = out.tables[&name];
        let create = match known {
            Known::Exists => false,
            Known::Absent => true,
            Known::Unknown => rng.range(0, 1) == 0,
        };
        let sql = if create {
            format!(
                "CREATE TABLE IF NOT EXISTS c:{name} (id bigint, title text) shards='{}' rf='{}'",
                rng.range(1, 3),
                rng.range(1, 3)
            )
        } else {
            format!("DROP TABLE IF EXISTS c:{name}")
        };
        let mut c = match tokio::time::timeout(Duration::from_secs(10), conn_of(node)).await {
            Ok(Some(c)) => c,
            _ => continue,
        };
        let sent = Instant::now();
        let answer = Answer::of(run(&mut c, &sql).await);
        drop(c);
        out.ops += 1;
        out.history.push(format!(
            "{:?} +{} ms {sql} -> {answer:?}",
            sent,
            sent.elapsed().as_millis()
        ));
        let now = match &answer {
            Answer::HelperGone(_) => {
                out.helper_gone += 1;
                out.tables.insert(name.clone(), Known::Unknown);
                continue;
            }
            Answer::Ok => {
                out.ok += 1;
                placed_now(node, &name).await
            }
            Answer::Error(e) => {
                *out.errors.entry(e.clone()).or_default() += 1;
                placed_now(node, &name).await
            }
        };
        let Some(now) = now else {
            continue;
        };
        let want = match (&answer, create) {
            (Answer::Ok, true) => Some(true),
            (Answer::Ok, false) => Some(false),
            (Answer::Error(_), _) if answer.says_outcome_unknown() => None,
            (Answer::Error(_), _) => match known {
                Known::Exists => Some(true),
                Known::Absent => Some(false),
                Known::Unknown => None,
            },
            (Answer::HelperGone(_), _) => None,
        };
        if let Some(want) = want {
            if want != now {
                out.violations.push(format!(
                    "{sql}: answered {answer:?}, but the table {}",
                    if now { "exists" } else { "is absent" }
                ));
            }
        }
        let known = match (&answer, want) {
            (_, Some(w)) if w == now => {
                if now {
                    Known::Exists
                } else {
                    Known::Absent
                }
            }
            _ => Known::Unknown,
        };
        out.tables.insert(name, known);
    }
    out
}

async fn conn_of(node: &SimNode) -> Option<mysql_async::Conn> {
    let opts = mysql_async::Opts::from_url(&node.mysql_url()).ok()?;
    mysql_async::Conn::new(opts).await.ok()
}

/// Runs the storm for `secs` seconds with chaos every 0.3–2 s.
pub async fn storm(test: &str, secs: u64) -> Tally {
    let seed = seed(test);
    let mut rng = Rng::new(seed);
    let nodes = Arc::new(cluster_of(3, &[]).await);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..nodes.len())
        .map(|i| {
            tokio::spawn(client(
                Arc::clone(&nodes),
                i,
                seed.wrapping_add(i as u64 + 1),
                Arc::clone(&stop),
            ))
        })
        .collect();
    let started = Instant::now();
    let (mut aborts, mut kills) = (0, 0);
    while started.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(rng.range(300, 2000))).await;
        let node = &nodes[rng.range(0, nodes.len() as u64 - 1) as usize];
        if rng.range(0, 3) == 0 {
            if let Some(pid) = helper_pid(node) {
                kill_9(pid);
                kills += 1;
            }
        } else {
            let point = failpoint::NAMES[rng.range(0, failpoint::NAMES.len() as u64 - 1) as usize];
            if try_set_failpoints(node, &format!("{point}=abort")) {
                aborts += 1;
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut tally = Tally::default();
    let mut all = Vec::new();
    for task in clients {
        all.push(task.await.expect("client task"));
    }
    // Failpoints not reached are cleared, then the cluster must settle.
    wait_helpers(&nodes).await;
    for node in nodes.iter() {
        set_failpoints(node, "");
    }
    tally.slowest_settle = wait_consistent(&nodes[0], SETTLE_BOUND, "after the storm").await;
    let mut c = conn(&nodes[0]).await;
    let mut errors: BTreeMap<String, usize> = BTreeMap::new();
    for client in &all {
        tally.cases += client.ops;
        tally.answered_ok += client.ok;
        tally.helper_gone += client.helper_gone;
        tally.answered_error += client.errors.values().sum::<usize>();
        tally.violations.extend(client.violations.iter().cloned());
        for (e, n) in &client.errors {
            *errors.entry(e.clone()).or_default() += n;
        }
        for (table, known) in &client.tables {
            let exists = placed(&nodes[0], table).await;
            let agrees = match known {
                Known::Exists => exists,
                Known::Absent => !exists,
                Known::Unknown => true,
            };
            if !agrees {
                tally
                    .violations
                    .push(format!("{table}: known {known:?}, but exists: {exists}"));
            }
            if exists {
                insert_docs(&mut c, table, 1..=10).await;
                for node in nodes.iter() {
                    let mut n = conn(node).await;
                    let got = count(&mut n, &format!("SELECT COUNT(*) FROM {table}")).await;
                    if got != 10 {
                        tally
                            .violations
                            .push(format!("{table}: {got} rows through node {}", node.index()));
                    }
                }
            }
        }
    }
    eprintln!(
        "{test}: seed {seed}: {secs} s, {} statements ({aborts} failpoint aborts set, {kills} helpers killed): {tally}",
        tally.cases
    );
    for (e, n) in &errors {
        eprintln!("{test}: {n} × {e}");
    }
    for v in &tally.violations {
        eprintln!("VIOLATION: {v}");
    }
    if !tally.violations.is_empty() {
        for (i, client) in all.iter().enumerate() {
            for line in &client.history {
                eprintln!("client {i}: {line}");
            }
        }
        for node in nodes.iter() {
            for line in node.log_text().lines() {
                let about = tally.violations.iter().any(|v| {
                    v.split_whitespace()
                        .find_map(|w| w.strip_prefix("c:"))
                        .is_some_and(|t| line.contains(t))
                });
                if about || line.contains("failpoint") || line.contains("started") {
                    eprintln!("node {}: {line}", node.index());
                }
            }
        }
    }
    tally
}
