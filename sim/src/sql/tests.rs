//! Parser tests: accepted forms round-trip to the expected values; rejected forms give searchd's texts.

use super::ast::*;
use super::parse;

fn err(sql: &str) -> String {
    match parse(sql) {
        Err(e) => e.to_string(),
        Ok(s) => panic!("{sql} parsed as {s:?}"),
    }
}

#[test]
fn golden_syntax_errors() {
    let cases = [
        ("SELEC * FROM rowwise", "P02: syntax error, unexpected identifier near 'SELEC * FROM rowwise'"),
        ("CREATE TABLE", "P03: syntax error, unexpected $end near 'TABLE'"),
        ("SHOW VERSION", "P01: syntax error, unexpected identifier, expecting VARIABLES near 'VERSION'"),
        ("SHOW SHARDING STATUS", "P01: syntax error, unexpected identifier, expecting VARIABLES near 'SHARDING STATUS'"),
        ("CREATE TABLE c:t (id bigint) shards='2' rf='1'", "P03: syntax error, unexpected invalid token, expecting $end near ':t (id bigint) shards='2' rf='1''"),
        ("DROP TABLE c:t", "P03: syntax error, unexpected invalid token, expecting $end near ':t'"),
        ("DROP TABLE IF EXISTS c:t", "P03: syntax error, unexpected invalid token, expecting $end near ':t'"),
        ("ALTER TABLE c:t ADD COLUMN k int", "P03: syntax error, unexpected invalid token, expecting $end near ':t ADD COLUMN k int'"),
        ("CREATE TABLE t shards=2 rf=1", "P03: syntax error, unexpected integer, expecting string near '2 rf=1'"),
        ("CREATE TABLE t LIKE rowwise shards='2' rf='1'", "P03: syntax error, unexpected tablename, expecting $end near 'shards='2' rf='1''"),
        ("CREATE TABLE bad_type (x varchar)", "P03: unknown column type 'varchar' near ')'"),
        ("CREATE TABLE other.x (title text)", "P03: unexpected db 'other', only 'system' allowed near 'x (title text)'"),
        ("SHOW CREATE TABLE system.sharding_state", "P01: syntax error, unexpected SUBKEY, expecting $end near '.sharding_state'"),
        ("CREATE CLUSTER IF NOT EXISTS x 'x' as path", "P03: syntax error, unexpected IF near 'IF NOT EXISTS x 'x' as path'"),
        ("CREATE TABLE t shards='3", "P03: syntax error, unexpected $undefined, expecting string near ''3'"),
        ("CREATE TABLE t shards='5' rf'12'", "P03: syntax error, unexpected string, expecting '=' near ''12''"),
        ("CREATE TABLE t shards='5' rf='1' extra", "P03: syntax error, unexpected $end, expecting '=' near 'extra'"),
        ("CREATE TABLE t shards '5' rf '1'", "P03: syntax error, unexpected string, expecting '=' near ''5' rf '1''"),
        ("CREATE TABLE t shards=\"3\" rf=\"1\"", "P03: syntax error, unexpected $undefined, expecting string near '\"3\" rf=\"1\"'"),
        ("SHOW CLUSTER", "P01: syntax error, unexpected CLUSTER, expecting VARIABLES near 'CLUSTER'"),
        ("SHOW REPLICATION STATUS", "P01: syntax error, unexpected identifier, expecting VARIABLES near 'REPLICATION STATUS'"),
        ("CREATE OR REPLACE TABLE w (title text) type='shard' local='system.w_s1'", "P01: syntax error, unexpected OR, expecting USER near 'OR REPLACE TABLE w (title text) type='shard' local='system.w_s1''"),
        ("ALTER TABLE w ADD local='system.w_s1'", "P03: syntax error, unexpected tablename, expecting COLUMN near 'local='system.w_s1''"),
    ];
    for (sql, want) in cases {
        assert_eq!(err(sql), want, "{sql}");
    }
}

#[test]
fn create_table_forms() {
    let s = parse("CREATE TABLE IF NOT EXISTS system.t_s0 (id bigint, title text, v float_vector knn_type='hnsw' knn_dims='4') min_infix_len='3' engine='rowwise'").unwrap();
    let Statement::CreateTable(c) = s else {
        panic!("{s:?}")
    };
    assert!(c.if_not_exists);
    assert_eq!(c.name, "system.t_s0");
    assert_eq!(c.columns.len(), 3);
    assert_eq!(
        c.columns[2].props,
        vec![
            ("knn_type".to_string(), "hnsw".to_string()),
            ("knn_dims".to_string(), "4".to_string())
        ]
    );
    assert_eq!(
        c.options,
        vec![
            ("min_infix_len".to_string(), "3".to_string()),
            ("engine".to_string(), "rowwise".to_string())
        ]
    );

    let s = parse("CREATE TABLE `t` (id bigint, title text)\n\t\t\ttype='shard' local='system.t_s0' agent='127.0.0.1:1:system.t_s1|127.0.0.1:2:system.t_s1[retry_count=2,ha_strategy=noerrors]' ").unwrap();
    let Statement::CreateTable(c) = s else {
        panic!()
    };
    assert_eq!(c.name, "t");
    assert_eq!(c.options[0], ("type".to_string(), "shard".to_string()));
    assert_eq!(c.options.len(), 3);

    assert!(
        matches!(parse("CREATE TABLE IF NOT EXISTS system.t_s2  ").unwrap(), Statement::CreateTable(c) if c.columns.is_empty())
    );
    assert!(matches!(
        parse("CREATE TABLE t LIKE rowwise").unwrap(),
        Statement::CreateTableLike { .. }
    ));
}

#[test]
fn dml_forms() {
    let s = parse("INSERT INTO c:system.sharding_table (`cluster`, `node`, `table`, `shards`) VALUES ('c', 'n', 't', (0,2)), ('c', 'n2', 't', ())").unwrap();
    let Statement::Insert(i) = s else { panic!() };
    assert_eq!(
        i.table,
        TableRef {
            cluster: Some("c".into()),
            name: "system.sharding_table".into()
        }
    );
    assert_eq!(i.rows[0][3], Literal::Mva(vec![0, 2]));
    assert_eq!(i.rows[1][3], Literal::Mva(vec![]));

    let s = parse("UPDATE c:system.sharding_queue SET `status` = 'processing', `tries` = 1 WHERE `id` = 1000000000001").unwrap();
    let Statement::Update(u) = s else { panic!() };
    assert_eq!(u.sets.len(), 2);
    assert!(u.filter.is_some());

    assert!(matches!(
        parse("DELETE FROM t WHERE id > 1000").unwrap(),
        Statement::Delete(_)
    ));
    assert!(matches!(
        parse("DELETE CLUSTER c2").unwrap(),
        Statement::Cluster(ClusterStmt::Delete { .. })
    ));
    assert!(
        matches!(parse("INSERT INTO types (id, i2) VALUES (7, -1)").unwrap(), Statement::Insert(i) if i.rows[0][1] == Literal::Int(-1))
    );
}

#[test]
fn select_forms() {
    for sql in [
        "SELECT value[0] as value FROM system.sharding_state WHERE key = 'cluster'",
        "SELECT `key`, value[0] AS value FROM c:system.sharding_state WHERE REGEX(`key`, '^node:') LIMIT 1",
        "SELECT * FROM system.sharding_queue WHERE `node` = 'n' AND `status` <> 'processed' AND `tries` < 10 ORDER BY `id` ASC LIMIT 1000",
        "SELECT operation_group, COUNT(*) AS cnt FROM system.sharding_queue WHERE REGEX(operation_group, '^rebalance_') GROUP BY operation_group LIMIT 1000",
        "SELECT node FROM system.sharding_table WHERE cluster = 'c' AND table = 't' AND shards in (0,1) ORDER BY id ASC",
        "SELECT id, j.a, j.arr[0] FROM types",
        "SELECT id, j[0].k AS k FROM types WHERE id = 5",
        "SELECT id, WEIGHT() FROM types WHERE MATCH('@title manticore') AND i > 15",
        "SELECT id FROM types ORDER BY id ASC LIMIT 1, 2",
        "SELECT * FROM tbl WHERE MATCH('x') ORDER BY id ASC OPTION fuzzy=1",
        "SELECT @@version_comment LIMIT 1",
    ] {
        assert!(matches!(parse(sql), Ok(Statement::Select(_))), "{sql}: {:?}", parse(sql));
    }
    let Statement::Select(s) = parse("SELECT COUNT(*) FROM t").unwrap() else {
        panic!()
    };
    assert_eq!(
        s.items,
        vec![SelectItem::Expr {
            expr: Expr::CountStar,
            header: "count(*)".into()
        }]
    );
    let Statement::Select(s) = parse("SELECT id, j.arr[0] FROM t").unwrap() else {
        panic!()
    };
    assert!(matches!(&s.items[1], SelectItem::Expr { header, .. } if header == "j.arr[0]"));
    // Identifier quotes are not part of the column name searchd reports.
    let Statement::Select(s) = parse("SELECT `key`, `value`[0], `n` AS `m` FROM t").unwrap() else {
        panic!()
    };
    let headers: Vec<&str> = s
        .items
        .iter()
        .map(|i| match i {
            SelectItem::Expr { header, .. } => header.as_str(),
            SelectItem::Star => "*",
        })
        .collect();
    assert_eq!(headers, ["key", "value[0]", "m"]);
}

#[test]
fn show_and_admin_forms() {
    let cases: Vec<(&str, Statement)> = vec![
        (
            "SHOW TABLES FROM system",
            Statement::ShowTables {
                system: true,
                like: None,
            },
        ),
        (
            "SHOW TABLES LIKE 'ty%'",
            Statement::ShowTables {
                system: false,
                like: Some("ty%".into()),
            },
        ),
        (
            "SHOW STATUS LIKE 'cluster_%_indexes'",
            Statement::ShowStatus {
                like: Some("cluster_%_indexes".into()),
            },
        ),
        (
            "SHOW CREATE TABLE t OPTION force=1",
            Statement::ShowCreateTable {
                name: "t".into(),
                force: true,
            },
        ),
        (
            "DESC system.sharding_state",
            Statement::Describe {
                name: "system.sharding_state".into(),
                topology: false,
            },
        ),
        (
            "DESC t OPTION force=1",
            Statement::Describe {
                name: "t".into(),
                topology: false,
            },
        ),
        (
            "DESC t OPTION topology=1",
            Statement::Describe {
                name: "t".into(),
                topology: true,
            },
        ),
        (
            "DROP TABLE IF EXISTS t OPTION force=1",
            Statement::DropTable {
                if_exists: true,
                name: "t".into(),
                force: true,
            },
        ),
        ("ALTER TABLE t", Statement::AlterTable { name: "t".into() }),
        (
            "ALTER TABLE w type='shard' local='system.w_s1'",
            Statement::AlterTable { name: "w".into() },
        ),
        (
            "TRUNCATE TABLE r_s0_cluster:system.r_s0",
            Statement::Truncate {
                table: TableRef {
                    cluster: Some("r_s0_cluster".into()),
                    name: "system.r_s0".into(),
                },
                reconfigure: false,
            },
        ),
        (
            "OPTIMIZE TABLE types OPTION sync=1",
            Statement::Optimize {
                table: "types".into(),
                sync: true,
            },
        ),
        (
            "FLUSH RAMCHUNK system.r_s0",
            Statement::FlushRamchunk {
                table: "system.r_s0".into(),
            },
        ),
        (
            "SET GLOBAL log_level = debug",
            Statement::SetGlobal {
                name: "log_level".into(),
                value: "debug".into(),
            },
        ),
        (
            "JOIN CLUSTER c at '127.0.0.1:1312' 'c' as path ",
            Statement::Cluster(ClusterStmt::Join {
                name: "c".into(),
                at: "127.0.0.1:1312".into(),
                path: Some("c".into()),
            }),
        ),
        (
            "ALTER CLUSTER c ADD system.t_s1,system.t_s3",
            Statement::Cluster(ClusterStmt::AlterAdd {
                name: "c".into(),
                tables: vec!["system.t_s1".into(), "system.t_s3".into()],
            }),
        ),
        (
            "SET CLUSTER c GLOBAL 'pc.bootstrap' = 1",
            Statement::Cluster(ClusterStmt::Set {
                name: "c".into(),
                var: "pc.bootstrap".into(),
                value: Literal::Int(1),
            }),
        ),
    ];
    for (sql, want) in cases {
        assert_eq!(
            parse(sql).unwrap_or_else(|e| panic!("{sql}: {e}")),
            want,
            "{sql}"
        );
    }
}
