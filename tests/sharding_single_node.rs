//! A local sharded table on one node, end to end: sim node + this shardbuddy
//! binary as its helper, driven through the MySQL protocol.

mod sharding_support;

use std::collections::BTreeMap;

use sharding_support::*;

#[test]
fn routing_matches_the_golden_split() {
    // Golden (case `distributed`): in a 2-shard table these ids went to s0, the rest to s1.
    let s0: Vec<u64> = (1..=24).filter(|i| shard_of(*i, 2) == 0).collect();
    assert_eq!(s0, vec![1, 2, 6, 9, 11, 14, 15, 17, 18, 20, 22, 23]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_sharded_table_lifecycle() {
    let node = start(1, &[]);
    let mut c = conn(&node).await;

    exec(
        &mut c,
        "CREATE TABLE t (id bigint, title text) shards='3' rf='1'",
    )
    .await;
    assert_eq!(
        rows(&mut c, "SHOW TABLES").await,
        vec![vec!["t".to_string(), "shard".to_string()]]
    );
    let system = column(&mut c, "SHOW TABLES FROM system").await;
    for want in [
        "system.sharding_queue",
        "system.sharding_state",
        "system.sharding_table",
        "system.t_s0",
        "system.t_s1",
        "system.t_s2",
    ] {
        assert!(
            system.contains(&want.to_string()),
            "{want} missing from {system:?}"
        );
    }
    let ddl = rows(&mut c, "SHOW CREATE TABLE t").await;
    assert!(ddl[0][1].ends_with("shards='3' rf='1'"), "{ddl:?}");

    insert_docs(&mut c, "t", 1..=10_000).await;
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM t").await, 10_000);
    let mut expected: BTreeMap<u32, u64> = BTreeMap::new();
    for id in 1..=10_000u64 {
        *expected.entry(shard_of(id, 3)).or_default() += 1;
    }
    for (shard, want) in &expected {
        let got = count(&mut c, &format!("SELECT COUNT(*) FROM system.t_s{shard}")).await;
        assert_eq!(got, *want, "shard {shard}");
    }
    // Spot-check that ids sit exactly where the routing function puts them.
    for id in [1u64, 2, 3, 999, 5_000, 10_000] {
        let shard = shard_of(id, 3);
        let here = count(
            &mut c,
            &format!("SELECT COUNT(*) FROM system.t_s{shard} WHERE id = {id}"),
        )
        .await;
        assert_eq!(here, 1, "id {id} not in s{shard}");
    }

    let status = rows(&mut c, "SHOW SHARDING STATUS").await;
    assert_eq!(status.len(), 3, "{status:?}");
    for (i, row) in status.iter().enumerate() {
        assert_eq!(row[0], "t");
        assert_eq!(row[1], i.to_string());
        assert_eq!(row[2], node.node_id());
        assert_eq!(row[3], "active");
        assert_eq!((row[6].as_str(), row[7].as_str()), ("1", "ok"));
    }
    assert_eq!(
        rows(&mut c, "SHOW SHARDING MASTER").await,
        vec![vec![node.node_id(), "active".to_string()]]
    );

    exec(&mut c, "TRUNCATE TABLE t").await;
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM t").await, 0);
    exec(&mut c, "FLUSH RAMCHUNK t").await;
    exec(&mut c, "OPTIMIZE TABLE t").await;

    exec(&mut c, "DROP TABLE t").await;
    assert!(column(&mut c, "SHOW TABLES").await.is_empty());
    assert_eq!(traces_of(&mut c, "t").await, Vec::<String>::new());
    // Dropping again: the daemon's own error for a missing table reaches the client untouched.
    assert_eq!(
        error(&mut c, "DROP TABLE t").await,
        "DROP TABLE failed: unknown table 't'"
    );
    exec(&mut c, "DROP TABLE IF EXISTS t").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_if_not_exists_and_duplicates() {
    let node = start(1, &[]);
    let mut c = conn(&node).await;
    exec(
        &mut c,
        "create table t4(id bigint, body text) shards='2' rf='1'",
    )
    .await;
    exec(
        &mut c,
        "create table if not exists t4(id bigint, body text) shards='2' rf='1'",
    )
    .await;
    assert_eq!(
        error(
            &mut c,
            "create table t4(id bigint, body text) shards='2' rf='1'"
        )
        .await,
        "table 't4': CREATE TABLE failed: table 't4' already exists"
    );
    // Options keep their place in the DDL of every shard and of the wrapper.
    exec(
        &mut c,
        "create table t25(title text) min_infix_len='3' shards='2' rf='1'",
    )
    .await;
    let ddl = rows(&mut c, "SHOW CREATE TABLE t25").await;
    assert!(ddl[0][1].contains("min_infix_len='3'"), "{ddl:?}");
}
