//! `SHARDBUDDY_LOG_FORMAT=json`: the helper's log lines reach searchd's log
//! as one JSON object each, with the table and group they are about; the
//! handshake searchd waits for is unchanged.

mod sharding_support;

use std::time::Duration;

use sharding_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_carry_table_and_group_fields() {
    let node = Nodes(vec![start(1, &[("SHARDBUDDY_LOG_FORMAT", "json")])]);
    let mut c = conn(&node[0]).await;
    exec(
        &mut c,
        "CREATE TABLE t (id bigint, title text) shards='2' rf='1'",
    )
    .await;
    wait_for_log(&node[0], "operation done: table t", Duration::from_secs(10));
    let log = node[0].log_text();
    assert!(log.contains("[BUDDY] started"), "{log}");
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| l.split_once("[BUDDY] ").map(|(_, rest)| rest))
        .filter(|rest| rest.starts_with('{'))
        .map(|rest| serde_json::from_str(rest).unwrap_or_else(|e| panic!("{rest}: {e}")))
        .collect();
    let done = events
        .iter()
        .find(|e| {
            e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("operation done: table t"))
        })
        .unwrap_or_else(|| panic!("no JSON line for the finished operation in\n{log}"));
    assert_eq!(done["level"], "INFO");
    assert_eq!(done["table"], "t");
    assert!(
        done["group"]
            .as_str()
            .is_some_and(|g| g.starts_with("shard_create_t_")),
        "{done}"
    );
    assert!(events
        .iter()
        .any(|e| e["message"] == "becoming master" && e["node"].is_string()));
}
