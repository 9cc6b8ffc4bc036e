//! The sharding metadata, behind one small trait. [`SqlStore`] keeps it where
//! PHP Buddy does, in `system.sharding_{state,table,queue}` on the local
//! daemon; unit tests use an in-memory store.
//!
//! What is persisted, and why (the record types are in `records`):
//! * `system.sharding_state` — key/value: the user cluster the metadata lives
//!   in, the master lease, node registrations, each table's create/drop
//!   lifecycle (`table:<t>`, also how a non-master node hands a CREATE/DROP
//!   to the master and learns its outcome), the commit record of every
//!   operation group (`group:<g>`) and why queue rows failed.
//! * `system.sharding_table` — the committed placement.
//! * `system.sharding_queue` — the per-node DDL queues.
//!
//! Everything else (roles, the election clock, the master's deadlines) is
//! rebuilt in memory after a restart.

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;

use crate::client::ClientError;
use crate::ids::{NodeId, TableName};
use crate::sharding::records::{
    ControlRequest, DrainRecord, GroupName, GroupRecord, Lease, PlacementRow, QueueRow,
    QueueStatus, Registration, RowFailure, Scope, TableState,
};

#[cfg(test)]
pub mod memory;
mod sql;

pub use sql::{SqlStore, PLACEMENT, QUEUE, STATE};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("the sharding metadata on this node is damaged ({0}); compare SHOW SHARDING STATUS on another node")]
    Corrupt(String),
    /// A failpoint on the way to the metadata was set to fail.
    #[error(transparent)]
    Injected(#[from] crate::failpoint::Injected),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Client(e) if e.is_transient())
    }
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Reads and writes of the sharding metadata, typed.
#[async_trait]
pub trait MetaStore: Send + Sync {
    /// Where the metadata lives.
    fn scope(&self) -> &Scope;

    // ---- setup ---------------------------------------------------------------

    /// Whether the metadata tables exist on this node.
    async fn is_initialized(&self) -> Result<bool>;
    /// Creates whichever metadata tables are missing and attaches them to
    /// the user cluster; safe to repeat.
    async fn prepare_tables(&self) -> Result<()>;
    /// The `cluster` key: written last by the setup, it marks the metadata
    /// as ready (`None` until then).
    async fn ready_scope(&self) -> Result<Option<Scope>>;
    async fn put_ready_scope(&self, scope: &Scope) -> Result<()>;
    async fn put_cluster_hash(&self, hash: &str) -> Result<()>;

    // ---- master and nodes ------------------------------------------------------

    async fn lease(&self) -> Result<Option<Lease>>;
    async fn put_lease(&self, lease: &Lease) -> Result<()>;
    /// Buddy's plain `master` key, kept for people and PHP tools.
    async fn put_master(&self, node: &NodeId) -> Result<()>;
    async fn put_registration(&self, node: &NodeId, registration: &Registration) -> Result<()>;
    /// Every registered node.
    async fn registrations(&self) -> Result<BTreeMap<NodeId, Registration>>;

    // ---- tables and groups -------------------------------------------------------

    async fn table(&self, table: &TableName) -> Result<Option<TableState>>;
    /// Every `table:<t>` value that reads as a table state.
    async fn tables(&self) -> Result<BTreeMap<TableName, TableState>>;
    async fn put_table(&self, table: &TableName, state: &TableState) -> Result<()>;
    async fn delete_table(&self, table: &TableName) -> Result<()>;

    async fn group(&self, group: &GroupName) -> Result<Option<GroupRecord>>;
    /// Every `group:<g>` value that reads as a group record.
    async fn groups(&self) -> Result<BTreeMap<GroupName, GroupRecord>>;
    async fn put_group(&self, group: &GroupName, record: &GroupRecord) -> Result<()>;

    /// Every `rebalance:<t>` value that reads as an operator's request.
    async fn controls(&self) -> Result<BTreeMap<TableName, ControlRequest>>;
    async fn control(&self, table: &TableName) -> Result<Option<ControlRequest>>;
    async fn put_control(&self, table: &TableName, request: &ControlRequest) -> Result<()>;
    async fn delete_control(&self, table: &TableName) -> Result<()>;

    /// Every node an operator drained (`drain:<node>`).
    async fn drained(&self) -> Result<BTreeMap<NodeId, DrainRecord>>;
    async fn put_drain(&self, node: &NodeId, record: &DrainRecord) -> Result<()>;
    async fn delete_drain(&self, node: &NodeId) -> Result<()>;

    async fn row_failure(&self, row: u64) -> Result<Option<RowFailure>>;
    async fn put_row_failure(&self, row: u64, failure: &RowFailure) -> Result<()>;

    // ---- queue -------------------------------------------------------------------------

    async fn enqueue(&self, rows: &[QueueRow]) -> Result<()>;
    /// `node`'s rows that are not processed yet, in id order.
    async fn pending_rows(&self, node: &NodeId) -> Result<Vec<QueueRow>>;
    /// Every row of `group`, in id order.
    async fn group_rows(&self, group: &GroupName) -> Result<Vec<QueueRow>>;
    /// Rows that are not processed yet, on any node, in id order.
    async fn unprocessed_rows(&self) -> Result<Vec<QueueRow>>;
    /// The status of each of `ids`; `None` for ids that no longer exist.
    async fn statuses(&self, ids: &BTreeSet<u64>) -> Result<BTreeMap<u64, Option<QueueStatus>>>;
    /// Records the same outcome for several rows at once.
    async fn set_statuses(
        &self,
        ids: &[u64],
        status: QueueStatus,
        tries: u32,
        duration_ms: i64,
    ) -> Result<()>;
    /// The largest queue id, so a new master continues after it.
    async fn max_queue_id(&self) -> Result<u64>;
    /// Removes every trace of a group: its rows, their failure records, and
    /// its commit record.
    async fn purge_group(&self, group: &GroupName) -> Result<()>;

    // ---- placement -----------------------------------------------------------------------

    /// Placement rows, of one table or of all tables.
    async fn placement_rows(&self, table: Option<&TableName>) -> Result<Vec<PlacementRow>>;
    /// Replaces the placement of `table` with `rows`.
    async fn replace_placement(&self, table: &TableName, rows: &[PlacementRow]) -> Result<()>;
    async fn delete_placement(&self, table: &TableName) -> Result<()>;
}
