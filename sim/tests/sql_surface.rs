//! The SQL surface over MySQL (mysql_async) and HTTP, with searchd's outputs and error texts.

mod common;

use common::{columns, conn, error, exec, rows, s};
use manticore_sim::testkit::{http_post, NodeOptions, SimNode};

#[tokio::test]
async fn tables_types_and_documents() {
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    let mut c = conn(&node).await;

    assert!(rows(&mut c, "SHOW TABLES").await.is_empty());
    let (code, msg) = error(&mut c, "CREATE TABLE types (title text, v float_vector knn_type='hnsw' knn_dims='4' hnsw_similarity='l2')").await;
    assert_eq!(
        (code, msg.as_str()),
        (1064, "error adding table 'types': knn library not loaded")
    );
    exec(&mut c, "CREATE TABLE types (title text, s string, i integer, i2 int, b bigint, f float, bo bool, ts timestamp, m multi, m64 multi64, j json)").await;
    exec(
        &mut c,
        "CREATE TABLE infix (title text, s string) min_infix_len='3'",
    )
    .await;
    exec(&mut c, "CREATE TABLE IF NOT EXISTS types (title text)").await;
    let cases = [
        ("CREATE TABLE col (title text, a int) engine='columnar'", 1064, "error adding table 'col': columnar library not loaded"),
        ("CREATE TABLE types (title text)", 1064, "table 'types': CREATE TABLE failed: table 'types' already exists"),
        ("CREATE TABLE bad_type (x varchar)", 1064, "P03: unknown column type 'varchar' near ')'"),
        ("DESC nope", 1146, "no such table 'nope'"),
        ("SHOW CREATE TABLE nope", 1146, "no such table 'nope'"),
        ("CREATE TABLE other.x (title text)", 1064, "P03: unexpected db 'other', only 'system' allowed near 'x (title text)'"),
        ("CREATE TABLE t (id bigint) shards='2' rf='1'", 1064, "table 't': CREATE TABLE failed: table 't': CREATE TABLE failed: 'shards' and 'rf' options require Buddy"),
        ("CREATE TABLE t shards='-1' rf='1'", 1064, "table 't': CREATE TABLE failed: table 't': CREATE TABLE failed: negative 'shards' option is not allowed"),
        ("CREATE TABLE c:t (id bigint) shards='2' rf='1'", 1064, "P03: syntax error, unexpected invalid token, expecting $end near ':t (id bigint) shards='2' rf='1''"),
        ("DROP TABLE c:t", 1064, "P03: syntax error, unexpected invalid token, expecting $end near ':t'"),
        ("SHOW SHARDING STATUS", 1064, "P01: syntax error, unexpected identifier, expecting VARIABLES near 'SHARDING STATUS'"),
        ("SELEC * FROM types", 1064, "P02: syntax error, unexpected identifier near 'SELEC * FROM types'"),
        ("SELECT * FROM missing", 1064, "unknown local table(s) 'missing' in search request"),
        ("TRUNCATE TABLE nope", 1064, "TRUNCATE RTINDEX requires an existing RT table"),
        ("FLUSH RAMCHUNK nope", 1064, "FLUSH RAMCHUNK requires an existing RT table"),
        ("OPTIMIZE TABLE nope", 1064, "OPTIMIZE TABLE requires an existing RT, distributed, or shard table"),
        ("ALTER TABLE nope", 1064, "table 'nope' is not found, or not real-time"),
        ("DROP TABLE nope", 1064, "DROP TABLE failed: unknown table 'nope'"),
        ("SHOW CREATE TABLE system.sharding_state", 1064, "P01: syntax error, unexpected SUBKEY, expecting $end near '.sharding_state'"),
    ];
    for (sql, code, msg) in cases {
        assert_eq!(error(&mut c, sql).await, (code, msg.to_string()), "{sql}");
    }

    let desc = rows(&mut c, "DESC types").await;
    assert_eq!(desc[1], s(&["title", "text", "indexed stored"]));
    assert_eq!(
        desc.iter().map(|r| r[1].clone()).collect::<Vec<_>>(),
        s(&[
            "bigint",
            "text",
            "string",
            "uint",
            "uint",
            "bigint",
            "float",
            "bool",
            "timestamp",
            "mva",
            "mva64",
            "json"
        ])
    );
    let create = rows(&mut c, "SHOW CREATE TABLE infix").await;
    assert_eq!(
        create[0][1],
        "CREATE TABLE infix (\nid bigint,\ntitle text,\ns string attribute\n) min_infix_len='3'"
    );

    exec(&mut c, "INSERT INTO types (id, title, s, i, i2, b, f, bo, ts, m, m64, j) VALUES (1, 'hello world', 'alpha', 10, 1, 10000000000, 1.5, 1, 1700000000, (1,2,3), (10000000000,2), '{\"a\":1,\"arr\":[1,2,3]}'), (2, 'hello manticore', 'beta', 20, 2, 200, 2.5, 0, 1700000001, (3), (), '{\"a\":2,\"arr\":[4]}'), (3, 'foo bar', 'alphabet', 30, 3, 300, 3.5, 1, 1700000002, (), (5), '{\"a\":3}')").await;
    assert_eq!(exec(&mut c, "INSERT INTO types (id, title, s, i, j) VALUES (4, 'array json', 'gamma', 40, '[\"x\",\"y\"]'), (5, 'object array', 'delta', 50, '[{\"k\":1}]')").await, 2);
    assert_eq!(
        error(&mut c, "INSERT INTO types (id, title) VALUES (1, 'dup')").await,
        (1064, "duplicate id '1'".to_string())
    );
    assert_eq!(
        error(&mut c, "INSERT INTO types (id, nope) VALUES (6, 1)").await,
        (1064, "unknown column: 'nope'".to_string())
    );
    exec(&mut c, "INSERT INTO types (id, i2) VALUES (7, -1)").await;
    exec(
        &mut c,
        "REPLACE INTO types (id, title, s, i) VALUES (2, 'replaced doc', 'beta2', 21)",
    )
    .await;
    assert_eq!(
        exec(&mut c, "UPDATE types SET i = 11, m = (7,8) WHERE id = 1").await,
        1
    );
    assert_eq!(
        error(&mut c, "UPDATE types SET title = 'x' WHERE id = 1")
            .await
            .1,
        "table types: attribute 'title' can not be updated (full-text field)"
    );
    exec(&mut c, "DELETE FROM types WHERE id = 3").await;
    exec(&mut c, "DELETE FROM types WHERE id = 7").await;

    // Unordered results come out in searchd's heap-sorter order.
    let all = rows(&mut c, "SELECT * FROM types").await;
    assert_eq!(
        all.iter().map(|r| r[0].clone()).collect::<Vec<_>>(),
        s(&["4", "1", "2", "5"])
    );
    assert_eq!(
        all[1],
        s(&[
            "1",
            "hello world",
            "alpha",
            "11",
            "1",
            "10000000000",
            "1.500000",
            "1",
            "1700000000",
            "7,8",
            "2,10000000000",
            "{\"a\":1,\"arr\":[1,2,3]}"
        ])
    );
    assert_eq!(all[2][11], "NULL");
    let q = |sql: &'static str| sql;
    let expect: [(&str, Vec<Vec<String>>); 12] = [
        (
            q("SELECT id, s FROM types WHERE s = 'alpha'"),
            vec![s(&["1", "alpha"])],
        ),
        (
            q("SELECT id FROM types WHERE id != 1"),
            vec![s(&["4"]), s(&["2"]), s(&["5"])],
        ),
        (
            q("SELECT id FROM types WHERE id IN (1, 2, 99)"),
            vec![s(&["2"]), s(&["1"])],
        ),
        (
            q("SELECT id, b FROM types WHERE b > 150"),
            vec![s(&["1", "10000000000"])],
        ),
        (
            q("SELECT id, i, bo FROM types WHERE i > 5 AND bo = 1"),
            vec![s(&["1", "11", "1"])],
        ),
        (
            q("SELECT id, s FROM types WHERE REGEX(s, '^al')"),
            vec![s(&["1", "alpha"])],
        ),
        (
            q("SELECT id, i FROM types ORDER BY i DESC LIMIT 2"),
            vec![s(&["5", "50"]), s(&["4", "40"])],
        ),
        (
            q("SELECT id FROM types ORDER BY id ASC LIMIT 1, 2"),
            vec![s(&["2"]), s(&["4"])],
        ),
        (q("SELECT COUNT(*) AS cnt FROM types"), vec![s(&["4"])]),
        (
            q("SELECT bo, COUNT(*) FROM types GROUP BY bo"),
            vec![s(&["0", "3"]), s(&["1", "1"])],
        ),
        (
            q("SELECT id, j.a, j.arr[0] FROM types WHERE id IN (1, 4)"),
            vec![s(&["4", "NULL", "NULL"]), s(&["1", "1", "1"])],
        ),
        (
            q("SELECT id, j[0].k AS k FROM types WHERE id = 5"),
            vec![s(&["5", "1"])],
        ),
    ];
    for (sql, want) in expect {
        assert_eq!(rows(&mut c, sql).await, want, "{sql}");
    }
    assert_eq!(
        columns(&mut c, "SELECT COUNT(*) FROM types").await,
        s(&["count(*)"])
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT id, WEIGHT() FROM types WHERE MATCH('hello')"
        )
        .await,
        vec![s(&["1", "1557"])]
    );
    assert!(rows(
        &mut c,
        "SELECT id FROM types WHERE MATCH('@title manticore')"
    )
    .await
    .is_empty());
    exec(
        &mut c,
        "INSERT INTO infix (id, title, s) VALUES (1, 'hello', 'x')",
    )
    .await;
    assert_eq!(
        rows(&mut c, "SELECT id, title FROM infix WHERE MATCH('*ell*')").await,
        vec![s(&["1", "hello"])]
    );
    rows(&mut c, "SELECT id FROM types WHERE MATCH('hello')").await;
    let meta = rows(&mut c, "SHOW META").await;
    assert_eq!(meta[0], s(&["total", "1"]));
    assert_eq!(
        meta[4..],
        [
            s(&["keyword[0]", "hello"]),
            s(&["docs[0]", "2"]),
            s(&["hits[0]", "2"])
        ]
    );

    for ok in [
        "FLUSH RAMCHUNK types",
        "OPTIMIZE TABLE types",
        "OPTIMIZE TABLE types OPTION sync=1",
        "ALTER TABLE types",
        "ALTER TABLE types ADD COLUMN k int",
        "ALTER TABLE types DROP COLUMN k",
        "TRUNCATE TABLE types",
    ] {
        exec(&mut c, ok).await;
    }
    assert_eq!(
        rows(&mut c, "SELECT COUNT(*) FROM types").await,
        vec![s(&["0"])]
    );
    exec(&mut c, "CREATE TABLE system.x_s0 (title text)").await;
    assert_eq!(
        rows(&mut c, "SHOW TABLES FROM system").await,
        vec![s(&["system.x_s0", "rt"])]
    );
    assert_eq!(
        rows(&mut c, "SHOW TABLES LIKE 'ty%'").await,
        vec![s(&["types", "rt"])]
    );
    exec(&mut c, "DROP TABLE IF EXISTS system.x_s0").await;
    exec(&mut c, "DROP TABLE types OPTION force=1").await;
    exec(&mut c, "DROP TABLE IF EXISTS nope OPTION force=1").await;
    exec(&mut c, "CREATE TABLE rowwise2 LIKE infix").await;
    assert_eq!(
        rows(&mut c, "SHOW TABLES").await,
        vec![s(&["infix", "rt"]), s(&["rowwise2", "rt"])]
    );
}

#[tokio::test]
async fn system_table_statements_the_plugin_sends() {
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    let mut c = conn(&node).await;
    assert_eq!(
        error(&mut c, "DESC system.sharding_state").await,
        (1146, "no such table 'system.sharding_state'".to_string())
    );
    exec(
        &mut c,
        "CREATE TABLE system.sharding_state (`key` string, `value` json, `updated_at` timestamp)",
    )
    .await;
    exec(&mut c, "CREATE TABLE system.sharding_table (`cluster` string, `node` string, `table` string, `shards` multi)").await;
    exec(&mut c, "CREATE TABLE system.sharding_queue (`node` string, `query` string, `rollback_query` string, `wait_for_id` bigint, `rollback_wait_for_id` bigint, `operation_group` string, `tries` int, `status` string, `created_at` bigint, `updated_at` bigint, `duration` int)").await;
    exec(&mut c, "INSERT INTO system.sharding_state (`key`, `value`, `updated_at`) VALUES ('cluster', '[\"\"]', 1700000000)").await;
    exec(&mut c, r#"INSERT INTO system.sharding_state (`key`, `value`, `updated_at`) VALUES ('node:a', '[{"status":"ok","note":"it\'s \\\\ ok"}]', 1700000002)"#).await;
    exec(&mut c, "INSERT INTO system.sharding_state (`key`, `value`, `updated_at`) VALUES ('number', '[42]', 1), ('flag', '[true]', 1)").await;
    assert_eq!(
        rows(
            &mut c,
            "SELECT value[0] as value FROM system.sharding_state WHERE key = 'cluster'"
        )
        .await,
        vec![s(&[""])]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT value[0] as value FROM system.sharding_state WHERE key = 'number'"
        )
        .await,
        vec![s(&["42"])]
    );
    assert_eq!(
        rows(
            &mut c,
            "SELECT value[0] as value FROM system.sharding_state WHERE key = 'flag'"
        )
        .await,
        vec![s(&["1"])]
    );
    assert_eq!(
        rows(&mut c, "SELECT `key`, value[0] AS value FROM system.sharding_state WHERE REGEX(`key`, '^node:')").await,
        vec![s(&["node:a", r#"{"status":"ok","note":"it's \\ ok"}"#])]
    );
    exec(&mut c, "UPDATE system.sharding_state SET `updated_at` = 1700000010, `value` = '[\"x\"]' WHERE `key` = 'cluster'").await;
    assert_eq!(
        exec(
            &mut c,
            "UPDATE system.sharding_state SET `updated_at` = 1 WHERE `key` = 'nope'"
        )
        .await,
        0
    );
    exec(&mut c, "INSERT INTO system.sharding_table (`cluster`, `node`, `table`, `shards`) VALUES ('c', 'n1', 't', (0,2)), ('c', 'n2', 't', (1,3)), ('c', 'n3', 't', ())").await;
    assert_eq!(rows(&mut c, "SELECT node FROM system.sharding_table WHERE cluster = 'c' AND table = 't' AND shards in (3)").await, vec![s(&["n2"])]);
    assert_eq!(
        rows(
            &mut c,
            "SELECT node, shards FROM system.sharding_table ORDER BY id ASC"
        )
        .await,
        vec![s(&["n1", "0,2"]), s(&["n2", "1,3"]), s(&["n3", ""])]
    );
    exec(&mut c, "INSERT INTO system.sharding_queue (`id`, `node`, `query`, `rollback_query`, `wait_for_id`, `rollback_wait_for_id`, `operation_group`, `tries`, `status`, `created_at`, `updated_at`, `duration`) VALUES (1000000000001, 'n1', 'CREATE TABLE IF NOT EXISTS system.t_s0 (id bigint) ', 'DROP TABLE IF EXISTS system.t_s0', 0, 0, 'rebalance_t_1', 0, 'created', 1, 1, 0)").await;
    assert_eq!(
        rows(&mut c, "SELECT operation_group, COUNT(*) AS cnt FROM system.sharding_queue WHERE REGEX(operation_group, '^rebalance_') GROUP BY operation_group LIMIT 1000").await,
        vec![s(&["rebalance_t_1", "1"])]
    );
    assert_eq!(rows(&mut c, "SELECT COUNT(*) AS cnt FROM system.sharding_queue WHERE `status` <> 'processed' AND `tries` < 10 LIMIT 1").await, vec![s(&["1"])]);
    exec(&mut c, "UPDATE system.sharding_queue SET `status` = 'processed', `tries` = 1, `updated_at` = 5, `duration` = 4 WHERE `id` = 1000000000001").await;
    assert_eq!(
        rows(
            &mut c,
            "SELECT id, status, tries FROM system.sharding_queue WHERE id = 1000000000001"
        )
        .await,
        vec![s(&["1000000000001", "processed", "1"])]
    );
    exec(
        &mut c,
        "DELETE FROM system.sharding_queue WHERE operation_group = 'rebalance_t_1'",
    )
    .await;
    // Writes with an unknown cluster prefix fail as in searchd.
    assert_eq!(
        error(
            &mut c,
            "INSERT INTO c:system.sharding_state (`key`) VALUES ('k')"
        )
        .await
        .1,
        "table 'system.sharding_state' is not in any cluster, use just 'system.sharding_state'"
    );
    assert_eq!(
        error(&mut c, "INSERT INTO c:nope (id) VALUES (1)").await.1,
        "table 'nope' absent"
    );

    // The same statements over HTTP raw mode, including `;SHOW META` as Buddy appends it.
    let (status, body) = node
        .raw_sql(
            "SELECT value[0] as value FROM system.sharding_state WHERE key = 'number';SHOW META",
        )
        .unwrap();
    assert_eq!(status, 200);
    assert!(body.starts_with("[{\n\"columns\":[{\"value\":{\"type\":\"string\"}}],\n\"data\":[\n{\"value\":\"42\"}\n],\n\"total\":1,\n\"error\":\"\",\n\"warning\":\"\"\n},\n{\n\"columns\":[{\"Variable_name\""), "{body}");
    let (status, body) = node.raw_sql("DESC nope").unwrap();
    assert_eq!(
        (status, body.as_str()),
        (500, "{\"error\":\"no such table 'nope'\"}")
    );
}

#[tokio::test]
async fn http_endpoints() {
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    let form = [("Content-Type", "application/x-www-form-urlencoded")];
    let http = node.ports().http;
    assert_eq!(
        http_post(http, "/sql", &form, "query=SHOW%20TABLES").unwrap(),
        (
            501,
            "{\"error\":\"only SELECT queries are supported\"}".to_string()
        )
    );
    assert_eq!(
        http_post(http, "/sql", &form, "query=SELEC%201").unwrap(),
        (
            400,
            "{\"error\":\"P02: syntax error, unexpected identifier near 'SELEC 1'\"}".to_string()
        )
    );
    assert_eq!(
        http_post(http, "/cli", &[], "SHOW TABLES").unwrap(),
        (
            501,
            "{\"error\":\"can not process /cli endpoint without buddy\"}".to_string()
        )
    );
    assert_eq!(
        http_post(http, "/cli_json", &[], "CREATE TABLE t (title text, n int)").unwrap(),
        (
            200,
            "[{\"total\":0,\"error\":\"\",\"warning\":\"\"}]".to_string()
        )
    );
    assert_eq!(
        node.raw_sql("INSERT INTO t (id, title, n) VALUES (1, 'a', 1), (2, 'b', 2)")
            .unwrap()
            .1,
        "[{\"total\":2,\"error\":\"\",\"warning\":\"\"}]"
    );
    let (status, body) = http_post(
        http,
        "/sql",
        &form,
        "query=SELECT%20*%20FROM%20t%20WHERE%20id%3D2",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(body.ends_with("\"hits\":{\"total\":1,\"total_relation\":\"eq\",\"hits\":[{\"_id\":2,\"_score\":1,\"_source\":{\"title\":\"b\",\"n\":2}}]}}"), "{body}");
    // The binary-API port answers HTTP too.
    let (status, body) = http_post(
        node.ports().api,
        "/sql?mode=raw",
        &form,
        "query=SELECT%20COUNT(*)%20FROM%20t",
    )
    .unwrap();
    assert_eq!(
        (status, body.contains("{\"count(*)\":2}")),
        (200, true),
        "{body}"
    );
    // Raw body without `query=` (Buddy sends the IF NOT EXISTS form that way).
    assert_eq!(
        http_post(http, "/sql?mode=raw", &[], "SHOW TABLES LIKE 'x'")
            .unwrap()
            .0,
        200
    );
}

/// Several statements in one query, row sets first: every result arrives (also with clients
/// that negotiate `CLIENT_DEPRECATE_EOF`, as mysql_async does) and the connection stays usable.
#[tokio::test]
async fn several_statements_in_one_query() {
    use mysql_async::prelude::Queryable;
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    let mut c = conn(&node).await;
    exec(&mut c, "CREATE TABLE t (n int)").await;
    let mut result = c
        .query_iter("INSERT INTO t (id, n) VALUES (1, 5), (2, 6); SELECT n FROM t; SELECT id FROM t WHERE id = 2; SHOW META")
        .await
        .unwrap();
    let mut sets = Vec::new();
    loop {
        let rows: Vec<mysql_async::Row> = result.collect().await.unwrap();
        sets.push(rows.len());
        if result.is_empty() {
            break;
        }
    }
    drop(result);
    assert_eq!(sets, vec![0, 2, 1, 4]);
    // An error after a row set is the next result.
    let mut result = c
        .query_iter("SELECT n FROM t; SELECT nope FROM t")
        .await
        .unwrap();
    let first: Vec<mysql_async::Row> = result.collect().await.unwrap();
    assert_eq!(first.len(), 2);
    let second = result.collect::<mysql_async::Row>().await;
    assert!(
        second
            .as_ref()
            .is_err_and(|e| e.to_string().contains("unknown column")),
        "{second:?}"
    );
    drop(result);
    assert_eq!(
        rows(&mut c, "SELECT COUNT(*) FROM t").await,
        vec![s(&["2"])]
    );
}

/// searchd's result window: 20 rows by default, at most `max_matches` (1000 by default) rows,
/// an offset inside the window.
#[tokio::test]
async fn result_window() {
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    let mut c = conn(&node).await;
    exec(&mut c, "CREATE TABLE w (n int)").await;
    for start in (1..=1200).step_by(400) {
        let values: Vec<String> = (start..start + 400)
            .map(|i| format!("({i}, {i})"))
            .collect();
        exec(
            &mut c,
            &format!("INSERT INTO w (id, n) VALUES {}", values.join(", ")),
        )
        .await;
    }
    let len = |r: Vec<Vec<String>>| r.len();
    assert_eq!(len(rows(&mut c, "SELECT id FROM w").await), 20);
    assert_eq!(len(rows(&mut c, "SELECT id FROM w LIMIT 1500").await), 1000);
    assert_eq!(
        len(rows(
            &mut c,
            "SELECT id FROM w LIMIT 1500 OPTION max_matches=1500"
        )
        .await),
        1200
    );
    assert_eq!(
        len(rows(&mut c, "SELECT id FROM w LIMIT 990, 50").await),
        10
    );
    assert_eq!(
        error(&mut c, "SELECT id FROM w LIMIT 1000, 5").await.1,
        "offset out of bounds (offset=1000, max_matches=1000)"
    );
    assert_eq!(
        error(&mut c, "SELECT id FROM w LIMIT 5 OPTION max_matches=0")
            .await
            .1,
        "max_matches can not be less than one"
    );
    assert_eq!(
        rows(&mut c, "SELECT COUNT(*) FROM w").await,
        vec![s(&["1200"])]
    );
}
