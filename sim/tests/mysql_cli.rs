//! The real `mysql` command-line client (MariaDB's, as in the golden transcripts) works against a node.

use std::process::Command;

use manticore_sim::testkit::{NodeOptions, SimNode};

fn mysql(node: &SimNode, sql: &str) -> (bool, String) {
    let out = Command::new("mysql")
        .args([
            "-h127.0.0.1",
            &format!("-P{}", node.ports().mysql),
            "--table",
            "-e",
            sql,
        ])
        .output()
        .expect("the `mysql` client must be installed (Debian: default-mysql-client)");
    let mut text = String::from_utf8_lossy(&out.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn mysql_client_session() {
    let node = SimNode::start(1, NodeOptions::default()).unwrap();
    assert_eq!(mysql(&node, "SHOW TABLES"), (true, String::new()));
    assert_eq!(
        mysql(&node, "CREATE TABLE t (title text, n int, f float)"),
        (true, String::new())
    );
    assert_eq!(
        mysql(
            &node,
            "INSERT INTO t (id, title, n, f) VALUES (1, 'one', 10, 1.5), (2, 'two', 200, 0)"
        ),
        (true, String::new())
    );
    let (ok, out) = mysql(&node, "SELECT * FROM t ORDER BY id ASC");
    assert!(ok, "{out}");
    assert_eq!(
        out,
        "+------+-------+------+----------+\n| id   | title | n    | f        |\n+------+-------+------+----------+\n|    1 | one   |   10 | 1.500000 |\n|    2 | two   |  200 | 0.000000 |\n+------+-------+------+----------+\n"
    );
    let (ok, out) = mysql(&node, "SHOW TABLES");
    assert_eq!((ok, out.as_str()), (true, "+-------+------+\n| Table | Type |\n+-------+------+\n| t     | rt   |\n+-------+------+\n"));
    let (ok, out) = mysql(&node, "DESC nope");
    assert_eq!((ok, out.as_str()), (false, "--------------\nDESC nope\n--------------\n\nERROR 1146 (42S02) at line 1: no such table 'nope'\n"));
}
