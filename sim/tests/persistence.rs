//! Tables and acknowledged rows survive `kill -9` and a restart with the same configuration.

mod common;

use common::{conn, exec, rows, s};
use manticore_sim::testkit::{NodeOptions, SimNode};

#[tokio::test]
async fn every_acknowledged_row_survives_kill_9() {
    let mut node = SimNode::start(1, NodeOptions::default()).unwrap();
    {
        let mut c = conn(&node).await;
        exec(
            &mut c,
            "CREATE TABLE t (title text, n int, tags multi, j json)",
        )
        .await;
        for batch in 0..10 {
            let values: Vec<String> = (1..=1000)
                .map(|i| {
                    let id = batch * 1000 + i;
                    format!("({id}, 'doc {id}', {id}, ({i},{batch}), '{{\"b\":{batch}}}')")
                })
                .collect();
            let n = exec(
                &mut c,
                &format!(
                    "INSERT INTO t (id, title, n, tags, j) VALUES {}",
                    values.join(", ")
                ),
            )
            .await;
            assert_eq!(n, 1000);
        }
        exec(&mut c, "UPDATE t SET n = 0 WHERE id = 5").await;
        exec(&mut c, "DELETE FROM t WHERE id = 6").await;
        exec(&mut c, "CREATE TABLE gone (title text)").await;
        exec(&mut c, "DROP TABLE gone").await;
        exec(&mut c, "INSERT INTO t (id, title, n) VALUES (6, 'back', 6)").await;
    }
    node.kill();
    node.launch().unwrap();
    let mut c = conn(&node).await;
    assert_eq!(
        rows(&mut c, "SELECT COUNT(*) FROM t").await,
        vec![s(&["10000"])]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT id, n, tags, j.b FROM t WHERE id IN (5, 6, 9999) ORDER BY id ASC"
        )
        .await,
        vec![
            s(&["5", "0", "0,5", "0"]),
            s(&["6", "6", "", "NULL"]),
            s(&["9999", "9999", "9,999", "9"]),
        ]
    );
    assert_eq!(rows(&mut c, "SHOW TABLES").await, vec![s(&["t", "rt"])]);
}

#[tokio::test]
async fn snapshots_compact_the_log() {
    let options = NodeOptions {
        sim_lines: vec!["wal_compact_records = 7".to_string()],
        ..NodeOptions::default()
    };
    let mut node = SimNode::start(1, options).unwrap();
    {
        let mut c = conn(&node).await;
        exec(&mut c, "CREATE TABLE t (n int)").await;
        for i in 1..=20 {
            exec(&mut c, &format!("INSERT INTO t (id, n) VALUES ({i}, {i})")).await;
        }
        exec(&mut c, "DELETE FROM t WHERE id > 15").await;
    }
    assert!(node.data_dir().join("sim.snapshot").exists());
    node.kill();
    node.launch().unwrap();
    let mut c = conn(&node).await;
    assert_eq!(
        rows(&mut c, "SELECT COUNT(*) FROM t").await,
        vec![s(&["15"])]
    );
    assert_eq!(
        rows(&mut c, "SELECT id FROM t ORDER BY id DESC LIMIT 1").await,
        vec![s(&["15"])]
    );
}
