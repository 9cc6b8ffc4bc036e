//! Routing through `type='shard'` and `type='distributed'` tables over several nodes.

mod common;

use common::{conn, error, exec, rows, s};
use manticore_sim::exec::route::target_for;
use manticore_sim::testkit::{start_nodes, NodeOptions};

fn ids(rows: Vec<Vec<String>>) -> Vec<i64> {
    rows.into_iter().map(|r| r[0].parse().unwrap()).collect()
}

#[tokio::test]
async fn two_shards_local_and_remote() {
    let mut nodes = start_nodes(2, &NodeOptions::default()).unwrap();
    let (n1, n2) = (nodes[0].node_id(), nodes[1].node_id());
    let mut c1 = conn(&nodes[0]).await;
    let mut c2 = conn(&nodes[1]).await;
    exec(&mut c1, "CREATE TABLE system.s_s0 (title text, n int)").await;
    exec(&mut c2, "CREATE TABLE system.s_s1 (title text, n int)").await;
    exec(&mut c1, &format!("CREATE TABLE s (title text, n int) type='shard' local='system.s_s0' agent='{n2}:system.s_s1'")).await;
    exec(&mut c2, &format!("CREATE TABLE s (title text, n int) type='shard' local='system.s_s1' agent='{n1}:system.s_s0'")).await;

    let values: Vec<String> = (1..=20).map(|i| format!("({i}, 'doc {i}', {i})")).collect();
    assert_eq!(
        exec(
            &mut c1,
            &format!("INSERT INTO s (id, title, n) VALUES {}", values.join(", "))
        )
        .await,
        20
    );
    for i in 21..=24 {
        exec(
            &mut c2,
            &format!("INSERT INTO s (id, title, n) VALUES ({i}, 'doc {i}', {i})"),
        )
        .await;
    }
    // searchd's golden split.
    assert_eq!(
        ids(rows(
            &mut c1,
            "SELECT id FROM system.s_s0 ORDER BY id ASC LIMIT 100"
        )
        .await),
        vec![1, 2, 6, 9, 11, 14, 15, 17, 18, 20, 22, 23]
    );
    assert_eq!(
        ids(rows(
            &mut c2,
            "SELECT id FROM system.s_s1 ORDER BY id ASC LIMIT 100"
        )
        .await),
        vec![3, 4, 5, 7, 8, 10, 12, 13, 16, 19, 21, 24]
    );
    for c in [&mut c1, &mut c2] {
        assert_eq!(rows(c, "SELECT COUNT(*) FROM s").await, vec![s(&["24"])]);
        assert_eq!(
            ids(rows(c, "SELECT * FROM s ORDER BY id ASC LIMIT 5").await),
            vec![1, 2, 3, 4, 5]
        );
        assert_eq!(
            ids(rows(
                c,
                "SELECT id FROM s WHERE MATCH('doc') ORDER BY id DESC LIMIT 3"
            )
            .await),
            vec![24, 23, 22]
        );
    }
    assert_eq!(
        rows(&mut c1, "SHOW CREATE TABLE s").await[0][1],
        "CREATE TABLE s (\nid bigint,\ntitle text,\nn integer\n) shards='2' rf='1'"
    );
    assert_eq!(
        rows(&mut c1, "SHOW CREATE TABLE s OPTION force=1").await[0][1],
        format!("CREATE TABLE s (\nid bigint,\ntitle text,\nn integer\n) type='shard' local='system.s_s0' agent='{n2}:system.s_s1'")
    );
    // Writes by id land on one shard; auto ids too.
    exec(
        &mut c1,
        "REPLACE INTO s (id, title, n) VALUES (1, 'replaced', 100), (3, 'replaced', 100)",
    )
    .await;
    assert_eq!(exec(&mut c1, "UPDATE s SET n = 200 WHERE id = 3").await, 1);
    assert_eq!(
        rows(&mut c2, "SELECT n FROM system.s_s1 WHERE id = 3").await,
        vec![s(&["200"])]
    );
    exec(&mut c1, "DELETE FROM s WHERE id = 1").await;
    exec(&mut c1, "INSERT INTO s (title, n) VALUES ('no id', 1)").await;
    assert_eq!(
        rows(&mut c1, "SELECT COUNT(*) FROM s WHERE n = 1").await,
        vec![s(&["1"])]
    );
    assert_eq!(exec(&mut c1, "DELETE FROM s WHERE id > 1000").await, 1);
    assert_eq!(
        error(&mut c1, "TRUNCATE TABLE s").await.1,
        "TRUNCATE RTINDEX requires an existing RT table"
    );
    assert_eq!(
        error(&mut c1, "ALTER TABLE s ADD COLUMN k int").await.1,
        "ALTER is only supported for local (not distributed) tables"
    );
    assert_eq!(
        error(&mut c1, "ALTER TABLE s").await.1,
        "table 's' is not found, or not real-time"
    );

    // A dead agent: reads return partial data with a warning in SHOW META; writes to it fail whole.
    nodes[1].kill();
    assert_eq!(
        rows(&mut c1, "SELECT COUNT(*) FROM s").await,
        vec![s(&["11"])]
    );
    let meta = rows(&mut c1, "SHOW META").await;
    assert_eq!(meta[0][0], "warning");
    assert!(
        meta[0][1].starts_with(&format!(
            "table s: agent {n2}: receiving failure (errno=111, msg=Connection refused)"
        )),
        "{meta:?}"
    );
    assert_eq!(meta[3], s(&["total_relation", "gte"]));
    let dead = format!("remote table 'system.s_s1' at {n2} failed: receiving failure (errno=111, msg=Connection refused)");
    assert_eq!(
        error(
            &mut c1,
            "INSERT INTO s (id, title, n) VALUES (25, 'while n2 dead', 25)"
        )
        .await
        .1,
        dead
    );
    exec(
        &mut c1,
        "INSERT INTO s (id, title, n) VALUES (26, 'while n2 dead', 26)",
    )
    .await;
    assert_eq!(
        error(
            &mut c1,
            "INSERT INTO s (id, title, n) VALUES (29, 'x', 29), (30, 'x', 30), (31, 'x', 31)"
        )
        .await
        .1,
        dead
    );
    assert_eq!(
        ids(rows(
            &mut c1,
            "SELECT id FROM system.s_s0 WHERE id > 24 AND id < 1000 ORDER BY id ASC"
        )
        .await),
        vec![26]
    );

    assert_eq!(
        error(&mut c1, "DROP TABLE s").await.1,
        "can not drop table 's' because it contains system table"
    );
    exec(&mut c1, "DROP TABLE s OPTION force=1").await;
}

#[tokio::test]
async fn shard_table_validation_and_distributed_tables() {
    let nodes = start_nodes(2, &NodeOptions::default()).unwrap();
    let n2 = nodes[1].node_id();
    let mut c1 = conn(&nodes[0]).await;
    let mut c2 = conn(&nodes[1]).await;
    exec(&mut c1, "CREATE TABLE dl (title text, n int)").await;
    exec(
        &mut c1,
        "INSERT INTO dl (id, title, n) VALUES (1, 'one', 1), (2, 'two', 2)",
    )
    .await;
    exec(&mut c2, "CREATE TABLE dr (title text, n int)").await;
    exec(
        &mut c2,
        "INSERT INTO dr (id, title, n) VALUES (3, 'three', 3), (4, 'four', 4)",
    )
    .await;
    exec(
        &mut c1,
        &format!("CREATE TABLE d type='distributed' local='dl' agent='{n2}:dr'"),
    )
    .await;
    assert_eq!(
        rows(&mut c1, "SELECT COUNT(*) FROM d").await,
        vec![s(&["4"])]
    );
    assert_eq!(
        ids(rows(&mut c1, "SELECT * FROM d ORDER BY id ASC LIMIT 3").await),
        vec![1, 2, 3]
    );
    assert_eq!(
        rows(&mut c1, "DESC d").await,
        vec![
            s(&["dl", "local"]),
            vec![format!("{n2}:dr"), "remote_1".to_string()]
        ]
    );
    assert_eq!(
        error(&mut c1, "INSERT INTO d (id, title, n) VALUES (10, 'x', 10)")
            .await
            .1,
        "table 'd' does not support INSERT"
    );
    exec(
        &mut c1,
        &format!("CREATE TABLE d_missing_remote type='distributed' agent='{n2}:nope'"),
    )
    .await;
    assert_eq!(
        error(&mut c1, "SELECT * FROM d_missing_remote").await.1,
        format!("table d_missing_remote: agent {n2}: remote query error: unknown local table(s) 'nope' in search request")
    );
    exec(&mut c1, "CREATE TABLE system.s_s0 (title text, n int)").await;
    exec(&mut c1, "CREATE TABLE system.bad_s0 (title text)").await;
    let cases: Vec<(String, String)> = vec![
        ("CREATE TABLE d_none type='distributed'".into(), "error adding table 'd_none': table 'd_none': no valid local/remote tables in distributed table".into()),
        ("CREATE TABLE bad (title text, n int) type='shard' local='system.bad_s0'".into(), "error adding table 'bad': local table 'system.bad_s0' is incompatible with shard table 'bad'".into()),
        ("CREATE TABLE bad2 (title text, n int) type='shard' local='system.nope_s0'".into(), "error adding table 'bad2': table 'bad2': no such local table 'system.nope_s0'".into()),
        ("CREATE TABLE bad5 (title text, n int) type='shard'".into(), "error adding table 'bad5': table 'bad5': no valid local/remote tables in shard table".into()),
        ("CREATE TABLE bad6 (title text, n int) type='shard' local='d'".into(), "error adding table 'bad6': table 'bad6': no such local table 'd'".into()),
        ("CREATE TABLE bad7 (title text, n int) type='shard' local='system.s_s0' agent='nohost'".into(), "error adding table 'bad7': table 'bad7': agent 'nohost': failed to lookup host name 'nohost' (error=Success), - SKIPPING AGENT".into()),
        ("CREATE TABLE bad8 (title text, n int) type='sharded' local='system.s_s0'".into(), "error adding table 'bad8': setting not allowed: type='sharded'".into()),
        (
            format!("CREATE TABLE bad9 (title text, n int) type='shard' local='system.s_s0' agent='{n2}:system.s_s0'"),
            "error adding table 'bad9': table 'bad9': duplicate shard suffix order 0 for targets 'system.s_s0' and 'system.s_s0'".into(),
        ),
        (
            format!("CREATE TABLE bad10 (title text, n int) type='shard' agent='{n2}:system.s_s1,system.p_s1'"),
            format!("error adding table 'bad10': table 'bad10': shard remote target '{n2}:system.s_s1,system.p_s1' must name exactly one remote table"),
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(error(&mut c1, &sql).await.1, want, "{sql}");
    }
    assert_eq!(
        rows(&mut c1, "SHOW TABLES").await,
        vec![
            s(&["d", "distributed"]),
            s(&["d_missing_remote", "distributed"]),
            s(&["dl", "rt"])
        ]
    );
}

/// Four shards on three nodes (locals, plain agents and a mirrored agent), 10,000 inserts
/// through the public name from every node: every row lands in exactly the shard the routing
/// function picks, and every node counts all of them.
#[tokio::test]
async fn four_shards_on_three_nodes() {
    let nodes = start_nodes(3, &NodeOptions::default()).unwrap();
    let id: Vec<String> = nodes.iter().map(|n| n.node_id()).collect();
    let mut c: Vec<_> = Vec::new();
    for n in &nodes {
        c.push(conn(n).await);
    }
    // s0 on n1, s1 on n2, s2 on n3, s3 mirrored on n2|n3 (writes go to one live mirror).
    exec(&mut c[0], "CREATE TABLE system.t_s0 (title text, n int)").await;
    exec(&mut c[1], "CREATE TABLE system.t_s1 (title text, n int)").await;
    exec(&mut c[2], "CREATE TABLE system.t_s2 (title text, n int)").await;
    exec(&mut c[1], "CREATE TABLE system.t_s3 (title text, n int)").await;
    exec(&mut c[2], "CREATE TABLE system.t_s3 (title text, n int)").await;
    let mirrored = format!(
        "agent='{}:system.t_s3|{}:system.t_s3[retry_count=2,ha_strategy=noerrors]'",
        id[1], id[2]
    );
    let wrappers = [
        format!(
            "local='system.t_s0' agent='{}:system.t_s1' agent='{}:system.t_s2' {mirrored}",
            id[1], id[2]
        ),
        format!(
            "local='system.t_s1' agent='{}:system.t_s0' agent='{}:system.t_s2' {mirrored}",
            id[0], id[2]
        ),
        format!(
            "local='system.t_s2' agent='{}:system.t_s0' agent='{}:system.t_s1' {mirrored}",
            id[0], id[1]
        ),
    ];
    for (conn, w) in c.iter_mut().zip(&wrappers) {
        exec(
            conn,
            &format!("CREATE TABLE t (title text, n int) type='shard' {w}"),
        )
        .await;
    }
    assert_eq!(
        rows(&mut c[0], "SHOW CREATE TABLE t").await[0][1],
        "CREATE TABLE t (\nid bigint,\ntitle text,\nn integer\n) shards='4' rf='2'"
    );
    for batch in 0..100 {
        let values: Vec<String> = (1..=100)
            .map(|i| batch * 100 + i)
            .map(|id| format!("({id}, 'doc {id}', {id})"))
            .collect();
        let sql = format!("INSERT INTO t (id, title, n) VALUES {}", values.join(", "));
        assert_eq!(exec(&mut c[(batch % 3) as usize], &sql).await, 100);
    }
    for conn in c.iter_mut() {
        assert_eq!(
            rows(conn, "SELECT COUNT(*) FROM t").await,
            vec![s(&["10000"])]
        );
    }
    let shard_rows = [
        ids(rows(
            &mut c[0],
            "SELECT id FROM system.t_s0 LIMIT 100000 OPTION max_matches=100000",
        )
        .await),
        ids(rows(
            &mut c[1],
            "SELECT id FROM system.t_s1 LIMIT 100000 OPTION max_matches=100000",
        )
        .await),
        ids(rows(
            &mut c[2],
            "SELECT id FROM system.t_s2 LIMIT 100000 OPTION max_matches=100000",
        )
        .await),
        ids(rows(
            &mut c[1],
            "SELECT id FROM system.t_s3 LIMIT 100000 OPTION max_matches=100000",
        )
        .await),
    ];
    let mut seen = std::collections::HashSet::new();
    for (shard, ids) in shard_rows.iter().enumerate() {
        for id in ids {
            assert_eq!(target_for(*id, 4), shard, "id {id} in shard {shard}");
            assert!(seen.insert(*id), "id {id} stored twice");
        }
    }
    assert_eq!(seen.len(), 10_000);
    assert_eq!(
        rows(&mut c[2], "SELECT COUNT(*) FROM system.t_s3").await,
        vec![s(&["0"])],
        "writes went to the first live mirror only"
    );
}

/// Reads through a mirrored agent survive the loss of one mirror.
#[tokio::test]
async fn mirrored_reads_fail_over() {
    let mut nodes = start_nodes(2, &NodeOptions::default()).unwrap();
    let (n1, n2) = (nodes[0].node_id(), nodes[1].node_id());
    for node in &nodes {
        let mut c = conn(node).await;
        exec(&mut c, "CREATE TABLE system.m_s0 (title text)").await;
        exec(
            &mut c,
            "INSERT INTO system.m_s0 (id, title) VALUES (1, 'a'), (2, 'b'), (6, 'c')",
        )
        .await;
    }
    let mut c1 = conn(&nodes[0]).await;
    exec(&mut c1, &format!("CREATE TABLE m (title text) type='shard' agent='{n2}:system.m_s0|{n1}:system.m_s0[retry_count=2,ha_strategy=noerrors]'")).await;
    assert_eq!(
        rows(&mut c1, "SELECT COUNT(*) FROM m").await,
        vec![s(&["3"])]
    );
    nodes[1].kill();
    assert_eq!(
        rows(&mut c1, "SELECT COUNT(*) FROM m").await,
        vec![s(&["3"])]
    );
    assert_eq!(
        ids(rows(&mut c1, "SELECT * FROM m ORDER BY id DESC").await),
        vec![6, 2, 1]
    );
}

/// With auth configured, node-to-node queries authenticate with the shared agent secret.
#[tokio::test]
async fn agents_authenticate_with_the_shared_secret() {
    let with_secret = NodeOptions {
        sim_lines: vec![
            "user = root:pw:all".to_string(),
            "agent_secret = s3cret".to_string(),
        ],
        ..NodeOptions::default()
    };
    let nodes = start_nodes(2, &with_secret).unwrap();
    let n2 = nodes[1].node_id();
    let mut c2 = conn(&nodes[1]).await;
    exec(&mut c2, "CREATE TABLE r (title text)").await;
    exec(&mut c2, "INSERT INTO r (id, title) VALUES (1, 'x')").await;
    let mut c1 = conn(&nodes[0]).await;
    exec(
        &mut c1,
        &format!("CREATE TABLE d type='distributed' agent='{n2}:r'"),
    )
    .await;
    assert_eq!(
        rows(&mut c1, "SELECT COUNT(*) FROM d").await,
        vec![s(&["1"])]
    );

    let other_secret = NodeOptions {
        sim_lines: vec![
            "user = root:pw:all".to_string(),
            "agent_secret = other".to_string(),
        ],
        ..NodeOptions::default()
    };
    let stranger = manticore_sim::testkit::SimNode::start(3, other_secret).unwrap();
    let mut c3 = conn(&stranger).await;
    exec(
        &mut c3,
        &format!("CREATE TABLE d type='distributed' agent='{n2}:r'"),
    )
    .await;
    assert_eq!(
        error(&mut c3, "SELECT COUNT(*) FROM d").await.1,
        format!("table d: agent {n2}: remote query error: Access denied")
    );
}
