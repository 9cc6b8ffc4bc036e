//! [`MetaStore`] over a node's daemon: the only code that reads and writes
//! `system.sharding_{state,table,queue}`. With a user cluster the tables
//! belong to it: writes use the `<cluster>:` prefix so they replicate; reads
//! use the local replica.
//!
//! A write whose reply was lost may or may not have taken effect; it is never
//! repeated blindly. Writes whose repetition changes nothing (DELETE, UPDATE
//! to fixed values) run once more; a key written with REPLACE is read back;
//! queue rows are looked up by id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::{MetaStore, Result, StoreError};
use crate::client::ClientError;
use crate::ids::{NodeId, TableName};
use crate::protocol::ResultSet;
use crate::sharding::clock::now_s;
use crate::sharding::node::NodeApi;
use crate::sharding::records::{
    decode_value, doc_id, encode_value, merge_rows, queue, ControlRequest, DrainRecord, GroupName,
    GroupRecord, Lease, PlacementRow, QueueRow, QueueStatus, Registration, RowFailure, Scope,
    StateKey, TableState,
};
use crate::sqltext::quote_literal;

pub const STATE: &str = "system.sharding_state";
pub const PLACEMENT: &str = "system.sharding_table";
pub const QUEUE: &str = "system.sharding_queue";

/// Exact DDL of the metadata tables (spec §6.1), so PHP Buddy nodes can read them.
const STATE_DDL: &str =
    "CREATE TABLE system.sharding_state (`key` string, `value` json, `updated_at` timestamp)";
const PLACEMENT_DDL: &str =
    "CREATE TABLE system.sharding_table (`cluster` string, `node` string, `table` string, `shards` multi)";
const QUEUE_DDL: &str = "CREATE TABLE system.sharding_queue (`node` string, `query` string, \
    `rollback_query` string, `wait_for_id` bigint, `rollback_wait_for_id` bigint, `operation_group` string, \
    `tries` int, `status` string, `created_at` bigint, `updated_at` bigint, `duration` int)";

/// Rows fetched per read; the daemon returns at most `max_matches` rows.
const PAGE: usize = 10_000;
/// Rows per multi-row INSERT.
const INSERT_BATCH: usize = 500;

fn limit(n: usize) -> String {
    format!("LIMIT {n} OPTION max_matches={n}")
}

/// Whether the statement may or may not have taken effect (the reply was
/// lost): the store then reads what it meant to change.
fn outcome_unknown(e: &StoreError) -> bool {
    matches!(
        e,
        StoreError::Client(ClientError::Disconnected { .. } | ClientError::Timeout { .. })
    )
}

/// Access to the metadata tables through one node's daemon.
#[derive(Clone)]
pub struct SqlStore {
    node: Arc<dyn NodeApi>,
    scope: Scope,
}

impl SqlStore {
    /// `node` acts as `system.buddy` on the local daemon; `scope` is where
    /// the metadata lives.
    pub fn new(node: Arc<dyn NodeApi>, scope: Scope) -> Self {
        Self { node, scope }
    }

    /// The name writes must use.
    fn target(&self, table: &str) -> String {
        match &self.scope {
            Scope::Cluster(c) => format!("{c}:{table}"),
            Scope::Local => table.to_string(),
        }
    }

    async fn run(&self, sql: &str) -> Result<ResultSet> {
        Ok(self.node.query_one(sql).await?)
    }

    /// Runs a write whose repetition has the same effect as running it once
    /// (UPDATE to fixed values, DELETE): when its outcome is unknown it is
    /// simply run again, once.
    async fn run_idempotent(&self, sql: &str) -> Result<()> {
        match self.run(sql).await {
            Err(e) if outcome_unknown(&e) => self.run(sql).await.map(drop),
            other => other.map(drop),
        }
    }

    async fn get(&self, key: &StateKey) -> Result<Option<Value>> {
        let set = self
            .run(&format!(
                "SELECT `value`, `updated_at` FROM {STATE} WHERE `key` = {} ORDER BY `updated_at` DESC {}",
                quote_literal(&key.render()),
                limit(1)
            ))
            .await?;
        Ok(set.text(0, "value").as_deref().and_then(decode_value))
    }

    async fn get_as<T: DeserializeOwned>(&self, key: &StateKey) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", key.render()))),
        }
    }

    /// Every key whose name starts with `prefix`, the rest of the name with
    /// the value; values of another shape (e.g. written by another tool) are
    /// skipped.
    async fn list_as<T: DeserializeOwned>(&self, prefix: &str) -> Result<Vec<(String, T)>> {
        let regex = format!("^{}", regex::escape(prefix));
        let set = self
            .run(&format!(
                "SELECT `key`, `value` FROM {STATE} WHERE REGEX(`key`, {}) {}",
                quote_literal(&regex),
                limit(PAGE)
            ))
            .await?;
        Ok((0..set.rows.len())
            .filter_map(|i| {
                let key = set.text(i, "key")?;
                let value = decode_value(&set.text(i, "value")?)?;
                let typed = serde_json::from_value(value).ok()?;
                Some((key.get(prefix.len()..)?.to_string(), typed))
            })
            .collect())
    }

    /// Writes `key` atomically (one REPLACE on the key's fixed document id).
    /// When the reply is lost, the key is read back: the write is reported
    /// done only when the key holds this value, and is never repeated blindly
    /// (another writer, e.g. a new master, may have written it since).
    async fn put(&self, key: &StateKey, value: &impl Serialize) -> Result<()> {
        let value = serde_json::to_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rendered = key.render();
        let sql = format!(
            "REPLACE INTO {} (`id`, `key`, `value`, `updated_at`) VALUES ({}, {}, {}, {})",
            self.target(STATE),
            doc_id(&rendered),
            quote_literal(&rendered),
            quote_literal(&encode_value(&value)),
            now_s(),
        );
        match self.run(&sql).await {
            Ok(_) => Ok(()),
            Err(e) if outcome_unknown(&e) => match self.get(key).await {
                Ok(Some(stored)) if stored == value => Ok(()),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    async fn delete(&self, key: &StateKey) -> Result<()> {
        self.run_idempotent(&format!(
            "DELETE FROM {} WHERE `key` = {}",
            self.target(STATE),
            quote_literal(&key.render())
        ))
        .await
    }

    async fn select_rows(&self, condition: &str) -> Result<Vec<QueueRow>> {
        let set = self
            .run(&format!(
                "SELECT * FROM {QUEUE} WHERE {condition} ORDER BY `id` ASC {}",
                limit(PAGE)
            ))
            .await?;
        QueueRow::all_from_result(&set).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// Writes placement rows. Rows get fresh ids, so a write whose reply was
    /// lost is not repeated here: the error goes to the caller, which
    /// replaces the table's rows again.
    async fn write_placement(&self, rows: &[PlacementRow]) -> Result<()> {
        let values: Vec<String> = rows
            .iter()
            .map(|r| {
                let shards: Vec<String> = r.shards.iter().map(u32::to_string).collect();
                format!(
                    "({}, {}, {}, ({}))",
                    quote_literal(&r.scope.to_string()),
                    quote_literal(r.node.as_str()),
                    quote_literal(r.table.as_str()),
                    shards.join(",")
                )
            })
            .collect();
        for batch in values.chunks(INSERT_BATCH) {
            self.run(&format!(
                "INSERT INTO {} (`cluster`, `node`, `table`, `shards`) VALUES {}",
                self.target(PLACEMENT),
                batch.join(", ")
            ))
            .await?;
        }
        Ok(())
    }
}

#[async_trait]
impl MetaStore for SqlStore {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    async fn is_initialized(&self) -> Result<bool> {
        match self.node.query_one(&format!("DESC {STATE}")).await {
            Ok(_) => Ok(true),
            Err(ClientError::Daemon { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    async fn prepare_tables(&self) -> Result<()> {
        let attached: Vec<String> = match &self.scope {
            Scope::Cluster(c) => {
                let set = self
                    .run(&format!(
                        "SHOW STATUS LIKE {}",
                        quote_literal(&format!("cluster_{c}_indexes"))
                    ))
                    .await?;
                set.text(0, "Value")
                    .map(|v| v.split(',').map(|t| t.trim().to_string()).collect())
                    .unwrap_or_default()
            }
            Scope::Local => Vec::new(),
        };
        for (table, ddl) in [
            (STATE, STATE_DDL),
            (PLACEMENT, PLACEMENT_DDL),
            (QUEUE, QUEUE_DDL),
        ] {
            if attached.iter().any(|t| t == table) {
                continue;
            }
            if let Err(e) = self.node.query_one(ddl).await {
                if !e
                    .daemon_message()
                    .is_some_and(|m| m.contains("already exists"))
                {
                    return Err(e.into());
                }
            }
            // One statement per table, in this order: searchd lists a
            // cluster's tables in the order they were added but sorts the
            // tables of one statement, and Manticore users see PHP Buddy's
            // `system.sharding_state,system.sharding_table,system.sharding_queue`.
            if let Scope::Cluster(c) = &self.scope {
                self.run(&format!("ALTER CLUSTER {c} ADD {table}")).await?;
            }
        }
        Ok(())
    }

    async fn ready_scope(&self) -> Result<Option<Scope>> {
        match self.get_as::<String>(&StateKey::Cluster).await? {
            None => Ok(None),
            Some(name) => Scope::try_from(name)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("state 'cluster': {e}"))),
        }
    }

    async fn put_ready_scope(&self, scope: &Scope) -> Result<()> {
        self.put(&StateKey::Cluster, &scope.to_string()).await
    }

    async fn put_cluster_hash(&self, hash: &str) -> Result<()> {
        self.put(&StateKey::ClusterHash, &hash).await
    }

    async fn lease(&self) -> Result<Option<Lease>> {
        self.get_as(&StateKey::MasterLease).await
    }

    async fn put_lease(&self, lease: &Lease) -> Result<()> {
        self.put(&StateKey::MasterLease, lease).await
    }

    async fn put_master(&self, node: &NodeId) -> Result<()> {
        self.put(&StateKey::Master, node).await
    }

    async fn put_registration(&self, node: &NodeId, registration: &Registration) -> Result<()> {
        self.put(&StateKey::Node(node.clone()), registration).await
    }

    async fn registrations(&self) -> Result<BTreeMap<NodeId, Registration>> {
        Ok(self
            .list_as::<Registration>(StateKey::NODE_PREFIX)
            .await?
            .into_iter()
            .map(|(node, r)| (NodeId::new(node), r))
            .collect())
    }

    async fn table(&self, table: &TableName) -> Result<Option<TableState>> {
        self.get_as(&StateKey::Table(table.clone())).await
    }

    async fn tables(&self) -> Result<BTreeMap<TableName, TableState>> {
        Ok(self
            .list_as::<TableState>(StateKey::TABLE_PREFIX)
            .await?
            .into_iter()
            .filter_map(|(name, state)| Some((TableName::parse(&name).ok()?, state)))
            .collect())
    }

    async fn put_table(&self, table: &TableName, state: &TableState) -> Result<()> {
        self.put(&StateKey::Table(table.clone()), state).await
    }

    async fn delete_table(&self, table: &TableName) -> Result<()> {
        self.delete(&StateKey::Table(table.clone())).await
    }

    async fn group(&self, group: &GroupName) -> Result<Option<GroupRecord>> {
        self.get_as(&StateKey::Group(group.clone())).await
    }

    async fn groups(&self) -> Result<BTreeMap<GroupName, GroupRecord>> {
        Ok(self
            .list_as::<GroupRecord>(StateKey::GROUP_PREFIX)
            .await?
            .into_iter()
            .map(|(name, record)| (GroupName::from(name.as_str()), record))
            .collect())
    }

    async fn put_group(&self, group: &GroupName, record: &GroupRecord) -> Result<()> {
        self.put(&StateKey::Group(group.clone()), record).await
    }

    async fn controls(&self) -> Result<BTreeMap<TableName, ControlRequest>> {
        Ok(self
            .list_as::<ControlRequest>(StateKey::CONTROL_PREFIX)
            .await?
            .into_iter()
            .filter_map(|(name, r)| Some((TableName::parse(&name).ok()?, r)))
            .collect())
    }

    async fn control(&self, table: &TableName) -> Result<Option<ControlRequest>> {
        self.get_as(&StateKey::Control(table.clone())).await
    }

    async fn put_control(&self, table: &TableName, request: &ControlRequest) -> Result<()> {
        self.put(&StateKey::Control(table.clone()), request).await
    }

    async fn delete_control(&self, table: &TableName) -> Result<()> {
        self.delete(&StateKey::Control(table.clone())).await
    }

    async fn drained(&self) -> Result<BTreeMap<NodeId, DrainRecord>> {
        Ok(self
            .list_as::<DrainRecord>(StateKey::DRAIN_PREFIX)
            .await?
            .into_iter()
            .map(|(node, r)| (NodeId::new(node), r))
            .collect())
    }

    async fn put_drain(&self, node: &NodeId, record: &DrainRecord) -> Result<()> {
        self.put(&StateKey::Drain(node.clone()), record).await
    }

    async fn delete_drain(&self, node: &NodeId) -> Result<()> {
        self.delete(&StateKey::Drain(node.clone())).await
    }

    async fn row_failure(&self, row: u64) -> Result<Option<RowFailure>> {
        self.get_as(&StateKey::RowError(row)).await
    }

    async fn put_row_failure(&self, row: u64, failure: &RowFailure) -> Result<()> {
        self.put(&StateKey::RowError(row), failure).await
    }

    /// When a batch's reply is lost, its rows are looked up by id: present,
    /// the batch is done; absent, it is written again (a multi-row INSERT
    /// takes effect as a whole or not at all).
    async fn enqueue(&self, rows: &[QueueRow]) -> Result<()> {
        for batch in rows.chunks(INSERT_BATCH) {
            let sql = queue::insert_sql(&self.target(QUEUE), batch);
            let Err(e) = self.run(&sql).await else {
                continue;
            };
            if !outcome_unknown(&e) {
                return Err(e);
            }
            let ids: BTreeSet<u64> = batch.iter().map(|r| r.id).collect();
            let found = self.statuses(&ids).await?;
            match found.values().filter(|s| s.is_some()).count() {
                n if n == ids.len() => {}
                0 => {
                    self.run(&sql).await?;
                }
                _ => return Err(e),
            }
        }
        Ok(())
    }

    async fn pending_rows(&self, node: &NodeId) -> Result<Vec<QueueRow>> {
        self.select_rows(&format!(
            "`node` = {} AND `status` <> 'processed'",
            quote_literal(node.as_str())
        ))
        .await
    }

    async fn group_rows(&self, group: &GroupName) -> Result<Vec<QueueRow>> {
        self.select_rows(&format!(
            "`operation_group` = {}",
            quote_literal(group.as_str())
        ))
        .await
    }

    async fn unprocessed_rows(&self) -> Result<Vec<QueueRow>> {
        self.select_rows("`status` <> 'processed'").await
    }

    async fn statuses(&self, ids: &BTreeSet<u64>) -> Result<BTreeMap<u64, Option<QueueStatus>>> {
        let mut out: BTreeMap<u64, Option<QueueStatus>> =
            ids.iter().map(|id| (*id, None)).collect();
        if ids.is_empty() {
            return Ok(out);
        }
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        let set = self
            .run(&format!(
                "SELECT `id`, `status` FROM {QUEUE} WHERE `id` IN ({}) {}",
                list.join(","),
                limit(ids.len())
            ))
            .await?;
        for i in 0..set.rows.len() {
            let id = set.text(i, "id").and_then(|s| s.parse::<u64>().ok());
            let status = set.text(i, "status").and_then(|s| QueueStatus::parse(&s));
            if let (Some(id), Some(status)) = (id, status) {
                out.insert(id, Some(status));
            }
        }
        Ok(out)
    }

    async fn set_statuses(
        &self,
        ids: &[u64],
        status: QueueStatus,
        tries: u32,
        duration_ms: i64,
    ) -> Result<()> {
        let now_ms = crate::sharding::clock::now_ms();
        for batch in ids.chunks(INSERT_BATCH) {
            self.run_idempotent(&queue::update_statuses_sql(
                &self.target(QUEUE),
                batch,
                status,
                tries,
                now_ms,
                duration_ms,
            ))
            .await?;
        }
        Ok(())
    }

    async fn max_queue_id(&self) -> Result<u64> {
        let set = self
            .run(&format!(
                "SELECT `id` FROM {QUEUE} ORDER BY `id` DESC {}",
                limit(1)
            ))
            .await?;
        Ok(set.text(0, "id").and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    async fn purge_group(&self, group: &GroupName) -> Result<()> {
        for row in self.group_rows(group).await? {
            // Only a row that failed at least once has a failure record.
            if row.status == QueueStatus::Error || row.tries > 1 {
                self.delete(&StateKey::RowError(row.id)).await?;
            }
        }
        self.run_idempotent(&format!(
            "DELETE FROM {} WHERE `operation_group` = {}",
            self.target(QUEUE),
            quote_literal(group.as_str())
        ))
        .await?;
        self.delete(&StateKey::Group(group.clone())).await
    }

    async fn placement_rows(&self, table: Option<&TableName>) -> Result<Vec<PlacementRow>> {
        let condition = table
            .map(|t| format!("WHERE `table` = {} ", quote_literal(t.as_str())))
            .unwrap_or_default();
        let set = self
            .run(&format!(
                "SELECT `cluster`, `node`, `table`, `shards` FROM {PLACEMENT} {condition}ORDER BY `id` ASC {}",
                limit(PAGE)
            ))
            .await?;
        let mut out = Vec::with_capacity(set.rows.len());
        for i in 0..set.rows.len() {
            let shards = match set.cell(i, "shards") {
                Some(Value::String(s)) => parse_mva(s),
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(|v| v.as_u64().and_then(|n| u32::try_from(n).ok()))
                    .collect(),
                _ => Vec::new(),
            };
            let raw_table = set.text(i, "table").unwrap_or_default();
            let (Ok(table), Ok(scope)) = (
                TableName::parse(&raw_table),
                Scope::try_from(set.text(i, "cluster").unwrap_or_default()),
            ) else {
                // Not a row shardbuddy could have written.
                continue;
            };
            out.push(PlacementRow {
                scope,
                node: NodeId::new(set.text(i, "node").unwrap_or_default()),
                table,
                shards,
            });
        }
        Ok(merge_rows(out))
    }

    /// The new rows are written before the old ones are deleted (by id), so
    /// no reader, and no master that stops in between, finds the table
    /// without a placement; rows of one node are merged on reading
    /// ([`merge_rows`]). A replacement that stops half way is completed by
    /// the next one: it deletes every row it found before writing.
    async fn replace_placement(&self, table: &TableName, rows: &[PlacementRow]) -> Result<()> {
        let set = self
            .run(&format!(
                "SELECT `id` FROM {PLACEMENT} WHERE `table` = {} {}",
                quote_literal(table.as_str()),
                limit(PAGE)
            ))
            .await?;
        let old: Vec<String> = (0..set.rows.len())
            .filter_map(|i| set.text(i, "id")?.parse::<u64>().ok())
            .map(|id| id.to_string())
            .collect();
        self.write_placement(rows).await?;
        for ids in old.chunks(INSERT_BATCH) {
            self.run_idempotent(&format!(
                "DELETE FROM {} WHERE `id` IN ({})",
                self.target(PLACEMENT),
                ids.join(",")
            ))
            .await?;
        }
        Ok(())
    }

    async fn delete_placement(&self, table: &TableName) -> Result<()> {
        self.run_idempotent(&format!(
            "DELETE FROM {} WHERE `table` = {}",
            self.target(PLACEMENT),
            quote_literal(table.as_str())
        ))
        .await
    }
}

/// An MVA in raw-mode JSON: `"0,2"`, `""`.
fn parse_mva(s: &str) -> Vec<u32> {
    s.split(',').filter_map(|p| p.trim().parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Column, ColumnType};
    use crate::sharding::records::{Lease, StateKey};
    use crate::sharding::testing::{lost, ok, FakeNode};
    use serde_json::json;

    fn store(node: &FakeNode) -> SqlStore {
        SqlStore::new(Arc::new(node.clone()), Scope::Local)
    }

    fn rows(
        columns: &[&str],
        rows: Vec<Vec<Value>>,
    ) -> std::result::Result<Vec<ResultSet>, ClientError> {
        let mut set = ResultSet::with_columns(
            columns
                .iter()
                .map(|c| Column::new(*c, ColumnType::String))
                .collect(),
        );
        for row in rows {
            set.push_row(row);
        }
        Ok(vec![set])
    }

    fn lease(epoch: u64) -> Lease {
        Lease {
            node: NodeId::new("a:1"),
            epoch,
            beat: 0,
        }
    }

    fn stored(value: &Lease) -> std::result::Result<Vec<ResultSet>, ClientError> {
        let text = encode_value(&serde_json::to_value(value).unwrap());
        rows(&["value", "updated_at"], vec![vec![json!(text), json!(0)]])
    }

    #[tokio::test]
    async fn a_lost_reply_to_a_key_write_is_resolved_by_reading_the_key() {
        // The write took effect: done, and not sent twice.
        let node = FakeNode::new(|sql, _| {
            if sql.starts_with("REPLACE") {
                lost()
            } else {
                stored(&lease(2))
            }
        });
        store(&node).put_lease(&lease(2)).await.unwrap();
        let sent = node.sent();
        assert_eq!(sent.len(), 2);
        assert!(sent[0].starts_with("REPLACE") && sent[1].starts_with("SELECT"));
        let key = StateKey::MasterLease.render();
        assert!(sent[1].contains(&format!("`key` = '{key}'")));

        // Something else is there (it did not take effect, or another
        // writer came after): an error, never a blind second write.
        let node = FakeNode::new(|sql, _| {
            if sql.starts_with("REPLACE") {
                lost()
            } else {
                stored(&lease(3))
            }
        });
        assert!(store(&node).put_lease(&lease(2)).await.is_err());
        assert_eq!(node.sent().len(), 2);
    }

    #[tokio::test]
    async fn lost_replies_to_queue_inserts_are_resolved_by_looking_the_rows_up() {
        let queued = vec![crate::sharding::records::QueueRow::fresh(
            42,
            NodeId::new("a:1"),
            crate::placement::Action::Noop,
            None,
            0,
            &GroupName::from("g"),
            0,
        )];
        let present = || rows(&["id", "status"], vec![vec![json!("42"), json!("created")]]);
        let node = FakeNode::new(move |sql, _| {
            if sql.starts_with("INSERT") {
                lost()
            } else {
                present()
            }
        });
        store(&node).enqueue(&queued).await.unwrap();
        assert_eq!(
            node.sent()
                .iter()
                .filter(|s| s.starts_with("INSERT"))
                .count(),
            1
        );

        let absent = || rows(&["id", "status"], vec![]);
        let node = FakeNode::new(move |sql, n| match (sql.starts_with("INSERT"), n) {
            (true, 0) => lost(),
            (true, _) => ok(),
            _ => absent(),
        });
        store(&node).enqueue(&queued).await.unwrap();
        assert_eq!(
            node.sent()
                .iter()
                .filter(|s| s.starts_with("INSERT"))
                .count(),
            2,
            "absent rows are written again"
        );
    }

    #[tokio::test]
    async fn idempotent_writes_are_repeated_once_when_their_reply_is_lost() {
        let node = FakeNode::new(|_, n| if n == 0 { lost() } else { ok() });
        store(&node)
            .delete_table(&TableName::parse("t").unwrap())
            .await
            .unwrap();
        let sent = node.sent();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0], sent[1]);
        assert!(sent[0].starts_with("DELETE FROM system.sharding_state"));
    }

    #[tokio::test]
    async fn a_placement_is_replaced_new_rows_first_then_the_old_ones_by_id() {
        let node = FakeNode::new(|sql, _| {
            if sql.starts_with("SELECT `id`") {
                rows(&["id"], vec![vec![json!(11)], vec![json!("12")]])
            } else {
                ok()
            }
        });
        let table = TableName::parse("t").unwrap();
        let new = vec![PlacementRow {
            scope: Scope::Local,
            node: NodeId::new("a:1"),
            table: table.clone(),
            shards: vec![0, 1],
        }];
        store(&node).replace_placement(&table, &new).await.unwrap();
        let sent = node.sent();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(sent[0].contains("WHERE `table` = 't'"), "{sent:?}");
        assert!(
            sent[1].starts_with("INSERT INTO system.sharding_table") && sent[1].contains("(0,1)"),
            "{sent:?}"
        );
        assert_eq!(
            sent[2],
            "DELETE FROM system.sharding_table WHERE `id` IN (11,12)"
        );
    }

    #[tokio::test]
    async fn a_key_of_the_wrong_shape_is_reported_as_damaged_metadata() {
        let node = FakeNode::new(|_, _| {
            rows(
                &["value", "updated_at"],
                vec![vec![json!("[\"x\"]"), json!(0)]],
            )
        });
        let err = store(&node).lease().await.unwrap_err().to_string();
        let key = StateKey::MasterLease.render();
        assert!(
            err.starts_with(&format!(
                "the sharding metadata on this node is damaged ({key}: invalid type: string \"x\""
            )),
            "{err}"
        );
        assert!(
            err.ends_with("); compare SHOW SHARDING STATUS on another node"),
            "{err}"
        );
    }

    #[test]
    fn mva_text_parses() {
        assert_eq!(parse_mva("0,2"), vec![0, 2]);
        assert_eq!(parse_mva(""), Vec::<u32>::new());
        assert_eq!(parse_mva("7"), vec![7]);
    }

    #[test]
    fn metadata_ddl_is_buddy_exact() {
        assert_eq!(
            QUEUE_DDL,
            "CREATE TABLE system.sharding_queue (`node` string, `query` string, `rollback_query` string, \
             `wait_for_id` bigint, `rollback_wait_for_id` bigint, `operation_group` string, `tries` int, \
             `status` string, `created_at` bigint, `updated_at` bigint, `duration` int)"
        );
    }
}
