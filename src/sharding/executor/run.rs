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
use crate::sharding::group::GroupRecord;
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
    let mut waits = store.statuses(&wait_ids).await?;
    // Rows of this pass run back to back; only our own results change what
    // may run next, so the snapshot is updated in place.
    while !shutdown.is_cancelled() {
        match next_row(
            &rows,
            &groups,
            &waits,
            lease.as_ref(),
            &shared.config.retry,
            now_ms(),
        ) {
            Decision::Run(i) => {
                let (status, tries) = run_row(shared, &store, node, &rows[i]).await?;
                rows[i].status = status;
                rows[i].tries = tries;
                rows[i].updated_at = now_ms();
                if let Some(w) = waits.get_mut(&rows[i].id) {
                    *w = Some(status);
                }
                shared.wake_coordinator.notify_one();
            }
            Decision::Wait {
                reason,
                retry_at_ms,
            } => {
                debug!(%reason, "queue waits");
                let wake = retry_at_ms
                    .map(|at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)));
                return Ok(wake);
            }
            Decision::Idle => return Ok(None),
        }
    }
    Ok(None)
}

/// Runs one row and records its outcome; returns the status and tries written.
async fn run_row(
    shared: &Shared,
    store: &Store,
    node: &NodeInfo,
    row: &QueueRow,
) -> Result<(QueueStatus, u32), StoreError> {
    let tries = row.tries + 1;
    store
        .set_status(row.id, QueueStatus::Processing, tries, now_ms(), 0)
        .await?;
    let started = Instant::now();
    let outcome = execute(shared, node, row).await;
    let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let status = match &outcome {
        Ok(()) => {
            debug!(id = row.id, group = %row.operation_group, query = %row.query, "queue row processed");
            QueueStatus::Processed
        }
        Err(failure) => {
            warn!(id = row.id, group = %row.operation_group, node = %node.id, tries, query = %row.query,
                error = %failure.message, "queue row failed");
            let record = RowError {
                node: node.id.clone(),
                query: row.query.clone(),
                error: failure.message.clone(),
                tries,
                at_ms: now_ms(),
            };
            store
                .put(&StateKey::RowError(row.id), &record, now_s())
                .await?;
            QueueStatus::Error
        }
    };
    // A permanent failure uses up the remaining tries at once.
    let tries = match &outcome {
        Err(f) if !f.transient => tries.max(shared.config.retry.max_tries),
        _ => tries,
    };
    store
        .set_status(row.id, status, tries, now_ms(), duration)
        .await?;
    Ok((status, tries))
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

async fn execute(shared: &Shared, node: &NodeInfo, row: &QueueRow) -> Result<(), Failure> {
    match Action::from_query_text(&row.query) {
        Some(Action::Noop) => Ok(()),
        Some(Action::VerifyRowCount { table, source }) => {
            verify_row_count(shared, &table, &source).await
        }
        Some(Action::Sql(_)) | None => execute_sql(shared, node, row).await,
    }
}

async fn execute_sql(shared: &Shared, node: &NodeInfo, row: &QueueRow) -> Result<(), Failure> {
    let prepared = statement::prepare(&row.query);
    if let (Some(dir), Some(data_dir)) = (&prepared.path, &node.data_dir) {
        ensure_cluster_dir(data_dir, dir);
    }
    // First attempt of a shard creation: `IF NOT EXISTS` would silently adopt
    // a table that was there before (wrong schema, foreign data). Only a retry
    // may find our own table from an attempt whose outcome was unknown.
    if let Kind::CreateShard { table } = &prepared.kind {
        if row.tries == 0
            && shared
                .client
                .query_one(&format!("DESC {table}"))
                .await
                .is_ok()
        {
            return Err(Failure::permanent(format!(
                "table '{table}': CREATE TABLE failed: table '{table}' already exists"
            )));
        }
    }
    let err = match shared.client.query_one(&prepared.sql).await {
        Ok(_) => return Ok(()),
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
