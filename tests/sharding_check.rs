//! `shardbuddy check` on a real (simulated) three-node cluster: a clean
//! cluster passes; a hand-planted orphan shard table, a missing copy and a
//! stale wrapper agent are each reported in one line, with a non-zero exit.

mod sharding_support;

use std::process::Command;

use manticore_sim::testkit::SimNode;
use sharding_support::*;

/// Runs `shardbuddy check --node <node's HTTP listener>`: (exit code,
/// stdout lines, stderr).
fn check(node: &SimNode) -> (i32, Vec<String>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_shardbuddy"))
        .args([
            "check",
            "--node",
            &format!("127.0.0.1:{}", node.ports().http),
        ])
        .output()
        .expect("run shardbuddy check");
    let stdout = String::from_utf8_lossy(&output.stdout);
    (
        output.status.code().unwrap_or(-1),
        stdout.lines().map(str::to_string).collect(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Runs `sql` on `node` over HTTP as a plain client; panics on an error.
fn raw(node: &SimNode, sql: &str) {
    let (status, body) = node.raw_sql(sql).expect("http");
    assert!(
        status == 200 && !body.contains("\"error\":\"") || body.contains("\"error\":\"\""),
        "{sql}: {status} {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_each_planted_fault_in_one_line_and_passes_a_clean_cluster() {
    let nodes = cluster_of(3, &[]).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='2' rf='2'",
    )
    .await;
    exec(
        &mut first,
        "CREATE TABLE c:u (id bigint, title text) shards='3' rf='1'",
    )
    .await;
    insert_docs(&mut first, "t", 1..=50).await;
    insert_docs(&mut first, "u", 1..=50).await;

    let (code, lines, stderr) = check(&nodes[1]);
    assert_eq!(
        (code, lines.clone()),
        (0, vec![]),
        "clean cluster: {stderr}"
    );
    assert!(
        stderr.contains("2 table(s) on 3 node(s): consistent"),
        "{stderr}"
    );

    // An orphan: a shard table of a table no placement knows, on node 3.
    raw(
        &nodes[2],
        "CREATE TABLE system.ghost_s0 (id bigint, title text)",
    );
    // A missing copy: a copy of `u` (RF 1, so in no cluster) goes away.
    let holder_of_u = copies(&mut first, "u").await[0].clone();
    let holder = nodes
        .iter()
        .find(|n| n.node_id() == holder_of_u.node)
        .expect("holder of u");
    raw(
        holder,
        &format!("DROP TABLE system.u_s{} OPTION force=1", holder_of_u.shard),
    );
    // A stale wrapper agent: node 2's `t` sends shard 0 to node 1 only.
    let (one, two) = (nodes[0].node_id(), nodes[1].node_id());
    raw(&nodes[1], "DROP TABLE t OPTION force=1");
    let shard1 = copies(&mut first, "t")
        .await
        .into_iter()
        .filter(|c| c.shard == 1)
        .map(|c| format!("{}:system.t_s1", c.node))
        .collect::<Vec<_>>()
        .join("|");
    raw(
        &nodes[1],
        &format!(
            "CREATE TABLE t (id bigint, title text) type='shard' agent='{one}:system.t_s0[retry_count=2,ha_strategy=noerrors]' agent='{shard1}[retry_count=2,ha_strategy=noerrors]'"
        ),
    );

    let (code, lines, stderr) = check(&nodes[0]);
    assert_eq!(code, 1, "{lines:?} {stderr}");
    let holders_of_t0: Vec<String> = {
        let mut h: Vec<String> = copies(&mut first, "t")
            .await
            .into_iter()
            .filter(|c| c.shard == 0)
            .map(|c| c.node)
            .collect();
        h.sort();
        h
    };
    assert_eq!(
        lines,
        [
            format!(
                "missing copy: shard {} of table 'u' is placed on {}, which has no system.u_s{}",
                holder_of_u.shard, holder_of_u.node, holder_of_u.shard
            ),
            format!(
                "orphan shard table: {} holds system.ghost_s0, which the placement does not put there",
                nodes[2].node_id()
            ),
            format!(
                "stale wrapper: table 't' on {two} sends shard 0 to {one} but it is held by {}",
                holders_of_t0.join(", ")
            ),
        ],
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_holds_nothing_and_is_down_is_only_noted() {
    let mut nodes = cluster_of(3, &[]).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='1' rf='2'",
    )
    .await;
    let holders: Vec<String> = copies(&mut first, "t")
        .await
        .into_iter()
        .map(|c| c.node)
        .collect();
    let idle = nodes
        .iter()
        .position(|n| !holders.contains(&n.node_id()))
        .expect("one of three nodes holds no copy");
    let entry = nodes
        .iter()
        .position(|n| holders.contains(&n.node_id()))
        .unwrap();
    let idle_id = nodes[idle].node_id();
    nodes.0[idle].kill();
    let (code, lines, stderr) = check(&nodes[entry]);
    assert_eq!((code, lines), (0, vec![]), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "note: node {idle_id} holds no copy and could not be read: "
        )),
        "{stderr}"
    );
}

/// A node cut off from the quorum keeps its old metadata: the check through
/// it says so and judges nothing (exit 2); through a node of the primary
/// component it reports as usual, and through the cut-off node again once
/// it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_through_a_node_whose_metadata_is_not_current_refuses_to_judge() {
    let nodes = cluster_of(3, &[]).await;
    let mut first = conn(&nodes[0]).await;
    exec(
        &mut first,
        "CREATE TABLE c:t (id bigint, title text) shards='2' rf='2'",
    )
    .await;
    manticore_sim::testkit::partition(&[&[&nodes[0], &nodes[1]], &[&nodes[2]]]).expect("cut");
    let mut cut_off = conn(&nodes[2]).await;
    wait_until(
        "node 2 to see its cluster non-primary",
        std::time::Duration::from_secs(30),
        async || {
            rows(&mut cut_off, "SHOW STATUS LIKE 'cluster_c_status'")
                .await
                .first()
                .is_some_and(|r| r[1] == "non-primary")
        },
    )
    .await;
    let (code, lines, stderr) = check(&nodes[2]);
    assert_eq!((code, lines), (2, vec![]), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "the sharding metadata on {} is not current (it is not a synced member of a primary \
             component of cluster 'c'): run the check through another node, or again once this \
             one has synced",
            nodes[2].node_id()
        )),
        "{stderr}"
    );
    let all: Vec<&SimNode> = nodes.iter().collect();
    manticore_sim::testkit::heal(&all).expect("heal");
    wait_until(
        "the check through node 2 to pass",
        std::time::Duration::from_secs(60),
        async || check(&nodes[2]).0 == 0,
    )
    .await;
}
