//! The only code that reads and writes `system.sharding_{state,table,queue}`.
//!
//! What is persisted, and why:
//! * `system.sharding_state` — key/value (spec §6.3, §10.2): the user cluster
//!   the metadata lives in, the master lease, node heartbeats, each table's
//!   create/drop lifecycle (`table:<t>`, also how a non-master node hands a
//!   CREATE/DROP to the master and learns its outcome), and the commit record
//!   of every operation group (`group:<g>`).
//! * `system.sharding_table` — the committed placement: one row per
//!   (cluster, node, table) with the node's shard numbers.
//! * `system.sharding_queue` — the per-node DDL queues.
//!
//! Everything else (roles, caches, the election clock) is rebuilt in memory.
//! With a user cluster the tables belong to it: writes use the
//! `<cluster>:` prefix so they replicate; reads use the local replica.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::client::{ClientError, DaemonClient};
use crate::ids::{ClusterName, NodeId, TableName};
use crate::protocol::ResultSet;
use crate::sharding::queue::row::{self, QueueRow, QueueStatus};
use crate::sharding::state::{decode_value, doc_id, encode_value, StateKey};
use crate::sqltext::quote_literal;

pub const STATE: &str = "system.sharding_state";
pub const PLACEMENT: &str = "system.sharding_table";
pub const QUEUE: &str = "system.sharding_queue";

/// Exact DDL of the metadata tables (spec §6.1), so PHP Buddy nodes can read them.
pub const STATE_DDL: &str =
    "CREATE TABLE system.sharding_state (`key` string, `value` json, `updated_at` timestamp)";
pub const PLACEMENT_DDL: &str =
    "CREATE TABLE system.sharding_table (`cluster` string, `node` string, `table` string, `shards` multi)";
pub const QUEUE_DDL: &str = "CREATE TABLE system.sharding_queue (`node` string, `query` string, \
    `rollback_query` string, `wait_for_id` bigint, `rollback_wait_for_id` bigint, `operation_group` string, \
    `tries` int, `status` string, `created_at` bigint, `updated_at` bigint, `duration` int)";

/// Rows fetched per read; the daemon returns at most `max_matches` rows.
const PAGE: usize = 10_000;
/// Rows per multi-row INSERT.
const INSERT_BATCH: usize = 500;

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("malformed sharding metadata: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Client(e) if e.is_transient())
    }

    /// Whether the statement may or may not have taken effect (the reply was
    /// lost): the store then reads what it meant to change.
    fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            StoreError::Client(ClientError::Disconnected { .. } | ClientError::Timeout { .. })
        )
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// One row of `system.sharding_table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementRow {
    pub cluster: String,
    pub node: NodeId,
    pub table: String,
    pub shards: Vec<u32>,
}

/// Access to the metadata tables through one node's daemon.
#[derive(Clone)]
pub struct Store {
    client: DaemonClient,
    cluster: Option<ClusterName>,
}

fn limit(n: usize) -> String {
    format!("LIMIT {n} OPTION max_matches={n}")
}

impl Store {
    /// `client` acts as `system.buddy` on the local node; `cluster` is the
    /// user cluster the metadata belongs to (`None` for local sharding).
    pub fn new(client: DaemonClient, cluster: Option<ClusterName>) -> Self {
        Self { client, cluster }
    }

    pub fn cluster(&self) -> Option<&ClusterName> {
        self.cluster.as_ref()
    }

    /// The name writes must use.
    fn target(&self, table: &str) -> String {
        match &self.cluster {
            Some(c) => format!("{c}:{table}"),
            None => table.to_string(),
        }
    }

    async fn run(&self, sql: &str) -> Result<ResultSet> {
        Ok(self.client.query_one(sql).await?)
    }

    /// Runs a write whose repetition has the same effect as running it once
    /// (REPLACE of fixed values, UPDATE to fixed values, DELETE): when its
    /// outcome is unknown it is simply run again, once.
    async fn run_idempotent(&self, sql: &str) -> Result<()> {
        match self.run(sql).await {
            Err(e) if e.outcome_unknown() => self.run(sql).await.map(drop),
            other => other.map(drop),
        }
    }

    /// Whether the metadata tables exist on this node.
    pub async fn is_initialized(&self) -> Result<bool> {
        match self.client.query_one(&format!("DESC {STATE}")).await {
            Ok(_) => Ok(true),
            Err(ClientError::Daemon { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Creates whichever metadata tables are missing here and attaches them
    /// to the user cluster. Safe to repeat: a setup interrupted half-way is
    /// completed by the next one.
    pub async fn prepare_tables(&self) -> Result<()> {
        let attached: Vec<String> = match &self.cluster {
            Some(c) => {
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
            None => Vec::new(),
        };
        let mut to_attach = Vec::new();
        for (table, ddl) in [
            (STATE, STATE_DDL),
            (PLACEMENT, PLACEMENT_DDL),
            (QUEUE, QUEUE_DDL),
        ] {
            if attached.iter().any(|t| t == table) {
                continue;
            }
            if let Err(e) = self.client.query_one(ddl).await {
                if !e
                    .daemon_message()
                    .is_some_and(|m| m.contains("already exists"))
                {
                    return Err(e.into());
                }
            }
            to_attach.push(table);
        }
        if let Some(c) = &self.cluster {
            // One statement per table, in this order: searchd lists a
            // cluster's tables in the order they were added but sorts the
            // tables of one statement, and Manticore users see PHP Buddy's
            // `system.sharding_state,system.sharding_table,system.sharding_queue`.
            for table in to_attach {
                self.run(&format!("ALTER CLUSTER {c} ADD {table}")).await?;
            }
        }
        Ok(())
    }

    // ---- state -------------------------------------------------------------

    pub async fn get(&self, key: &StateKey) -> Result<Option<Value>> {
        let set = self
            .run(&format!(
                "SELECT `value`, `updated_at` FROM {STATE} WHERE `key` = {} ORDER BY `updated_at` DESC {}",
                quote_literal(&key.render()),
                limit(1)
            ))
            .await?;
        Ok(set.text(0, "value").as_deref().and_then(decode_value))
    }

    pub async fn get_as<T: DeserializeOwned>(&self, key: &StateKey) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(v) => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{}: {e}", key.render()))),
        }
    }

    /// Every key whose name starts with `prefix`, with its value.
    pub async fn list(&self, prefix: &str) -> Result<BTreeMap<String, Value>> {
        let regex = format!("^{}", regex::escape(prefix));
        let set = self
            .run(&format!(
                "SELECT `key`, `value` FROM {STATE} WHERE REGEX(`key`, {}) {}",
                quote_literal(&regex),
                limit(PAGE)
            ))
            .await?;
        let mut out = BTreeMap::new();
        for i in 0..set.rows.len() {
            if let (Some(k), Some(v)) = (set.text(i, "key"), set.text(i, "value")) {
                if let Some(v) = decode_value(&v) {
                    out.insert(k, v);
                }
            }
        }
        Ok(out)
    }

    pub async fn list_as<T: DeserializeOwned>(&self, prefix: &str) -> Result<BTreeMap<String, T>> {
        let mut out = BTreeMap::new();
        for (k, v) in self.list(prefix).await? {
            // A value of another shape (e.g. written by another tool) is skipped, not fatal.
            if let Ok(t) = serde_json::from_value(v) {
                out.insert(k[prefix.len()..].to_string(), t);
            }
        }
        Ok(out)
    }

    /// Writes `key` atomically (one REPLACE on the key's fixed document id).
    /// When the reply is lost, the key is read back: the write is reported
    /// done only when the key holds this value, and is never repeated blindly
    /// (another writer, e.g. a new master, may have written it since).
    pub async fn put(&self, key: &StateKey, value: &impl Serialize, now_s: i64) -> Result<()> {
        let value = serde_json::to_value(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let rendered = key.render();
        let sql = format!(
            "REPLACE INTO {} (`id`, `key`, `value`, `updated_at`) VALUES ({}, {}, {}, {now_s})",
            self.target(STATE),
            doc_id(&rendered),
            quote_literal(&rendered),
            quote_literal(&encode_value(&value)),
        );
        match self.run(&sql).await {
            Ok(_) => Ok(()),
            Err(e) if e.outcome_unknown() => match self.get(key).await {
                Ok(Some(stored)) if stored == value => Ok(()),
                _ => Err(e),
            },
            Err(e) => Err(e),
        }
    }

    pub async fn delete(&self, key: &StateKey) -> Result<()> {
        self.run_idempotent(&format!(
            "DELETE FROM {} WHERE `key` = {}",
            self.target(STATE),
            quote_literal(&key.render())
        ))
        .await
    }

    // ---- queue -------------------------------------------------------------

    /// Writes new queue rows. When a batch's reply is lost, its rows are
    /// looked up by id: present, the batch is done; absent, it is written
    /// again (a multi-row INSERT takes effect as a whole or not at all).
    pub async fn enqueue(&self, rows: &[QueueRow]) -> Result<()> {
        for batch in rows.chunks(INSERT_BATCH) {
            let sql = row::insert_sql(&self.target(QUEUE), batch);
            let Err(e) = self.run(&sql).await else {
                continue;
            };
            if !e.outcome_unknown() {
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

    async fn select_rows(&self, condition: &str) -> Result<Vec<QueueRow>> {
        let set = self
            .run(&format!(
                "SELECT * FROM {QUEUE} WHERE {condition} ORDER BY `id` ASC {}",
                limit(PAGE)
            ))
            .await?;
        QueueRow::all_from_result(&set).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    /// `node`'s rows that are not processed yet, in id order.
    pub async fn pending_rows(&self, node: &NodeId) -> Result<Vec<QueueRow>> {
        self.select_rows(&format!(
            "`node` = {} AND `status` <> 'processed'",
            quote_literal(node.as_str())
        ))
        .await
    }

    pub async fn group_rows(&self, group: &str) -> Result<Vec<QueueRow>> {
        self.select_rows(&format!("`operation_group` = {}", quote_literal(group)))
            .await
    }

    /// The rows of `group` that are not processed yet.
    pub async fn unfinished_group_rows(&self, group: &str) -> Result<Vec<QueueRow>> {
        self.select_rows(&format!(
            "`operation_group` = {} AND `status` <> 'processed'",
            quote_literal(group)
        ))
        .await
    }

    /// Rows that are not processed yet, on any node.
    pub async fn unprocessed_rows(&self) -> Result<Vec<QueueRow>> {
        self.select_rows("`status` <> 'processed'").await
    }

    /// The status of each of `ids`; `None` for ids that no longer exist.
    pub async fn statuses(
        &self,
        ids: &BTreeSet<u64>,
    ) -> Result<BTreeMap<u64, Option<QueueStatus>>> {
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

    /// Records the same outcome for several rows at once.
    pub async fn set_statuses(
        &self,
        ids: &[u64],
        status: QueueStatus,
        tries: u32,
        now_ms: i64,
        duration_ms: i64,
    ) -> Result<()> {
        for batch in ids.chunks(INSERT_BATCH) {
            self.run_idempotent(&row::update_statuses_sql(
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

    pub async fn purge_group(&self, group: &str) -> Result<()> {
        self.run_idempotent(&format!(
            "DELETE FROM {} WHERE `operation_group` = {}",
            self.target(QUEUE),
            quote_literal(group)
        ))
        .await
    }

    /// The largest queue id, so a new master continues after it.
    pub async fn max_queue_id(&self) -> Result<u64> {
        let set = self
            .run(&format!(
                "SELECT `id` FROM {QUEUE} ORDER BY `id` DESC {}",
                limit(1)
            ))
            .await?;
        Ok(set.text(0, "id").and_then(|s| s.parse().ok()).unwrap_or(0))
    }

    // ---- placement ---------------------------------------------------------

    /// Placement rows, of one table or of all tables.
    pub async fn placement_rows(&self, table: Option<&TableName>) -> Result<Vec<PlacementRow>> {
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
            out.push(PlacementRow {
                cluster: set.text(i, "cluster").unwrap_or_default(),
                node: NodeId::new(set.text(i, "node").unwrap_or_default()),
                table: set.text(i, "table").unwrap_or_default(),
                shards,
            });
        }
        Ok(out)
    }

    /// Writes a table's placement: one row per node, empty MVA for nodes
    /// without shards (they still hold the wrapper). Rows get fresh ids, so
    /// a write whose reply was lost is not repeated here: the error goes to
    /// the caller, which deletes the table's rows and writes them again.
    pub async fn write_placement(&self, rows: &[PlacementRow]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let values: Vec<String> = rows
            .iter()
            .map(|r| {
                let shards: Vec<String> = r.shards.iter().map(u32::to_string).collect();
                format!(
                    "({}, {}, {}, ({}))",
                    quote_literal(&r.cluster),
                    quote_literal(r.node.as_str()),
                    quote_literal(&r.table),
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

    pub async fn delete_placement(&self, table: &TableName) -> Result<()> {
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
