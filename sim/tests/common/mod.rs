//! Helpers shared by the integration tests: MySQL access through `mysql_async`.
#![allow(dead_code)]

use manticore_sim::testkit::SimNode;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row, Value};

pub async fn conn(node: &SimNode) -> Conn {
    let opts = Opts::from_url(&node.mysql_url()).expect("valid url");
    Conn::new(opts).await.expect("mysql connection")
}

fn text(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".to_string(),
        Value::Bytes(b) => String::from_utf8_lossy(b).to_string(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(d) => d.to_string(),
        other => format!("{other:?}"),
    }
}

/// Rows as text (`NULL` for SQL NULL); panics with the server's error.
pub async fn rows(c: &mut Conn, sql: &str) -> Vec<Vec<String>> {
    let result: Vec<Row> = c.query(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
    result
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| text(&r.as_ref(i).cloned().unwrap_or(Value::NULL)))
                .collect()
        })
        .collect()
}

/// Column names of a query's result.
pub async fn columns(c: &mut Conn, sql: &str) -> Vec<String> {
    let mut result = c
        .query_iter(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let names = result
        .columns_ref()
        .iter()
        .map(|c| c.name_str().to_string())
        .collect();
    let _: Vec<Row> = result.collect().await.unwrap_or_default();
    names
}

/// Runs a statement that returns no rows; returns the affected-row count.
pub async fn exec(c: &mut Conn, sql: &str) -> u64 {
    c.query_drop(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    c.affected_rows()
}

/// The server error (code, message) a statement fails with.
pub async fn error(c: &mut Conn, sql: &str) -> (u16, String) {
    match c.query_drop(sql).await {
        Err(mysql_async::Error::Server(e)) => (e.code, e.message),
        Err(e) => panic!("{sql}: unexpected client error {e}"),
        Ok(()) => panic!("{sql}: expected an error"),
    }
}

pub fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}
