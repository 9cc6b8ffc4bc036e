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
