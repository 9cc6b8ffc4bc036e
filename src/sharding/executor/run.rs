//! The executor task: runs this node's queue rows (spec §9, done right).
//!
//! Each pass reads this node's pending rows, the group records, the lease and
//! the rows they wait for, then runs rows one by one while `decide` allows.
//! A row is claimed (`processing`, tries + 1) before it runs, so a row found
//! `processing` after a crash is known to be uncertain and is run again —
//! every queued statement is idempotent or checked (`statement`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::client::ClientError;
use crate::ids::NodeId;
use crate::placement::Action;
use crate::sharding::clock::{now_ms, now_s};
use crate::sharding::daemon::NodeInfo;
use crate::sharding::executor::decide::{next_row, Decision};
use crate::sharding::executor::statement::{self, Kind, Verdict};
use crate::sharding::group::{GroupRecord, GroupStatus};
use crate::sharding::lease::Lease;
use crate::sharding::queue::row::{QueueRow, QueueStatus};
use crate::sharding::runtime::Shared;
use crate::sharding::state::StateKey;
use crate::sharding::store::{Store, StoreError};

/// The `row_error:<id>` state value: why a row's last attempt failed, for the
/// master (the queue table has no column for it) and for operators.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub node: NodeId,
    pub query: String,
    pub error: String,
    pub tries: u32,
    pub at_ms: i64,
}

pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut next_wake: Option<Duration> = None;
    loop {
        let sleep = next_wake.unwrap_or(shared.config.poll_interval);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(sleep) => {}
            _ = shared.wake_executor.notified() => {}
        }
        next_wake = match pass(&shared, &shutdown).await {
            Ok(wake) => wake,
            Err(e) => {
                debug!(error = %e, "queue pass failed");
                None
            }
        };
    }
}

/// Rows claimed together, then run one after another.
const CLAIM_BATCH: usize = 100;

/// One pass; returns how soon to look again when a back-off is pending.
async fn pass(
    shared: &Shared,
    shutdown: &CancellationToken,
) -> Result<Option<Duration>, StoreError> {
    let Ok(node) = shared.node().await else {
        return Ok(None);
    };
    let Some(store) = shared.store().await? else {
        return Ok(None);
    };
    let mut rows = store.pending_rows(&node.id).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let lease: Option<Lease> = store.get_as(&StateKey::MasterLease).await?;
    let groups: BTreeMap<String, GroupRecord> = store.list_as("group:").await?;
    let wait_ids: BTreeSet<u64> = rows
        .iter()
        .map(|r| r.wait_for_id)
        .filter(|id| *id != 0)
        .collect();
    let waits = store.statuses(&wait_ids).await?;
    let mut run = Run {
        shared,
        store: &store,
        node,
        done: Completions::default(),
        existing: ExistingTables::default(),
    };
    // Rows of this pass run back to back; only our own results change what
    // may run next, so the snapshot is updated in place.
    let wake = loop {
        if shutdown.is_cancelled() {
            break None;
        }
        let (batch, wake) = next_batch(
            &mut rows,
            &groups,
            &waits,
            lease.as_ref(),
            &shared.config.retry,
        );
        if batch.is_empty() {
            break wake;
        }
        match run.batch(&mut rows, &batch).await? {
            BatchEnd::Completed | BatchEnd::Failed => {}
            // The snapshot is out of date: start a fresh pass.
            BatchEnd::Withdrawn => break Some(Duration::ZERO),
        }
    };
    run.done.flush(&store).await?;
    shared.wake_coordinator.notify_one();
    Ok(wake)
}

/// The next rows that may run, as if each succeeded: up to [`CLAIM_BATCH`]
/// consecutive runnable rows of one group. With none, how soon to look again.
fn next_batch(
    rows: &mut [QueueRow],
    groups: &BTreeMap<String, GroupRecord>,
    waits: &BTreeMap<u64, Option<QueueStatus>>,
    lease: Option<&Lease>,
    policy: &crate::sharding::executor::decide::RetryPolicy,
) -> (Vec<usize>, Option<Duration>) {
    let mut batch: Vec<usize> = Vec::new();
    let mut saved: Vec<QueueStatus> = Vec::new();
    let mut wake = None;
    while batch.len() < CLAIM_BATCH {
        match next_row(rows, groups, waits, lease, policy, now_ms()) {
            Decision::Run(i) => {
                if batch
                    .first()
                    .is_some_and(|&f| rows[f].operation_group != rows[i].operation_group)
                {
                    break;
                }
                batch.push(i);
                saved.push(rows[i].status);
                rows[i].status = QueueStatus::Processed;
            }
            Decision::Wait {
                reason,
                retry_at_ms,
            } => {
                if batch.is_empty() {
                    debug!(%reason, "queue waits");
                    wake = retry_at_ms
                        .map(|at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)));
                }
                break;
            }
            Decision::Idle => break,
        }
    }
    for (&i, status) in batch.iter().zip(saved) {
        rows[i].status = status;
    }
    (batch, wake)
}

enum BatchEnd {
    Completed,
    /// A row failed; the rows after it were given back.
    Failed,
    /// The group was aborted meanwhile; the claimed rows were given back.
    Withdrawn,
}

/// What one pass works with.
struct Run<'a> {
    shared: &'a Shared,
    store: &'a Store,
    node: &'a NodeInfo,
    done: Completions,
    existing: ExistingTables,
}

/// Whether a row is claimed (`processing`, tries + 1) before it runs: when it
/// can be undone (the master must not plan a rollback while it runs), or when
/// a retry must know that an earlier attempt may have taken effect
/// (`statement::needs_attempt_record`).
fn needs_claim(row: &QueueRow) -> bool {
    !row.rollback_query.is_empty() || statement::needs_attempt_record(&row.query)
}

impl Run<'_> {
    /// Claims the rows of `batch` that need it, in one write, then runs them
    /// in order. Successes are recorded through `done`, a failure at once.
    async fn batch(
        &mut self,
        rows: &mut [QueueRow],
        batch: &[usize],
    ) -> Result<BatchEnd, StoreError> {
        let claimed: Vec<usize> = batch
            .iter()
            .copied()
            .filter(|&i| needs_claim(&rows[i]))
            .collect();
        if !claimed.is_empty() {
            self.done.flush(self.store).await?;
            self.set_each(rows, &claimed, |r| (QueueStatus::Processing, r.tries + 1))
                .await?;
            // The master plans a rollback only once no row of the group is
            // `processing`; so after the claim, one look at the group tells
            // whether these rows may still take effect.
            let group: Option<GroupRecord> = self
                .store
                .get_as(&StateKey::Group(rows[batch[0]].operation_group.clone()))
                .await?;
            if group.is_none_or(|g| g.status != GroupStatus::Committed) {
                self.set_each(rows, &claimed, |r| (r.status, r.tries))
                    .await?;
                return Ok(BatchEnd::Withdrawn);
            }
        }
        for (k, &i) in batch.iter().enumerate() {
            if !self.run_row(&mut rows[i]).await? {
                let rest: Vec<usize> = batch[k + 1..]
                    .iter()
                    .copied()
                    .filter(|j| claimed.contains(j))
                    .collect();
                self.set_each(rows, &rest, |r| (r.status, r.tries)).await?;
                return Ok(BatchEnd::Failed);
            }
            if self.done.due() {
                self.done.flush(self.store).await?;
                self.shared.wake_coordinator.notify_one();
            }
        }
        Ok(BatchEnd::Completed)
    }

    /// Writes `(status, tries)` computed from each row's current values.
    async fn set_each(
        &self,
        rows: &[QueueRow],
        which: &[usize],
        value: impl Fn(&QueueRow) -> (QueueStatus, u32),
    ) -> Result<(), StoreError> {
        let mut by_value: BTreeMap<(&str, u32), (QueueStatus, Vec<u64>)> = BTreeMap::new();
        for &i in which {
            let (status, tries) = value(&rows[i]);
            by_value
                .entry((status.as_str(), tries))
                .or_insert((status, Vec::new()))
                .1
                .push(rows[i].id);
        }
        for ((_, tries), (status, ids)) in by_value {
            self.store
                .set_statuses(&ids, status, tries, now_ms(), 0)
                .await?;
        }
        Ok(())
    }

    /// Runs one row and updates it in place; `false` when it failed.
    async fn run_row(&mut self, row: &mut QueueRow) -> Result<bool, StoreError> {
        let tries = row.tries + 1;
        let started = Instant::now();
        let outcome = execute(self.shared, self.node, row, &mut self.existing).await;
        let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        row.tries = tries;
        row.updated_at = now_ms();
        let failure = match outcome {
            Ok(()) => {
                debug!(id = row.id, group = %row.operation_group, query = %row.query, "queue row processed");
                self.done.add(row.id, tries, duration);
                row.status = QueueStatus::Processed;
                return Ok(true);
            }
            Err(failure) => failure,
        };
        warn!(id = row.id, group = %row.operation_group, node = %self.node.id, tries, query = %row.query,
            error = %failure.message, "queue row failed");
        let record = RowError {
            node: self.node.id.clone(),
            query: row.query.clone(),
            error: failure.message.clone(),
            tries,
            at_ms: now_ms(),
        };
        self.store
            .put(&StateKey::RowError(row.id), &record, now_s())
            .await?;
        // A permanent failure uses up the remaining tries at once.
        if !failure.transient {
            row.tries = tries.max(self.shared.config.retry.max_tries);
        }
        row.status = QueueStatus::Error;
        self.store
            .set_statuses(&[row.id], QueueStatus::Error, row.tries, now_ms(), duration)
            .await?;
        Ok(false)
    }
}

/// Rows processed but not yet recorded. A big group runs thousands of rows;
/// recording them in batches saves one replicated write per row, and
/// re-running a row whose record was lost is harmless (rows are idempotent).
#[derive(Default)]
struct Completions {
    /// (id, tries, duration ms)
    rows: Vec<(u64, u32, i64)>,
    since: Option<Instant>,
}

impl Completions {
    /// Rows of other nodes may wait for these: keep the delay short.
    const MAX_DELAY: Duration = Duration::from_millis(50);
    const MAX_ROWS: usize = 200;

    fn add(&mut self, id: u64, tries: u32, duration: i64) {
        self.since.get_or_insert_with(Instant::now);
        self.rows.push((id, tries, duration));
    }

    fn due(&self) -> bool {
        self.rows.len() >= Self::MAX_ROWS
            || self.since.is_some_and(|t| t.elapsed() >= Self::MAX_DELAY)
    }

    async fn flush(&mut self, store: &Store) -> Result<(), StoreError> {
        let mut by_tries: BTreeMap<u32, (Vec<u64>, i64)> = BTreeMap::new();
        for (id, tries, duration) in self.rows.drain(..) {
            let entry = by_tries.entry(tries).or_default();
            entry.0.push(id);
            entry.1 = entry.1.max(duration);
        }
        self.since = None;
        for (tries, (ids, duration)) in by_tries {
            store
                .set_statuses(&ids, QueueStatus::Processed, tries, now_ms(), duration)
                .await?;
        }
        Ok(())
    }
}

/// The tables of the `system` database, read once per pass when a shard's
/// first attempt needs to know whether its table was there before (one
/// `SHOW TABLES` instead of a `DESC` per shard).
#[derive(Default)]
struct ExistingTables {
    tables: Option<BTreeSet<String>>,
}

impl ExistingTables {
    async fn contains(&mut self, shared: &Shared, table: &str) -> Result<bool, Failure> {
        if self.tables.is_none() {
            let set = shared.client.query_one("SHOW TABLES FROM system").await?;
            self.tables = Some(
                (0..set.rows.len())
                    .filter_map(|i| set.text(i, "Table"))
                    .collect(),
            );
        }
        Ok(self.tables.as_ref().is_some_and(|t| t.contains(table)))
    }

    fn created(&mut self, table: &str) {
        if let Some(tables) = self.tables.as_mut() {
            tables.insert(table.to_string());
        }
    }
}

struct Failure {
    message: String,
    transient: bool,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self {
            transient: e.is_transient(),
            message: e.to_string(),
        }
    }
}

async fn execute(
    shared: &Shared,
    node: &NodeInfo,
    row: &QueueRow,
    existing: &mut ExistingTables,
) -> Result<(), Failure> {
    match Action::from_query_text(&row.query) {
        Some(Action::Noop) => Ok(()),
        Some(Action::VerifyRowCount { table, source }) => {
            verify_row_count(shared, &table, &source).await
        }
        Some(Action::Sql(_)) | None => execute_sql(shared, node, row, existing).await,
    }
}

async fn execute_sql(
    shared: &Shared,
    node: &NodeInfo,
    row: &QueueRow,
    existing: &mut ExistingTables,
) -> Result<(), Failure> {
    let prepared = statement::prepare(&row.query);
    if let (Some(dir), Some(data_dir)) = (&prepared.path, &node.data_dir) {
        ensure_cluster_dir(data_dir, dir);
    }
    // First attempt of a shard creation: `IF NOT EXISTS` would silently adopt
    // a table that was there before (wrong schema, foreign data). Only a retry
    // may find our own table from an attempt whose outcome was unknown.
    if let Kind::CreateShard { table } = &prepared.kind {
        if row.tries == 0 && existing.contains(shared, table).await? {
            return Err(Failure::permanent(format!(
                "table '{table}': CREATE TABLE failed: table '{table}' already exists"
            )));
        }
    }
    let err = match shared.client.query_one(&prepared.sql).await {
        Ok(_) => {
            if let Kind::CreateShard { table } = &prepared.kind {
                existing.created(table);
            }
            return Ok(());
        }
        Err(e) => e,
    };
    let Some(message) = err.daemon_message() else {
        return Err(err.into());
    };
    match statement::judge(&prepared.kind, message) {
        Verdict::AlreadyDone => Ok(()),
        Verdict::Transient => Err(Failure {
            message: message.to_string(),
            transient: true,
        }),
        Verdict::Permanent => Err(Failure::permanent(message)),
        Verdict::CheckExisting => {
            let Kind::CreateWrapper { table } = &prepared.kind else {
                return Err(Failure::permanent(message));
            };
            if row.tries > 0 && is_shard_wrapper(shared, table).await {
                Ok(())
            } else {
                Err(Failure::permanent(message))
            }
        }
    }
}

async fn is_shard_wrapper(shared: &Shared, table: &str) -> bool {
    match shared
        .client
        .query_one(&format!("SHOW CREATE TABLE {table} OPTION force=1"))
        .await
    {
        Ok(set) => set
            .text(0, "Create Table")
            .is_some_and(|ddl| ddl.contains("type='shard'")),
        Err(_) => false,
    }
}

/// `'<name>' as path` needs `<data_dir>/<name>` to exist (spec §9.3). The
/// daemon runs on this host (it started us), so the directory can be made
/// here; when that fails the statement reports the real problem.
fn ensure_cluster_dir(data_dir: &Path, name: &str) {
    if name.contains('/') || name.contains("..") {
        return;
    }
    let dir = data_dir.join(name);
    if !dir.is_dir() {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            info!(dir = %dir.display(), error = %e, "cannot create cluster directory");
        }
    }
}

async fn count_rows(shared: &Shared, node: Option<&NodeId>, table: &str) -> Result<u64, Failure> {
    let client = match node {
        Some(n) => shared.client.for_node(n),
        None => shared.client.clone(),
    };
    let set = client
        .query_one(&format!("SELECT COUNT(*) AS c FROM {table}"))
        .await?;
    set.text(0, "c")
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Failure::permanent(format!("cannot count rows of {table}")))
}

/// The copy on this node must hold as many rows as the source's before the
/// source may be retired.
async fn verify_row_count(shared: &Shared, table: &str, source: &NodeId) -> Result<(), Failure> {
    let here = count_rows(shared, None, table).await?;
    let there = count_rows(shared, Some(source), table).await?;
    if here == there {
        Ok(())
    } else {
        Err(Failure {
            message: format!("{table}: {here} rows here, {there} on {source}"),
            transient: true,
        })
    }
}
