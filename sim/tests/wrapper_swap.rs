//! Replacing a `type='shard'` wrapper with `DROP TABLE w OPTION force=1` + `CREATE TABLE w …`
//! (facts.md §7 item 6): between the two statements the wrapper does not exist, so a read sent
//! then fails (`unknown local table(s) 'w' in search request`; searchd: 211 of 8629 back-to-back
//! reads over 50 swaps), while a read already running keeps the wrapper it started with (the
//! in-flight case is record `rebalance.140` of the conformance replay).

mod common;

use common::{conn, exec, rows};
use manticore_sim::testkit::{NodeOptions, SimNode};
use mysql_async::prelude::Queryable;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swapped_wrapper_is_missing_between_drop_and_create() {
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    let mut admin = conn(&node).await;
    let mut reader = conn(&node).await;
    for (table, n) in [("system.w_s0", 10), ("system.w_s1", 20)] {
        exec(&mut admin, &format!("CREATE TABLE {table} (title text)")).await;
        let values: Vec<String> = (1..=n).map(|i| format!("({i}, 'x')")).collect();
        exec(
            &mut admin,
            &format!(
                "INSERT INTO {table} (id, title) VALUES {}",
                values.join(",")
            ),
        )
        .await;
    }
    exec(
        &mut admin,
        "CREATE TABLE w (title text) type='shard' local='system.w_s0'",
    )
    .await;
    for swap in 0..10 {
        let (shard, count) = if swap % 2 == 0 {
            ("system.w_s1", "20")
        } else {
            ("system.w_s0", "10")
        };
        exec(&mut admin, "DROP TABLE w OPTION force=1").await;
        let err = reader
            .query_drop("SELECT COUNT(*) FROM w")
            .await
            .expect_err("the wrapper is gone");
        assert!(
            err.to_string()
                .contains("unknown local table(s) 'w' in search request"),
            "{err}"
        );
        exec(
            &mut admin,
            &format!("CREATE TABLE w (title text) type='shard' local='{shard}'"),
        )
        .await;
        assert_eq!(
            rows(&mut reader, "SELECT COUNT(*) FROM w").await,
            vec![vec![count.to_string()]]
        );
    }
}

/// An INSERT sent while the wrapper is being swapped either lands or is refused because the
/// wrapper is absent: it never sees the new wrapper as some other kind of table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_during_swaps_lands_or_finds_the_wrapper_absent() {
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    let mut admin = conn(&node).await;
    exec(&mut admin, "CREATE TABLE system.w_s0 (title text)").await;
    // Rows make each change of the catalog take longer to persist: a
    // statement that looked the wrapper up waits that long for the store.
    for batch in 0..20 {
        let values: Vec<String> = (1..=1000)
            .map(|i| {
                format!(
                    "({}, 'some words to persist')",
                    10_000_000 + batch * 1000 + i
                )
            })
            .collect();
        exec(
            &mut admin,
            &format!(
                "INSERT INTO system.w_s0 (id, title) VALUES {}",
                values.join(",")
            ),
        )
        .await;
    }
    exec(
        &mut admin,
        "CREATE TABLE w (title text) type='shard' local='system.w_s0'",
    )
    .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2u64)
        .map(|w| {
            let (stop, url) = (stop.clone(), node.mysql_url());
            tokio::spawn(async move {
                let mut c = mysql_async::Conn::from_url(url).await.expect("connects");
                let (mut landed, mut refused) = (0u64, Vec::new());
                let mut id = w * 1_000_000 + 1;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    match c
                        .query_drop(format!("INSERT INTO w (id, title) VALUES ({id}, 'x')"))
                        .await
                    {
                        Ok(()) => landed += 1,
                        Err(e) => refused.push(e.to_string()),
                    }
                    id += 1;
                }
                (landed, refused)
            })
        })
        .collect();
    for _ in 0..300 {
        exec(
            &mut admin,
            "DROP TABLE IF EXISTS w OPTION force=1; \
             CREATE TABLE w (title text) type='shard' local='system.w_s0'",
        )
        .await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut landed, mut refused) = (0, Vec::new());
    for w in writers {
        let (l, r) = w.await.expect("writer");
        landed += l;
        refused.extend(r);
    }
    let other: Vec<&String> = refused
        .iter()
        .filter(|e| !e.contains("table 'w' absent"))
        .collect();
    println!(
        "300 swaps: {landed} inserts landed, {} refused as absent, {} otherwise",
        refused.len() - other.len(),
        other.len()
    );
    assert!(other.is_empty(), "{other:?}");
    assert!(landed > 0, "no insert landed");
}
