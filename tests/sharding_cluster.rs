//! Sharded tables on a three-node replication cluster, end to end: sim nodes
//! with this shardbuddy binary as their helper, driven through MySQL.

mod sharding_support;

use std::time::{Duration, Instant};

use manticore_sim::testkit::SimNode;
use md5::{Digest, Md5};
use sharding_support::*;

/// Three nodes joined into cluster `c` (node 0 created it).
async fn cluster_of_three() -> Nodes {
    cluster_of(3, &[]).await
}

/// Like [`cluster_of_three`], the third node's helper with extra environment.
async fn cluster_of_three_with(third_env: &[(&str, &str)]) -> Nodes {
    let nodes = Nodes(
        (1..=3)
            .map(|i| start(i, if i == 3 { third_env } else { &[] }))
            .collect(),
    );
    let mut first = conn(&nodes[0]).await;
    exec(&mut first, "CREATE CLUSTER c").await;
    for node in &nodes[1..] {
        join(node, &nodes[0]).await;
    }
    nodes
}

/// Buddy's internal cluster name of a replica set (spec §7.5), computed here
/// independently of shardbuddy.
fn internal_cluster(nodes: &[&str]) -> String {
    let mut sorted: Vec<&str> = nodes.to_vec();
    sorted.sort();
    let hex = format!("{:x}", Md5::digest(sorted.join(",").as_bytes()));
    let first = hex.as_bytes()[0];
    if first.is_ascii_digit() {
        format!("{}{}", (b'a' + (first - b'0') % 6) as char, &hex[1..])
    } else {
        hex
    }
}

/// The master lease as stored: (holder, epoch, beat).
async fn lease(c: &mut mysql_async::Conn) -> (String, u64, u64) {
    let value = rows(
        c,
        "SELECT `value` FROM system.sharding_state WHERE `key` = 'master_lease'",
    )
    .await;
    let json: serde_json::Value = serde_json::from_str(&value[0][0]).expect("lease json");
    let lease = &json[0];
    (
        lease["node"].as_str().expect("node").to_string(),
        lease["epoch"].as_u64().expect("epoch"),
        lease["beat"].as_u64().expect("beat"),
    )
}

async fn cluster_indexes(node: &SimNode) -> Vec<(String, String)> {
    let mut c = conn(node).await;
    rows(&mut c, "SHOW STATUS LIKE 'cluster_%_indexes'")
        .await
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clustered_table_survives_a_node_loss_and_drops_everywhere() {
    let mut nodes = cluster_of_three().await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='2'",
    )
    .await;

    // Spec §8.5 with A < B < C: s0 {A,C}, s1 {A,B}, s2 {B,C}, s3 {A,B}.
    let mut ids: Vec<String> = nodes.iter().map(SimNode::node_id).collect();
    ids.sort();
    let (a, b, c) = (ids[0].as_str(), ids[1].as_str(), ids[2].as_str());
    let mirrors = |shard: u32, x: &str, y: &str| {
        format!("agent='{x}:system.t_s{shard}|{y}:system.t_s{shard}[retry_count=2,ha_strategy=noerrors]'")
    };
    let mut agents = [
        mirrors(0, a, c),
        mirrors(1, a, b),
        mirrors(3, a, b),
        mirrors(2, b, c),
    ];
    agents.sort();
    let expected_wrapper = format!("type='shard' {}", agents.join(" "));
    for node in nodes.iter() {
        let mut conn = conn(node).await;
        assert_eq!(
            rows(&mut conn, "SHOW TABLES").await,
            vec![vec!["t".to_string(), "shard".to_string()]]
        );
        let ddl = rows(&mut conn, "SHOW CREATE TABLE t OPTION force=1").await;
        assert!(
            ddl[0][1].ends_with(&expected_wrapper),
            "{}: {}",
            node.node_id(),
            ddl[0][1]
        );
    }
    let by_node = |id: &str| nodes.iter().find(|n| n.node_id() == id).expect("node");
    let expect_clusters = [
        (
            a,
            vec![
                (internal_cluster(&[a, c]), "system.t_s0"),
                (internal_cluster(&[a, b]), "system.t_s1,system.t_s3"),
            ],
        ),
        (
            b,
            vec![
                (internal_cluster(&[a, b]), "system.t_s1,system.t_s3"),
                (internal_cluster(&[b, c]), "system.t_s2"),
            ],
        ),
        (
            c,
            vec![
                (internal_cluster(&[a, c]), "system.t_s0"),
                (internal_cluster(&[b, c]), "system.t_s2"),
            ],
        ),
    ];
    for (id, clusters) in &expect_clusters {
        let got = cluster_indexes(by_node(id)).await;
        for (name, tables) in clusters {
            let counter = format!("cluster_{name}_indexes");
            assert!(
                got.iter().any(|(k, v)| *k == counter && v == tables),
                "{id}: {counter}={tables} missing in {got:?}"
            );
        }
        // The metadata tables, in the order PHP Buddy attaches them (users'
        // scripts compare this text).
        assert!(
            got.contains(&(
                "cluster_c_indexes".to_string(),
                "system.sharding_state,system.sharding_table,system.sharding_queue".to_string()
            )),
            "{id}: {got:?}"
        );
    }

    insert_docs(&mut first, "t", 1..=10_000).await;
    for node in nodes.iter() {
        let mut conn = conn(node).await;
        assert_eq!(
            count(&mut conn, "SELECT COUNT(*) FROM t").await,
            10_000,
            "{}",
            node.node_id()
        );
    }

    nodes[2].kill();
    for node in &nodes[..2] {
        let mut conn = conn(node).await;
        assert_eq!(
            count(&mut conn, "SELECT COUNT(*) FROM t").await,
            10_000,
            "{}",
            node.node_id()
        );
    }
    // The health gate keeps the table while a member is down.
    wait_until(
        "the dead node to leave the view",
        Duration::from_secs(10),
        async || {
            let mut conn = conn(&nodes[0]).await;
            rows(&mut conn, "SHOW STATUS LIKE 'cluster_c_size'").await[0][1] == "2"
        },
    )
    .await;
    let refused = error(&mut first, "DROP TABLE c:t").await;
    assert_eq!(
        refused,
        "cluster 'c' has unreachable members (2 of 3 alive): refusing to DROP — retry when the cluster is fully synced"
    );
    assert_eq!(count(&mut first, "SELECT COUNT(*) FROM t").await, 10_000);

    nodes[2].restart().expect("restart");
    wait_until(
        "the restarted node to sync",
        Duration::from_secs(20),
        async || {
            let mut conn = conn(&nodes[2]).await;
            let state = rows(&mut conn, "SHOW STATUS LIKE 'cluster_c_node_state'").await;
            state.first().is_some_and(|r| r[1] == "synced")
        },
    )
    .await;
    let mut third = conn(&nodes[2]).await;
    assert_eq!(count(&mut third, "SELECT COUNT(*) FROM t").await, 10_000);
    wait_until("a healthy cluster", Duration::from_secs(20), async || {
        let mut conn = conn(&nodes[0]).await;
        rows(&mut conn, "SHOW STATUS LIKE 'cluster_c_size'").await[0][1] == "3"
    })
    .await;

    exec(&mut first, "DROP TABLE c:t").await;
    for node in nodes.iter() {
        let mut conn = conn(node).await;
        assert!(
            column(&mut conn, "SHOW TABLES").await.is_empty(),
            "{}",
            node.node_id()
        );
    }
    wait_for_no_traces(&nodes, &["t"]).await;
    for node in nodes.iter() {
        let mut conn = conn(node).await;
        assert_eq!(
            traces_of(&mut conn, "t").await,
            Vec::<String>::new(),
            "{}",
            node.node_id()
        );
        let clusters = cluster_indexes(node).await;
        assert!(
            clusters.iter().all(|(k, _)| k == "cluster_c_indexes"),
            "{}: internal clusters left: {clusters:?}",
            node.node_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_errors_are_buddys_and_leave_no_trace() {
    let mut nodes = cluster_of_three().await;
    let mut first = conn(&nodes[0]).await;
    let cases = [
        (
            "create table c:t5 (id bigint) shards='2' rf='4'",
            "The node count (3) is lower than replication factor (4)".to_string(),
        ),
        (
            "create table c:t5 (id bigint) shards='2' rf='10'",
            "The node count (3) is lower than replication factor (10)".to_string(),
        ),
        (
            "create table nope:t5 (id bigint) shards='2' rf='2'",
            "Cluster 'nope' does not exist".to_string(),
        ),
    ];
    for (sql, want) in &cases {
        assert_eq!(&error(&mut first, sql).await, want, "{sql}");
        assert_eq!(
            traces_of(&mut first, "t5").await,
            Vec::<String>::new(),
            "{sql}"
        );
    }
    assert!(column(&mut first, "SHOW TABLES FROM system")
        .await
        .is_empty());

    exec(
        &mut first,
        "CREATE TABLE c:t6 (id bigint) shards='2' rf='2'",
    )
    .await;
    assert_eq!(
        error(&mut first, "create table local_on_cluster (id bigint) shards='2' rf='1'").await,
        "Local sharded tables cannot be created on a node that is part of a replication cluster ('c'). \
         Use CREATE TABLE c:local_on_cluster instead."
    );
    assert_eq!(
        error(&mut first, "drop table t6").await,
        "table 't6' belongs to cluster 'c': use DROP TABLE c:t6"
    );
    exec(&mut first, "CREATE TABLE loose_rt (title text)").await;
    assert_eq!(
        error(&mut first, "drop table c:loose_rt").await,
        "table 'loose_rt' is not in cluster 'c': it is a plain table of this node, use DROP TABLE loose_rt"
    );
    exec(&mut first, "DROP TABLE loose_rt").await;
    exec(&mut first, "CREATE TABLE plain_rt (title text)").await;
    exec(&mut first, "ALTER CLUSTER c ADD plain_rt").await;
    assert_eq!(
        error(&mut first, "drop table c:plain_rt").await,
        "table 'plain_rt' is a regular table in cluster 'c': use ALTER CLUSTER c DROP plain_rt to remove it from \
         the cluster, then DROP TABLE plain_rt"
    );
    assert_eq!(
        error(
            &mut first,
            "create table c:t6 (id bigint) shards='2' rf='2'"
        )
        .await,
        "table 't6': CREATE TABLE failed: table 't6' already exists"
    );

    // Quorum lost: the survivor refuses, and keeps everything.
    nodes[1].kill();
    nodes[2].kill();
    wait_until(
        "the survivor to lose quorum",
        Duration::from_secs(15),
        async || {
            let mut conn = conn(&nodes[0]).await;
            rows(&mut conn, "SHOW STATUS LIKE 'cluster_c_status'").await[0][1] == "non-primary"
        },
    )
    .await;
    assert_eq!(
        error(&mut first, "DROP TABLE c:t6").await,
        "cluster 'c' is not in primary view (status='non-primary'): refusing to DROP — retry when the cluster is \
         fully synced"
    );
    assert_eq!(
        column(&mut first, "SHOW TABLES").await,
        vec!["plain_rt".to_string(), "t6".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_of_one_is_too_small() {
    let node = start(1, &[]);
    let mut c = conn(&node).await;
    exec(&mut c, "CREATE CLUSTER single_node").await;
    assert_eq!(
        error(
            &mut c,
            "create table single_node:t (id bigint) shards='2' rf='1'"
        )
        .await,
        "The node count for cluster single_node is too low: 1. You can create local sharded table."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_step_rolls_the_whole_group_back_on_every_node() {
    let nodes = cluster_of_three().await;
    let mut ids: Vec<String> = nodes.iter().map(SimNode::node_id).collect();
    ids.sort();
    // With A < B < C, shard 2 lives on {B,C}. A table of that name already
    // on B must make the CREATE fail, neither adopted nor overwritten by
    // the copy the replica set's cluster would ship there.
    let b = nodes
        .iter()
        .find(|n| n.node_id() == ids[1])
        .expect("node B");
    let mut on_b = conn(b).await;
    exec(&mut on_b, "CREATE TABLE system.t_s2 (foreign_data text)").await;
    exec(
        &mut on_b,
        "INSERT INTO system.t_s2 (id, foreign_data) VALUES (1, 'keep me')",
    )
    .await;

    let mut first = conn(&nodes[0]).await;
    let failure = error(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='4' rf='2'",
    )
    .await;
    assert_eq!(
        failure,
        format!(
            "table 't': CREATE TABLE failed on node {}: a table for shard 2 already exists there and was \
             not made by shardbuddy; remove it (SHOW TABLES FROM system lists it) and retry",
            ids[1]
        )
    );
    for node in nodes.iter() {
        let mut conn = conn(node).await;
        assert!(
            column(&mut conn, "SHOW TABLES").await.is_empty(),
            "{}",
            node.node_id()
        );
        let left: Vec<String> = traces_of(&mut conn, "t")
            .await
            .into_iter()
            .filter(|t| !(node.node_id() == ids[1] && t == "system.t_s2"))
            .collect();
        assert_eq!(left, Vec::<String>::new(), "{}", node.node_id());
        let clusters = cluster_indexes(node).await;
        assert!(
            clusters.iter().all(|(k, _)| k == "cluster_c_indexes"),
            "{}: internal clusters left: {clusters:?}",
            node.node_id()
        );
    }
    // The table that was there before is untouched.
    assert_eq!(
        column(&mut on_b, "SELECT foreign_data FROM system.t_s2").await,
        vec!["keep me".to_string()]
    );

    // A conflicting public table on the last node: the wrappers are the last
    // steps, so everything before them is undone.
    let c = nodes
        .iter()
        .find(|n| n.node_id() == ids[2])
        .expect("node C");
    let mut on_c = conn(c).await;
    exec(&mut on_c, "CREATE TABLE u (title text)").await;
    let a = nodes
        .iter()
        .find(|n| n.node_id() == ids[0])
        .expect("node A");
    let mut on_a = conn(a).await;
    let failure = error(
        &mut on_a,
        "CREATE TABLE c:u (id bigint, title text) shards='3' rf='2'",
    )
    .await;
    assert!(
        failure
            == format!(
                "table 'u': CREATE TABLE failed on node {}: a table named 'u' already exists there and is \
                 not shardbuddy's; drop or rename it there and retry",
                ids[2]
            ),
        "{failure}"
    );
    for node in nodes.iter() {
        let mut conn = conn(node).await;
        assert_eq!(
            traces_of(&mut conn, "u").await,
            Vec::<String>::new(),
            "{}",
            node.node_id()
        );
    }
    assert_eq!(
        column(&mut on_c, "SHOW TABLES").await,
        vec!["u".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_master_takes_over_and_serves_creates() {
    let mut nodes = cluster_of_three().await;
    let mut first = conn(&nodes[0]).await;
    exec(&mut first, "CREATE TABLE c:t (id bigint) shards='2' rf='2'").await;
    let master = rows(&mut first, "SHOW SHARDING MASTER").await;
    assert_eq!(master, vec![vec![nodes[0].node_id(), "active".to_string()]]);
    assert!(nodes[0].log_text().contains("becoming master"));
    for node in &nodes[1..] {
        assert!(
            !node.log_text().contains("becoming master"),
            "{}",
            node.node_id()
        );
    }

    assert_eq!(lease(&mut first).await.1, 1);

    nodes[0].kill();
    wait_until(
        "a survivor to become master",
        Duration::from_secs(20),
        async || {
            nodes[1..]
                .iter()
                .any(|n| n.log_text().contains("becoming master"))
        },
    )
    .await;
    let mut survivor = conn(&nodes[1]).await;
    // Every takeover raises the epoch: epoch 2 after the new master has
    // renewed its lease for longer than any rival waits before taking over
    // (its rank times the lease timeout: 2 × 1.5 s, at 200 ms a beat) means
    // exactly one takeover ever happened.
    let (holder, epoch, beat) = lease(&mut survivor).await;
    wait_until(
        "the new master to renew its lease 20 times",
        Duration::from_secs(30),
        async || lease(&mut survivor).await.2 >= beat + 20,
    )
    .await;
    let (still_holder, still_epoch, _) = lease(&mut survivor).await;
    assert_eq!((epoch, still_epoch), (2, 2));
    assert_eq!(still_holder, holder);
    let new_masters: Vec<String> = nodes[1..]
        .iter()
        .filter(|n| n.log_text().contains("becoming master"))
        .map(SimNode::node_id)
        .collect();
    assert_eq!(new_masters, vec![holder]);
    assert_eq!(
        rows(&mut survivor, "SHOW SHARDING MASTER").await,
        vec![vec![new_masters[0].clone(), "active".to_string()]]
    );

    exec(
        &mut survivor,
        "CREATE TABLE c:after (id bigint) shards='2' rf='2'",
    )
    .await;
    for node in &nodes[1..] {
        let mut conn = conn(node).await;
        assert!(
            column(&mut conn, "SHOW TABLES")
                .await
                .contains(&"after".to_string()),
            "{}",
            node.node_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_that_times_out_is_undone() {
    // The third node's helper looks at its queue only every ten minutes.
    let nodes = cluster_of_three_with(&[("SHARDBUDDY_POLL_MS", "600000")]).await;
    let mut first = conn(&nodes[0]).await;
    let started = Instant::now();
    assert_eq!(
        error(
            &mut first,
            "CREATE TABLE c:slow (id bigint) shards='3' rf='2' timeout='1'"
        )
        .await,
        "Waiting timeout exceeded."
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for node in nodes.iter() {
        let mut conn = conn(node).await;
        assert!(
            column(&mut conn, "SHOW TABLES").await.is_empty(),
            "{}",
            node.node_id()
        );
        assert_eq!(
            traces_of(&mut conn, "slow").await,
            Vec::<String>::new(),
            "{}",
            node.node_id()
        );
        let clusters = cluster_indexes(node).await;
        assert!(
            clusters.iter().all(|(k, _)| k == "cluster_c_indexes"),
            "{}: internal clusters left: {clusters:?}",
            node.node_id()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_takes_statements_and_concurrent_creates_all_finish() {
    let nodes = cluster_of_three().await;
    let mut first = conn(&nodes[0]).await;
    exec(&mut first, "CREATE TABLE c:a (id bigint) shards='2' rf='2'").await;
    // The master is the first node; the others hand their statements to it.
    let mut tasks = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        let url = node.mysql_url();
        tasks.push(tokio::spawn(async move {
            let mut c = mysql_async::Conn::new(mysql_async::Opts::from_url(&url).unwrap())
                .await
                .unwrap();
            exec(
                &mut c,
                &format!("CREATE TABLE c:b{i} (id bigint, title text) shards='3' rf='2'"),
            )
            .await;
            insert_docs(&mut c, &format!("b{i}"), 1..=100).await;
        }));
    }
    for task in tasks {
        task.await.expect("create task");
    }
    for node in nodes.iter() {
        let mut conn = conn(node).await;
        for i in 0..3 {
            assert_eq!(
                count(&mut conn, &format!("SELECT COUNT(*) FROM b{i}")).await,
                100,
                "{}",
                node.node_id()
            );
        }
    }
    let mut third = conn(&nodes[2]).await;
    for i in 0..3 {
        exec(&mut third, &format!("DROP TABLE c:b{i}")).await;
    }
    let mut second = conn(&nodes[1]).await;
    exec(&mut second, "DROP TABLE c:a").await;
    wait_for_no_traces(&nodes, &["a", "b0", "b1", "b2"]).await;
    for node in nodes.iter() {
        let mut conn = conn(node).await;
        assert!(
            column(&mut conn, "SHOW TABLES").await.is_empty(),
            "{}",
            node.node_id()
        );
        for t in ["a", "b0", "b1", "b2"] {
            assert_eq!(
                traces_of(&mut conn, t).await,
                Vec::<String>::new(),
                "{} {t}",
                node.node_id()
            );
        }
    }
}

/// DROP answers once the table is gone, while the replication clusters it
/// emptied are still being deleted (about 5 s each on real searchd): a
/// CREATE of the same name sent right after it is accepted, waits for that
/// deletion inside, and makes the table anew.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_dropped_and_created_again_at_once_is_made_anew() {
    let nodes = cluster_of(2, &[("MANTICORE_SIM_PROFILE", "realistic")]).await;
    let mut c = conn(&nodes[0]).await;
    let create = "CREATE TABLE c:t (id bigint, title text) shards='2' rf='2'";
    exec(&mut c, create).await;
    insert_docs(&mut c, "t", 1..=20).await;
    exec(&mut c, "DROP TABLE c:t").await;
    let since = Instant::now();
    exec(&mut c, create).await;
    println!("CREATE after DROP answered in {:?}", since.elapsed());
    insert_docs(&mut c, "t", 100..=104).await;
    assert_eq!(count(&mut c, "SELECT COUNT(*) FROM t").await, 5);
    assert!(settled(&copies(&mut c, "t").await, 2, 2, 2));
}
