//! Stand-ins for unit tests of the drivers and the store.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use crate::client::ClientError;
use crate::ids::NodeId;
use crate::protocol::ResultSet;
use crate::sharding::node::NodeApi;

type Script = dyn Fn(&str, usize) -> Result<Vec<ResultSet>, ClientError> + Send + Sync;

/// A node that answers every statement from a script (the statement and how
/// many statements came before it) and records what it was sent.
#[derive(Clone)]
pub struct FakeNode {
    script: Arc<Script>,
    pub sent: Arc<Mutex<Vec<String>>>,
}

impl FakeNode {
    pub fn new(
        script: impl Fn(&str, usize) -> Result<Vec<ResultSet>, ClientError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            script: Arc::new(script),
            sent: Arc::default(),
        }
    }

    pub fn sent(&self) -> Vec<String> {
        self.sent.lock().expect("lock").clone()
    }
}

/// The reply of a write: one empty result set.
pub fn ok() -> Result<Vec<ResultSet>, ClientError> {
    Ok(vec![ResultSet::ok()])
}

/// A reply lost after the statement was sent.
pub fn lost() -> Result<Vec<ResultSet>, ClientError> {
    Err(ClientError::Disconnected {
        url: "http://fake/sql?mode=raw".into(),
        reason: "connection reset".into(),
    })
}

#[async_trait]
impl NodeApi for FakeNode {
    async fn query(&self, sql: &str) -> Result<Vec<ResultSet>, ClientError> {
        let n = {
            let mut sent = self.sent.lock().expect("lock");
            sent.push(sql.to_string());
            sent.len() - 1
        };
        (self.script)(sql, n)
    }

    fn for_node(&self, _node: &NodeId) -> Arc<dyn NodeApi> {
        Arc::new(self.clone())
    }

    fn as_user(&self, _user: &str) -> Arc<dyn NodeApi> {
        Arc::new(self.clone())
    }
}

/// `(id, node, statement, waits for)` of each row: what a queue test asserts.
pub fn shapes(rows: &[crate::sharding::records::QueueRow]) -> Vec<(u64, &str, String, u64)> {
    rows.iter()
        .map(|r| {
            (
                r.id,
                r.node.as_str(),
                r.action.to_query_text(),
                r.wait_for_id,
            )
        })
        .collect()
}

/// A `SHOW STATUS` reply with these counters.
pub fn counters(pairs: &[(&str, &str)]) -> Result<Vec<ResultSet>, ClientError> {
    use crate::protocol::{Column, ColumnType};
    let mut set = ResultSet::with_columns(vec![
        Column::new("Counter", ColumnType::String),
        Column::new("Value", ColumnType::String),
    ]);
    for (k, v) in pairs {
        set.push_row(vec![serde_json::json!(k), serde_json::json!(v)]);
    }
    Ok(vec![set])
}

/// The statement handlers' context over `node` (default settings).
pub fn context(node: &FakeNode) -> crate::sharding::ops::Context {
    let api: Arc<dyn NodeApi> = Arc::new(node.clone());
    crate::sharding::ops::Context {
        config: crate::sharding::config::ShardingConfig::default(),
        node: crate::sharding::daemon::LocalNode::new(Arc::clone(&api)),
        metadata: crate::sharding::metadata::Metadata::new(api),
        signals: Arc::default(),
        pulse: Arc::new(crate::sharding::pulse::Pulse::new()),
    }
}

/// A reply of one result set with these string columns and rows.
pub fn table(columns: &[&str], rows: &[&[&str]]) -> Result<Vec<ResultSet>, ClientError> {
    use crate::protocol::{Column, ColumnType};
    let mut set = ResultSet::with_columns(
        columns
            .iter()
            .map(|c| Column::new(*c, ColumnType::String))
            .collect(),
    );
    for row in rows {
        set.push_row(row.iter().map(|v| serde_json::json!(v)).collect());
    }
    Ok(vec![set])
}

/// The replies by which a node listening on 127.0.0.1:9312, in no
/// replication cluster, tells who it is; `None` for other statements.
pub fn identity(sql: &str) -> Option<Result<Vec<ResultSet>, ClientError>> {
    match sql {
        "SHOW SETTINGS" => Some(table(
            &["Setting_name", "Value"],
            &[&["searchd.listen", "127.0.0.1:9312"]],
        )),
        "SHOW STATUS LIKE 'cluster_%_nodes_set'" => Some(counters(&[])),
        _ => None,
    }
}

/// The daemon's answer to a statement on a table that does not exist.
pub fn no_such_table() -> Result<Vec<ResultSet>, ClientError> {
    Err(ClientError::Daemon {
        status: 500,
        message: "no such table".into(),
    })
}

/// The `system.sharding_state` keys a [`kv_node`] holds: key → the stored
/// `value` column text.
pub type Keys = Arc<Mutex<std::collections::BTreeMap<String, String>>>;

/// The SQL string literal at the start of `s` (after `'`), unescaped, and
/// the rest after its closing quote.
fn literal(s: &str) -> Option<(String, &str)> {
    let s = s.strip_prefix('\'')?;
    let mut out = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?.1),
            '\'' => return Some((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// A node at 127.0.0.1:9312 whose metadata tables exist and whose state
/// keys live in `keys`: it says who it is, `first` answers what it wants
/// to (and may change the keys), the node answers the store's key reads,
/// writes and deletes, and any other statement fails the test.
pub fn kv_node(
    keys: Keys,
    first: impl Fn(&str, &Keys) -> Option<Result<Vec<ResultSet>, ClientError>> + Send + Sync + 'static,
) -> FakeNode {
    const READ: &str = "SELECT `value`, `updated_at` FROM system.sharding_state WHERE `key` = ";
    const LIST: &str = "SELECT `key`, `value` FROM system.sharding_state WHERE REGEX(`key`, '^";
    const DELETE: &str = "system.sharding_state WHERE `key` = ";
    FakeNode::new(move |sql, _| {
        if let Some(reply) = identity(sql).or_else(|| first(sql, &keys)) {
            return reply;
        }
        if sql.starts_with("DESC ") {
            return ok();
        }
        if let Some((key, _)) = sql.strip_prefix(READ).and_then(literal) {
            let value = keys.lock().expect("lock").get(&key).cloned();
            let rows: Vec<[&str; 2]> = value.iter().map(|v| [v.as_str(), "1"]).collect();
            let rows: Vec<&[&str]> = rows.iter().map(|r| &r[..]).collect();
            return table(&["value", "updated_at"], &rows);
        }
        if let Some(rest) = sql.strip_prefix(LIST) {
            let prefix = rest
                .split('\'')
                .next()
                .unwrap_or_default()
                .replace('\\', "");
            let found: Vec<[String; 2]> = keys
                .lock()
                .expect("lock")
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(k, v)| [k.clone(), v.clone()])
                .collect();
            let rows: Vec<[&str; 2]> = found
                .iter()
                .map(|[k, v]| [k.as_str(), v.as_str()])
                .collect();
            let rows: Vec<&[&str]> = rows.iter().map(|r| &r[..]).collect();
            return table(&["key", "value"], &rows);
        }
        let delete = sql
            .strip_prefix("DELETE FROM ")
            .and_then(|rest| rest.split_once(DELETE));
        if let Some((key, _)) = delete.and_then(|(_, key)| literal(key)) {
            keys.lock().expect("lock").remove(&key);
            return ok();
        }
        // Written in the cluster (`c:system.…`) or locally.
        if sql.starts_with("REPLACE INTO ") && sql.contains("system.sharding_state (") {
            let values = sql
                .split_once("VALUES (")
                .map(|(_, v)| v)
                .unwrap_or_default();
            let after_id = values.split_once(", ").map(|(_, v)| v).unwrap_or_default();
            if let Some((key, rest)) = literal(after_id) {
                if let Some((value, _)) = rest.strip_prefix(", ").and_then(literal) {
                    keys.lock().expect("lock").insert(key, value);
                    return ok();
                }
            }
        }
        panic!("unexpected statement: {sql}")
    })
}

/// `keys` with `key` holding `value`, stored as the store writes it.
pub fn put_key(keys: &Keys, key: &str, value: &impl serde::Serialize) {
    let value = serde_json::to_value(value).expect("serializable");
    keys.lock().expect("lock").insert(
        key.to_string(),
        crate::sharding::records::encode_value(&value),
    );
}

/// A local `shards=1 rf=1` request `id` written by `by`, with a 30 s
/// timeout and no requesting process.
pub fn local_request(id: &str, by: &str) -> crate::sharding::records::OpRequest {
    crate::sharding::records::OpRequest {
        id: id.into(),
        by: NodeId::new(by),
        at_ms: 0,
        timeout_ms: 30_000,
        scope: crate::sharding::records::Scope::Local,
        shards: 1,
        rf: 1,
        instance: None,
    }
}
