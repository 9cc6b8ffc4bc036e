//! Replication clusters over real node processes: replication of every write, node loss and
//! rejoin, quorum, partitions, and concurrent writers.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{conn, error, exec, rows, s};
use manticore_sim::testkit::{heal, partition, start_nodes, NodeOptions, SimNode};
use mysql_async::Conn;

/// Hang protection for waits on cluster state (the state itself is what is asserted).
const PATIENCE: Duration = Duration::from_secs(30);

async fn counters(c: &mut Conn, cluster: &str) -> HashMap<String, String> {
    let prefix = format!("cluster_{cluster}_");
    rows(c, &format!("SHOW STATUS LIKE 'cluster_{cluster}_%'"))
        .await
        .into_iter()
        .filter_map(|r| {
            let key = r[0].strip_prefix(&prefix)?.to_string();
            Some((key, r[1].clone()))
        })
        .collect()
}

/// Polls until `cond` holds for the node's counters of `cluster`; returns the time it took.
async fn wait_counters(
    node: &SimNode,
    cluster: &str,
    what: &str,
    cond: impl Fn(&HashMap<String, String>) -> bool,
) -> Duration {
    let started = Instant::now();
    let mut c = conn(node).await;
    loop {
        let now = counters(&mut c, cluster).await;
        if cond(&now) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < PATIENCE,
            "node {}: {what} never happened; last counters: {now:?}",
            node.index()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A comma list as a sorted set.
fn members(list: &str) -> Vec<String> {
    let mut v: Vec<String> = list.split(',').map(str::to_string).collect();
    v.sort();
    v
}

fn view_has(counters: &HashMap<String, String>, id: &str) -> bool {
    counters
        .get("nodes_view")
        .is_some_and(|v| v.split(',').any(|e| e == id))
}

async fn count(c: &mut Conn, table: &str) -> u64 {
    rows(c, &format!("SELECT COUNT(*) FROM {table}")).await[0][0]
        .parse()
        .unwrap()
}

/// Three nodes in cluster `c` (created on node 1) with the RT table `t` in it.
async fn three_node_cluster() -> Vec<SimNode> {
    let nodes = start_nodes(3, &NodeOptions::default()).unwrap();
    let seed = nodes[0].node_id();
    let mut c1 = conn(&nodes[0]).await;
    exec(&mut c1, "CREATE TABLE t (title text, n int)").await;
    exec(&mut c1, "CREATE CLUSTER c").await;
    for n in &nodes[1..] {
        exec(&mut conn(n).await, &format!("JOIN CLUSTER c AT '{seed}'")).await;
    }
    exec(&mut c1, "ALTER CLUSTER c ADD t").await;
    nodes
}

fn batch(ids: std::ops::Range<u64>) -> String {
    let values: Vec<String> = ids
        .map(|i| format!("({i}, 'doc {i}', {})", i % 100))
        .collect();
    format!(
        "INSERT INTO c:t (id, title, n) VALUES {}",
        values.join(", ")
    )
}

#[tokio::test]
async fn replicates_survives_a_dead_member_and_catches_it_up() {
    let mut nodes = three_node_cluster().await;
    let ids: Vec<String> = nodes.iter().map(SimNode::node_id).collect();
    let mut c1 = conn(&nodes[0]).await;
    for start in (1..=10_000).step_by(500) {
        assert_eq!(exec(&mut c1, &batch(start..start + 500)).await, 500);
    }
    for n in &nodes {
        let mut c = conn(n).await;
        assert_eq!(count(&mut c, "t").await, 10_000, "node {}", n.index());
        let st = counters(&mut c, "c").await;
        assert_eq!(st["status"], "primary");
        assert_eq!(st["node_state"], "synced");
        assert_eq!(st["size"], "3");
        assert_eq!(members(&st["nodes_set"]), members(&ids.join(",")));
        assert_eq!(st["indexes"], "t");
    }

    nodes[2].kill();
    for n in &nodes[..2] {
        let took = wait_counters(n, "c", "node 3 leaving the view", |st| {
            !view_has(st, &ids[2])
        })
        .await;
        println!("node 3 left node {}'s view after {took:?}", n.index());
        let st = counters(&mut conn(n).await, "c").await;
        assert_eq!(st["status"], "primary");
        assert_eq!(st["size"], "2");
        assert_eq!(
            st["nodes_set"],
            ids.join(","),
            "nodes_set keeps the dead member"
        );
        assert_eq!(
            st["nodes_view"].matches(":replication").count(),
            2,
            "{}",
            st["nodes_view"]
        );
    }
    let mut c2 = conn(&nodes[1]).await;
    for start in (10_001..=11_000).step_by(250) {
        assert_eq!(exec(&mut c2, &batch(start..start + 250)).await, 250);
    }

    nodes[2].launch().unwrap();
    wait_counters(&nodes[2], "c", "node 3 synced", |st| {
        st["status"] == "primary" && st["node_state"] == "synced"
    })
    .await;
    for n in &nodes {
        let mut c = conn(n).await;
        assert_eq!(count(&mut c, "t").await, 11_000, "node {}", n.index());
        assert_eq!(
            counters(&mut c, "c").await["size"],
            "3",
            "node {}",
            n.index()
        );
    }
    // The rejoined member takes part in replication again.
    let mut c3 = conn(&nodes[2]).await;
    exec(&mut c3, "UPDATE c:t SET n = 777 WHERE id = 11000").await;
    for n in &nodes {
        let mut c = conn(n).await;
        assert_eq!(
            rows(&mut c, "SELECT n FROM t WHERE id = 11000").await,
            vec![s(&["777"])]
        );
    }
}

#[tokio::test]
async fn a_survivor_without_quorum_refuses_writes_until_bootstrapped() {
    let mut nodes = three_node_cluster().await;
    let mut c1 = conn(&nodes[0]).await;
    exec(
        &mut c1,
        "INSERT INTO c:t (id, title, n) VALUES (1, 'before', 1)",
    )
    .await;
    nodes[1].kill();
    nodes[2].kill();
    wait_counters(&nodes[0], "c", "loss of quorum", |st| {
        st["status"] == "non-primary"
    })
    .await;
    let st = counters(&mut c1, "c").await;
    assert_eq!(st["size"], "1");
    assert_eq!(st["node_state"], "synced");
    // searchd keeps showing the last primary view on a non-primary survivor.
    assert_eq!(st["nodes_view"].matches(":replication").count(), 3);
    assert_eq!(
        error(&mut c1, "INSERT INTO c:t (id, title, n) VALUES (2, 'x', 2)").await,
        (
            1064,
            "cluster 'c' is not ready, not primary state (synced)".to_string()
        )
    );
    assert_eq!(
        error(&mut c1, "UPDATE c:t SET n = 5 WHERE id = 1").await.1,
        "table t: cluster 'c' is not ready, not primary state (synced)"
    );
    assert_eq!(
        error(&mut c1, "ALTER CLUSTER c DROP t").await.1,
        "cluster 'c' is not ready, not primary state (synced)"
    );
    // Reads keep working.
    assert_eq!(count(&mut c1, "t").await, 1);

    exec(&mut c1, "SET CLUSTER c GLOBAL 'pc.bootstrap' = 1").await;
    assert_eq!(counters(&mut c1, "c").await["status"], "primary");
    exec(
        &mut c1,
        "INSERT INTO c:t (id, title, n) VALUES (3, 'bootstrapped', 3)",
    )
    .await;
    for n in &mut nodes[1..] {
        n.launch().unwrap();
    }
    for n in &nodes {
        wait_counters(n, "c", "a full view", |st| {
            st["status"] == "primary" && st["size"] == "3" && st["node_state"] == "synced"
        })
        .await;
        assert_eq!(
            count(&mut conn(n).await, "t").await,
            2,
            "node {}",
            n.index()
        );
    }
}

#[tokio::test]
async fn a_partitioned_minority_goes_non_primary_and_heals() {
    let nodes = three_node_cluster().await;
    let ids: Vec<String> = nodes.iter().map(SimNode::node_id).collect();
    partition(&[&[&nodes[0], &nodes[1]], &[&nodes[2]]]).unwrap();
    wait_counters(&nodes[2], "c", "node 3 non-primary", |st| {
        st["status"] == "non-primary"
    })
    .await;
    for n in &nodes[..2] {
        wait_counters(n, "c", "node 3 out of the majority's view", |st| {
            st["status"] == "primary" && !view_has(st, &ids[2]) && st["size"] == "2"
        })
        .await;
    }
    let mut c1 = conn(&nodes[0]).await;
    let mut c3 = conn(&nodes[2]).await;
    exec(
        &mut c1,
        "INSERT INTO c:t (id, title, n) VALUES (1, 'majority', 1)",
    )
    .await;
    assert_eq!(
        error(
            &mut c3,
            "INSERT INTO c:t (id, title, n) VALUES (2, 'minority', 2)"
        )
        .await
        .1,
        "cluster 'c' is not ready, not primary state (synced)"
    );

    heal(&[&nodes[0], &nodes[1], &nodes[2]]).unwrap();
    let mut views = Vec::new();
    for n in &nodes {
        wait_counters(n, "c", "one view again", |st| {
            st["status"] == "primary" && st["size"] == "3"
        })
        .await;
        views.push(counters(&mut conn(n).await, "c").await["nodes_view"].clone());
    }
    assert!(views.iter().all(|v| *v == views[0]), "{views:?}");
    assert_eq!(
        rows(&mut c3, "SELECT title FROM t").await,
        vec![s(&["majority"])]
    );
}

/// Galera acknowledges a write only once it is delivered in the primary
/// component. Right after a cut, before anyone has noticed it, a leader that
/// can no longer reach a majority of its cluster must not acknowledge a
/// write: the other side goes on without it.
#[tokio::test]
async fn a_write_is_acknowledged_only_with_a_majority_reached() {
    let nodes = three_node_cluster().await;
    // Node 1 made the cluster and leads it.
    let mut c1 = conn(&nodes[0]).await;
    let mut c2 = conn(&nodes[1]).await;
    partition(&[&[&nodes[0]], &[&nodes[1], &nodes[2]]]).unwrap();
    let refused = error(
        &mut c1,
        "INSERT INTO c:t (id, title, n) VALUES (1, 'minority', 1)",
    )
    .await
    .1;
    assert!(
        refused.starts_with("cluster 'c' is not ready, not primary state"),
        "{refused}"
    );
    wait_counters(&nodes[1], "c", "a new view without node 1", |st| {
        st["status"] == "primary" && st["size"] == "2"
    })
    .await;
    exec(
        &mut c2,
        "INSERT INTO c:t (id, title, n) VALUES (2, 'majority', 2)",
    )
    .await;

    heal(&[&nodes[0], &nodes[1], &nodes[2]]).unwrap();
    for n in &nodes {
        wait_counters(n, "c", "one view again", |st| {
            st["status"] == "primary" && st["size"] == "3"
        })
        .await;
    }
    for n in &nodes {
        assert_eq!(
            rows(&mut conn(n).await, "SELECT title FROM t").await,
            vec![s(&["majority"])],
            "{}",
            n.node_id()
        );
    }
}

#[tokio::test]
async fn concurrent_conflicting_writes_end_in_one_order_everywhere() {
    let nodes = three_node_cluster().await;
    let mut c1 = conn(&nodes[0]).await;
    exec(&mut c1, "INSERT INTO c:t (id, title, n) VALUES (1, 'x', 0)").await;
    let mut writers = Vec::new();
    for (k, n) in nodes.iter().enumerate() {
        let mut c = conn(n).await;
        writers.push(tokio::spawn(async move {
            for i in 0..40 {
                let v = (k as i64 + 1) * 1000 + i;
                exec(
                    &mut c,
                    &format!("REPLACE INTO c:t (id, title, n) VALUES (1, 'w{k}', {v})"),
                )
                .await;
                exec(
                    &mut c,
                    &format!("UPDATE c:t SET n = {} WHERE id = 1", v + 1),
                )
                .await;
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let mut seen = Vec::new();
    for n in &nodes {
        seen.push(rows(&mut conn(n).await, "SELECT title, n FROM t WHERE id = 1").await);
    }
    assert!(seen.iter().all(|r| *r == seen[0]), "{seen:?}");

    // Two members inserting the same new id at once: exactly one of them wins.
    let mut inserts = Vec::new();
    for n in &nodes {
        let mut c = conn(n).await;
        inserts.push(tokio::spawn(async move {
            mysql_async::prelude::Queryable::query_drop(
                &mut c,
                "INSERT INTO c:t (id, title, n) VALUES (42, 'first', 1)",
            )
            .await
        }));
    }
    let mut ok = 0;
    for i in inserts {
        match i.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert!(e.to_string().contains("duplicate id '42'"), "{e}"),
        }
    }
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn statements_and_membership_across_several_clusters() {
    let mut nodes = start_nodes(2, &NodeOptions::default()).unwrap();
    let seed = nodes[0].node_id();
    let mut c1 = conn(&nodes[0]).await;
    let mut c2 = conn(&nodes[1]).await;
    for n in &nodes {
        for dir in ["h1", "h2"] {
            std::fs::create_dir_all(n.data_dir().join(dir)).unwrap();
        }
    }
    exec(&mut c1, "CREATE TABLE system.a_s0 (title text)").await;
    exec(&mut c1, "CREATE TABLE system.a_s1 (title text)").await;
    exec(&mut c1, "CREATE CLUSTER h1 'h1' as path").await;
    exec(&mut c1, "CREATE CLUSTER h2 'h2' as path").await;
    assert_eq!(
        error(&mut c1, "CREATE CLUSTER h3 'h1' as path").await.1,
        "failed to create desc: duplicate paths, cluster 'h3' has the same path as 'h1'"
    );
    exec(
        &mut c2,
        &format!("JOIN CLUSTER h1 at '{seed}' 'h1' as path"),
    )
    .await;
    exec(
        &mut c2,
        &format!("JOIN CLUSTER h2 AT '{seed}' 'h2' as path "),
    )
    .await;
    assert_eq!(
        error(
            &mut c2,
            &format!("JOIN CLUSTER h1 AT '{seed}' 'h1' as path")
        )
        .await
        .1,
        "cluster 'h1' already exists"
    );
    // Joining through oneself finds no donor.
    let me2 = nodes[1].node_id();
    assert_eq!(
        error(&mut c2, &format!("JOIN CLUSTER h3 AT '{me2}'"))
            .await
            .1,
        "cluster 'h3', failed to fetch donor user from any node"
    );
    exec(
        &mut c1,
        "CREATE TABLE d type='distributed' local='system.a_s0'",
    )
    .await;
    assert_eq!(
        error(&mut c1, "ALTER CLUSTER h1 ADD d").await.1,
        "unknown or wrong type of table 'd'"
    );
    assert_eq!(
        error(&mut c1, "ALTER CLUSTER nope ADD system.a_s0").await.1,
        "unknown cluster 'nope'"
    );
    exec(&mut c1, "ALTER CLUSTER h1 ADD system.a_s0,system.a_s1").await;
    assert_eq!(
        error(&mut c1, "ALTER CLUSTER h2 ADD system.a_s0").await.1,
        "table 'system.a_s0' is already part of cluster 'h1'"
    );
    exec(
        &mut c2,
        "INSERT INTO h1:system.a_s1 (id, title) VALUES (1, 'one')",
    )
    .await;
    assert_eq!(
        rows(&mut c1, "SHOW STATUS LIKE 'cluster_%_indexes'").await,
        vec![
            s(&["cluster_h1_indexes", "system.a_s0,system.a_s1"]),
            s(&["cluster_h2_indexes", ""])
        ]
    );
    // TRUNCATE of a clustered table needs the prefix, and replicates.
    assert_eq!(
        error(&mut c1, "TRUNCATE TABLE system.a_s1").await.1,
        "table 'system.a_s1' is a part of cluster 'h1', use 'h1:system.a_s1'"
    );
    exec(&mut c1, "TRUNCATE TABLE h1:system.a_s1").await;
    assert_eq!(count(&mut c2, "system.a_s1").await, 0);

    // A restarted member rejoins every cluster it was in.
    nodes[1].restart().unwrap();
    for name in ["h1", "h2"] {
        wait_counters(&nodes[1], name, "rejoined", |st| {
            st["status"] == "primary" && st["node_state"] == "synced" && st["size"] == "2"
        })
        .await;
    }
    let mut c2 = conn(&nodes[1]).await;
    exec(
        &mut c2,
        "INSERT INTO h1:system.a_s0 (id, title) VALUES (7, 'after restart')",
    )
    .await;
    assert_eq!(count(&mut c1, "system.a_s0").await, 1);

    // DELETE CLUSTER removes the cluster on every member and leaves the tables.
    exec(&mut c1, "DELETE CLUSTER h1").await;
    assert_eq!(
        rows(&mut c2, "SHOW STATUS LIKE 'cluster_name'").await,
        vec![s(&["cluster_name", "h2"])]
    );
    exec(
        &mut c2,
        "INSERT INTO system.a_s0 (id, title) VALUES (8, 'local again')",
    )
    .await;
    assert_eq!(count(&mut c2, "system.a_s0").await, 2);
    assert_eq!(count(&mut c1, "system.a_s0").await, 1);
}

/// A hand-made shard table over four RT shards on three nodes: s0 local on node 1, s3 local on
/// node 3, s1 mirrored on nodes 2 and 3 and s2 on nodes 1 and 2, each mirrored pair kept in
/// sync by its own replication cluster (the layout the sharding plugin builds).
#[tokio::test]
async fn routing_through_a_shard_table_with_clustered_mirrors() {
    use manticore_sim::exec::route::target_for;
    let mut nodes = start_nodes(3, &NodeOptions::default()).unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| nodes[i].node_id());
    let mut ca = conn(&nodes[0]).await;
    let mut cb = conn(&nodes[1]).await;
    let mut cc = conn(&nodes[2]).await;
    const COLS: &str = "(title text, n int)";
    for (n, dir) in [(0, "hab"), (1, "hab"), (1, "hbc"), (2, "hbc")] {
        std::fs::create_dir_all(nodes[n].data_dir().join(dir)).unwrap();
    }
    exec(&mut ca, &format!("CREATE TABLE system.t_s0 {COLS}")).await;
    exec(&mut cc, &format!("CREATE TABLE system.t_s3 {COLS}")).await;
    exec(&mut cb, &format!("CREATE TABLE system.t_s1 {COLS}")).await;
    exec(&mut cb, "CREATE CLUSTER hbc 'hbc' as path").await;
    exec(&mut cc, &format!("JOIN CLUSTER hbc at '{b}' 'hbc' as path")).await;
    exec(&mut cb, "ALTER CLUSTER hbc ADD system.t_s1").await;
    exec(&mut ca, &format!("CREATE TABLE system.t_s2 {COLS}")).await;
    exec(&mut ca, "CREATE CLUSTER hab 'hab' as path").await;
    exec(&mut cb, &format!("JOIN CLUSTER hab at '{a}' 'hab' as path")).await;
    exec(&mut ca, "ALTER CLUSTER hab ADD system.t_s2").await;
    let ha = "[retry_count=2,ha_strategy=noerrors]";
    let s1 = format!("agent='{b}:system.t_s1|{c}:system.t_s1{ha}'");
    let s2 = format!("agent='{a}:system.t_s2|{b}:system.t_s2{ha}'");
    let wrappers = [
        format!("local='system.t_s0' {s1} {s2} agent='{c}:system.t_s3'"),
        format!("agent='{a}:system.t_s0' {s1} {s2} agent='{c}:system.t_s3'"),
        format!("agent='{a}:system.t_s0' {s1} {s2} local='system.t_s3'"),
    ];
    for (conn, targets) in [&mut ca, &mut cb, &mut cc].into_iter().zip(&wrappers) {
        exec(
            conn,
            &format!("CREATE TABLE t {COLS} type='shard' {targets}"),
        )
        .await;
    }

    // 10,000 documents through the public name, a batch on each node in turn.
    let mut conns = [ca, cb, cc];
    for (k, start) in (1..=10_000u64).step_by(500).enumerate() {
        let values: Vec<String> = (start..start + 500)
            .map(|i| format!("({i}, 'doc {i}', {})", i % 7))
            .collect();
        let sql = format!("INSERT INTO t (id, title, n) VALUES {}", values.join(", "));
        assert_eq!(exec(&mut conns[k % 3], &sql).await, 500);
    }

    // Every document is in exactly its routed shard, on every holder of that shard.
    let mut expected: Vec<Vec<String>> = vec![Vec::new(); 4];
    for id in 1..=10_000i64 {
        expected[target_for(id, 4)].push(id.to_string());
    }
    let holders: [&[usize]; 4] = [&[0], &[1, 2], &[0, 1], &[2]];
    for (shard, on) in holders.iter().enumerate() {
        for &n in *on {
            let ids: Vec<String> = rows(
                &mut conns[n],
                &format!(
                    "SELECT id FROM system.t_s{shard} ORDER BY id ASC LIMIT 10000 OPTION max_matches=10000"
                ),
            )
            .await
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
            assert_eq!(ids, expected[shard], "shard {shard} on node {}", n + 1);
        }
    }
    assert_eq!(expected.iter().map(Vec::len).sum::<usize>(), 10_000);
    assert!(expected.iter().all(|e| !e.is_empty()));
    for conn in &mut conns {
        assert_eq!(count(conn, "t").await, 10_000);
    }

    // With node 2 gone, its shards are read from their other mirrors.
    nodes[1].kill();
    let [ca, _, cc] = &mut conns;
    for conn in [ca, cc] {
        assert_eq!(count(conn, "t").await, 10_000);
        assert_eq!(
            rows(conn, "SELECT id FROM t ORDER BY id DESC LIMIT 2").await,
            vec![s(&["10000"]), s(&["9999"])]
        );
    }
}

/// The node leading the cluster dies and is back before the others notice: the others form a
/// new primary component and the restarted node rejoins it; writes work everywhere afterwards.
#[tokio::test]
async fn the_leader_restarts_before_anyone_notices() {
    let mut nodes = three_node_cluster().await;
    exec(
        &mut conn(&nodes[0]).await,
        "INSERT INTO c:t (id, title, n) VALUES (1, 'a', 1)",
    )
    .await;
    nodes[0].kill();
    nodes[0].launch().unwrap();
    for n in &nodes {
        wait_counters(n, "c", "a full primary view", |st| {
            st["status"] == "primary" && st["node_state"] == "synced" && st["size"] == "3"
        })
        .await;
    }
    for (i, n) in nodes.iter().enumerate() {
        let id = 10 + i;
        exec(
            &mut conn(n).await,
            &format!("INSERT INTO c:t (id, title, n) VALUES ({id}, 'after', {id})"),
        )
        .await;
    }
    for n in &nodes {
        assert_eq!(
            count(&mut conn(n).await, "t").await,
            4,
            "node {}",
            n.index()
        );
    }
}

/// With auth configured, members authenticate to each other with the shared agent secret.
#[tokio::test]
async fn replication_between_nodes_with_auth() {
    let options = NodeOptions {
        sim_lines: vec![
            "user = root:pw:all".to_string(),
            "agent_secret = s3cret".to_string(),
        ],
        ..NodeOptions::default()
    };
    let nodes = start_nodes(2, &options).unwrap();
    let mut c1 = conn(&nodes[0]).await;
    let mut c2 = conn(&nodes[1]).await;
    exec(&mut c1, "CREATE TABLE t (title text)").await;
    exec(&mut c1, "CREATE CLUSTER c").await;
    exec(
        &mut c2,
        &format!("JOIN CLUSTER c AT '{}'", nodes[0].node_id()),
    )
    .await;
    exec(&mut c1, "ALTER CLUSTER c ADD t").await;
    exec(&mut c2, "INSERT INTO c:t (id, title) VALUES (1, 'x')").await;
    assert_eq!(count(&mut c1, "t").await, 1);
    partition(&[&[&nodes[0]], &[&nodes[1]]]).unwrap();
    wait_counters(&nodes[0], "c", "quorum lost", |st| {
        st["status"] == "non-primary"
    })
    .await;
}

/// Ten clusters over the same three nodes (as internal shard clusters are): a lost node leaves
/// every view, and its restart brings it back into all of them.
#[tokio::test]
async fn many_clusters_share_one_liveness_check_per_node_pair() {
    let mut nodes = start_nodes(3, &NodeOptions::default()).unwrap();
    let seed = nodes[0].node_id();
    let names: Vec<String> = (0..10).map(|i| format!("h{i}")).collect();
    for n in &nodes {
        for name in &names {
            std::fs::create_dir_all(n.data_dir().join(name)).unwrap();
        }
    }
    let mut c1 = conn(&nodes[0]).await;
    for name in &names {
        exec(&mut c1, &format!("CREATE CLUSTER {name} '{name}' as path")).await;
        exec(&mut c1, &format!("CREATE TABLE system.{name}_s0 (n int)")).await;
        exec(
            &mut c1,
            &format!("ALTER CLUSTER {name} ADD system.{name}_s0"),
        )
        .await;
    }
    for n in &nodes[1..] {
        let mut c = conn(n).await;
        for name in &names {
            exec(
                &mut c,
                &format!("JOIN CLUSTER {name} at '{seed}' '{name}' as path"),
            )
            .await;
        }
    }
    nodes[2].kill();
    let gone = nodes[2].node_id();
    for name in &names {
        wait_counters(&nodes[0], name, "node 3 leaving", |st| {
            !view_has(st, &gone) && st["status"] == "primary"
        })
        .await;
    }
    for name in &names {
        exec(
            &mut c1,
            &format!("INSERT INTO {name}:system.{name}_s0 (id, n) VALUES (1, 1)"),
        )
        .await;
    }
    nodes[2].launch().unwrap();
    let mut c3 = conn(&nodes[2]).await;
    for name in &names {
        wait_counters(&nodes[2], name, "node 3 back", |st| {
            st["status"] == "primary" && st["node_state"] == "synced" && st["size"] == "3"
        })
        .await;
        assert_eq!(count(&mut c3, &format!("system.{name}_s0")).await, 1);
    }
}

/// A member restarted while it cannot reach any other member fails the remote version check:
/// `recovery-required` (facts §7 item 2b), which a heal does not change; one more restart
/// brings it back with what it missed.
#[tokio::test]
async fn a_member_restarted_alone_needs_another_restart() {
    let mut nodes = start_nodes(2, &NodeOptions::default()).unwrap();
    let mut c1 = conn(&nodes[0]).await;
    exec(&mut c1, "CREATE TABLE t (title text)").await;
    exec(&mut c1, "CREATE CLUSTER c").await;
    exec(&mut c1, "ALTER CLUSTER c ADD t").await;
    exec(
        &mut conn(&nodes[1]).await,
        &format!("JOIN CLUSTER c AT '{}'", nodes[0].node_id()),
    )
    .await;
    partition(&[&[&nodes[0]], &[&nodes[1]]]).unwrap();
    nodes[1].kill();
    nodes[1].launch().unwrap();
    let unstarted = |st: &HashMap<String, String>| {
        st.get("status").map(String::as_str) == Some("recovery-required")
            && st.get("node_state").map(String::as_str) == Some("closed")
    };
    wait_counters(&nodes[1], "c", "recovery-required", unstarted).await;
    let st = counters(&mut conn(&nodes[1]).await, "c").await;
    assert_eq!(
        st["last_error"],
        "remote version check failed: cluster 'c', failed to fetch donor user from any node"
    );
    assert_eq!(st["nodes_view"], "");
    assert_eq!(
        error(
            &mut conn(&nodes[1]).await,
            "INSERT INTO c:t (id, title) VALUES (1, 'x')"
        )
        .await
        .1,
        "cluster 'c' is not ready, not primary state (closed)"
    );
    // n1 alone lost its quorum meanwhile; bootstrapped, it takes writes n2 missed.
    wait_counters(&nodes[0], "c", "n1 non-primary", |st| {
        st["status"] == "non-primary"
    })
    .await;
    exec(&mut c1, "SET CLUSTER c GLOBAL 'pc.bootstrap' = 1").await;
    exec(&mut c1, "INSERT INTO c:t (id, title) VALUES (2, 'missed')").await;
    heal(&[&nodes[0], &nodes[1]]).unwrap();
    // Healing does not start it: searchd needs a restart.
    let mut c2 = conn(&nodes[1]).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        assert!(unstarted(&counters(&mut c2, "c").await));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(c2);
    nodes[1].restart().unwrap();
    wait_counters(&nodes[1], "c", "synced again", |st| {
        st["status"] == "primary" && st["node_state"] == "synced" && st["size"] == "2"
    })
    .await;
    assert_eq!(count(&mut conn(&nodes[1]).await, "t").await, 1);
}
