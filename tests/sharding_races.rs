//! Statements that race on a three-node cluster, with each other or with
//! the death of the shardbuddy that received them: each must get a true
//! answer and leave the cluster as that answer says.

mod sharding_support;

use mysql_async::prelude::Queryable;
use sharding_support::*;

/// Defect 1: a concurrent DROP broke an unrelated CREATE. Both tables have
/// one shard on all three nodes, so both use the same internal cluster;
/// when the DROP was queued first, it deleted that cluster under the CREATE,
/// which failed with `unknown cluster '<32 hex>'` (or, planned in the same
/// master step, succeeded with a shard no cluster replicates). Every round
/// drops the table made in the round before on node 2 while node 3 creates
/// the next one, with the CREATE sent a little later in each round.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn defect_1_a_concurrent_drop_does_not_break_an_unrelated_create() {
    let nodes = cluster_of(3, &[]).await;
    let mut first = conn(&nodes[0]).await;
    // The new table's name sorts before the old one's in even rounds and
    // after it in odd ones: the master plans waiting requests in name order.
    let name = |round: usize| format!("{}{round}", if round % 2 == 0 { "a" } else { "z" });
    const ROUNDS: usize = 6;
    exec(
        &mut first,
        &format!(
            "CREATE TABLE c:{} (id bigint, title text) shards='1' rf='3'",
            name(0)
        ),
    )
    .await;
    for round in 1..=ROUNDS {
        let (old, new) = (name(round - 1), name(round));
        let drop = tokio::spawn(run_on(nodes[1].mysql_url(), format!("DROP TABLE c:{old}")));
        // The DROP is sent first; the CREATE follows it by 0 to 10 ms.
        tokio::time::sleep(std::time::Duration::from_millis(2 * (round as u64 - 1))).await;
        let create = tokio::spawn(run_on(
            nodes[2].mysql_url(),
            format!("CREATE TABLE c:{new} (id bigint, title text) shards='1' rf='3'"),
        ));
        assert_eq!(
            drop.await.expect("drop task"),
            Ok(()),
            "round {round}: DROP"
        );
        assert_eq!(
            create.await.expect("create task"),
            Ok(()),
            "round {round}: CREATE"
        );
        insert_docs(&mut first, &new, 1..=10).await;
        for node in nodes.iter() {
            let mut c = conn(node).await;
            assert_eq!(
                count(&mut c, &format!("SELECT COUNT(*) FROM {new}")).await,
                10,
                "round {round}: {new} on {}",
                node.node_id()
            );
            assert_eq!(
                traces_of(&mut c, &old).await,
                Vec::<String>::new(),
                "round {round}: {old} on {}",
                node.node_id()
            );
            // The new shard is replicated, and no internal cluster is left
            // without a table.
            let clusters = rows(&mut c, "SHOW STATUS LIKE 'cluster_%_indexes'").await;
            let shard = format!("system.{new}_s0");
            assert!(
                clusters.iter().any(|r| r[1].split(',').any(|t| t == shard)),
                "round {round}: no cluster holds {shard} on {}: {clusters:?}",
                node.node_id()
            );
            assert!(
                clusters
                    .iter()
                    .all(|r| r[0] == "cluster_c_indexes" || !r[1].is_empty()),
                "round {round}: an empty internal cluster on {}: {clusters:?}",
                node.node_id()
            );
        }
    }
}

/// Defect 2: an error answer that was not true. The shardbuddy of the node a
/// client sent `CREATE TABLE c:t …` to is killed (`kill -9`) 10 to 120 ms in:
/// the client gets searchd's own error (`P03: syntax error …`), so the
/// CREATE must not take effect unless it was done before the kill, on a
/// non-master node and on the master.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn defect_2_a_create_whose_shardbuddy_is_killed_does_not_take_effect() {
    let nodes = cluster_of(3, &[]).await;
    for (round, (node, delay_ms)) in [(1, 10), (1, 40), (1, 80), (1, 120), (0, 20), (0, 100)]
        .into_iter()
        .enumerate()
    {
        let node = &nodes[node];
        let helper = helper_pid(node).expect("the node runs its shardbuddy");
        let restarts = node.log_text().matches("[BUDDY] started").count();
        let table = format!("k{round}");
        let create = tokio::spawn(run_on(
            node.mysql_url(),
            format!("CREATE TABLE c:{table} (id bigint, title text) shards='2' rf='2'"),
        ));
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
        kill_9(helper);
        let answer = create.await.expect("create task");
        eprintln!("round {round}: killed after {delay_ms} ms, the client got {answer:?}");
        wait_for_log_count(node, "[BUDDY] started", restarts + 1);
        let mut c = conn(node).await;
        match &answer {
            // Done before the kill: it must be there.
            Ok(()) => insert_docs(&mut c, &table, 1..=10).await,
            // searchd's error says nothing of the outcome (README: a
            // CREATE whose shardbuddy stops just after it was done stays
            // done). Either nothing is left, or the table is whole.
            Err(_) => {
                let mut whole = false;
                wait_until(
                    &format!("round {round}: no trace of {table}, or all of it ({answer:?})"),
                    std::time::Duration::from_secs(20),
                    async || {
                        let mut clean = true;
                        for n in nodes.iter() {
                            let mut c = conn(n).await;
                            let left: Vec<String> = traces_of(&mut c, &table)
                                .await
                                .into_iter()
                                .filter(|t| *t != format!("table:{table}"))
                                .collect();
                            let tables = column(&mut c, "SHOW TABLES").await;
                            clean &= left.is_empty() && !tables.contains(&table);
                        }
                        // Whole: placed everywhere and the CREATE finished
                        // (its placement is written when it is planned, so
                        // copies alone show a CREATE that may still be undone).
                        if clean {
                            return true;
                        }
                        let mut c = conn(&nodes[0]).await;
                        // A helper killed at once may not have set the
                        // metadata tables up: no state, then.
                        let state: Vec<String> = c
                            .query(format!(
                                "SELECT value FROM system.sharding_state WHERE key = 'table:{table}'"
                            ))
                            .await
                            .unwrap_or_else(|e| {
                                assert!(
                                    e.to_string().contains("unknown local table(s) 'system.sharding_state'"),
                                    "{e}"
                                );
                                Vec::new()
                            });
                        // Buddy's shape: the state is a one-element array.
                        let done = state.iter().any(|v| {
                            serde_json::from_str::<serde_json::Value>(v).is_ok_and(|v| {
                                let v = if v.is_array() { &v[0] } else { &v };
                                v["status"] == "done" && v["type"] == "create"
                            })
                        });
                        whole = done && settled(&copies(&mut c, &table).await, 2, 2, 3);
                        clean || whole
                    },
                )
                .await;
                if whole {
                    eprintln!("round {round}: the CREATE was done before the kill");
                    insert_docs(&mut c, &table, 1..=10).await;
                }
            }
        }
    }
}
