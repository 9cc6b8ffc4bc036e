//! The executor task: runs this node's queue rows (spec §9, done right).
//!
//! Each pass reads this node's pending rows, the group records, the lease and
//! the rows they wait for, then runs rows one by one while `decide` allows.
//! A row is claimed (`processing`, tries + 1) before it runs, so a row found
//! `processing` after a crash is known to be uncertain and is run again —
//! every queued statement is idempotent or checked (`verdict`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::client::ClientError;
use crate::failpoint;
use crate::ids::NodeId;
use crate::placement::{Action, Ddl, ShardTable};
use crate::sharding::clock::now_ms;
use crate::sharding::config::RetryPolicy;
use crate::sharding::daemon::{self, LocalNode, NodeInfo, WrapperGate};
use crate::sharding::executor::decide::{next_row, Decision};
use crate::sharding::executor::verdict::{self, Verdict};
use crate::sharding::metadata::Metadata;
use crate::sharding::node::NodeApi;
use crate::sharding::records::{
    GroupName, GroupRecord, GroupStatus, Lease, QueueRow, QueueStatus, RowFailure, TransitionError,
};
use crate::sharding::store::{MetaStore, StoreError};
use crate::sharding::ticker::{Signals, Ticker};

/// What the executor task works with.
pub struct Executor {
    pub node: LocalNode,
    pub metadata: Metadata,
    pub signals: Arc<Signals>,
    pub poll: Duration,
    pub retry: RetryPolicy,
}

pub async fn run(task: Executor, shutdown: CancellationToken) {
    let ticker = Ticker::new(task.poll, &task.signals.executor, &shutdown);
    let mut due = None;
    while ticker.next(due).await {
        due = match task.pass(&shutdown).await {
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

impl Executor {
    /// One pass; returns how soon to look again when a back-off is pending.
    async fn pass(&self, shutdown: &CancellationToken) -> Result<Option<Duration>, StoreError> {
        let Ok(node) = self.node.info().await else {
            return Ok(None);
        };
        let Some(store) = self.metadata.store().await? else {
            return Ok(None);
        };
        if store.pending_rows(&node.id).await?.is_empty() {
            return Ok(None);
        }
        // As the master does: run nothing decided from rows this node's
        // copy may hold stale (cut off from the quorum, or rejoining). An
        // idle pass decides nothing, so only a busy one asks (and reads its
        // rows again within the view).
        let api = &**self.node.api();
        let Some(view) = daemon::current_view(api, store.scope()).await? else {
            return Ok(None);
        };
        let mut rows = store.pending_rows(&node.id).await?;
        let lease = store.lease().await?;
        let groups = store.groups().await?;
        let wait_ids: BTreeSet<u64> = rows
            .iter()
            .map(|r| r.wait_for_id)
            .filter(|id| *id != 0)
            .collect();
        let waits = store.statuses(&wait_ids).await?;
        if daemon::current_view(api, store.scope()).await?.as_ref() != Some(&view) {
            return Ok(Some(Duration::ZERO));
        }
        let snapshot = PassSnapshot {
            groups: &groups,
            waits: &waits,
            lease: lease.as_ref(),
            retry: &self.retry,
        };
        let mut run = Run {
            api,
            wrappers: self.node.wrappers(),
            store: &*store,
            node,
            retry: &self.retry,
            signals: &self.signals,
            done: Completions::default(),
            existing: ExistingTables::default(),
        };
        // Rows of this pass run back to back; only our own results change
        // what may run next, so the snapshot is updated in place.
        let wake = loop {
            if shutdown.is_cancelled() {
                break None;
            }
            let (batch, wake) = snapshot.next_batch(&mut rows);
            if batch.is_empty() {
                break wake;
            }
            match run.batch(&mut rows, &batch).await? {
                BatchEnd::Completed | BatchEnd::Failed => {}
                // The snapshot is out of date: start a fresh pass.
                BatchEnd::Withdrawn => break Some(Duration::ZERO),
            }
        };
        run.done.flush(&*store).await?;
        self.signals.master.notify_one();
        Ok(wake)
    }
}

/// What a pass decides from.
struct PassSnapshot<'a> {
    groups: &'a BTreeMap<GroupName, GroupRecord>,
    waits: &'a BTreeMap<u64, Option<QueueStatus>>,
    lease: Option<&'a Lease>,
    retry: &'a RetryPolicy,
}

impl PassSnapshot<'_> {
    /// The next rows that may run, as if each succeeded: up to
    /// [`CLAIM_BATCH`] consecutive runnable rows of one group. With none, how
    /// soon to look again.
    fn next_batch(&self, rows: &mut [QueueRow]) -> (Vec<usize>, Option<Duration>) {
        let mut batch: Vec<usize> = Vec::new();
        let mut saved: Vec<QueueStatus> = Vec::new();
        let mut wake = None;
        while batch.len() < CLAIM_BATCH {
            match next_row(
                rows,
                self.groups,
                self.waits,
                self.lease,
                self.retry,
                now_ms(),
            ) {
                Decision::Run(i) => {
                    if batch
                        .first()
                        .is_some_and(|&f| rows[f].group != rows[i].group)
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
                        wake = retry_at_ms.map(|at| {
                            Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0))
                        });
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
}

enum BatchEnd {
    Completed,
    /// A row failed; the rows after it were given back.
    Failed,
    /// The group was aborted or paused meanwhile; the claimed rows not run
    /// yet were given back.
    Withdrawn,
}

/// What one pass works with.
struct Run<'a> {
    api: &'a dyn NodeApi,
    wrappers: &'a WrapperGate,
    store: &'a dyn MetaStore,
    node: &'a NodeInfo,
    retry: &'a RetryPolicy,
    signals: &'a Signals,
    done: Completions,
    existing: ExistingTables,
}

/// Whether a row may take seconds: everything that changes a replication
/// cluster (a join, a deletion and attaching are 1–5 s on real searchd,
/// `golden/facts.md` §7–8) or reads whole copies. Creating and dropping
/// tables and wrappers takes milliseconds.
fn may_be_slow(action: &Action) -> bool {
    !matches!(
        action,
        Action::Noop
            | Action::ExpectAbsent { .. }
            | Action::Ddl(
                Ddl::CreateShard { .. }
                    | Ddl::DropShard { .. }
                    | Ddl::CreateWrapper { .. }
                    | Ddl::DropWrapper { .. }
                    | Ddl::SwapWrapper { .. }
            )
    )
}

/// Whether a row is claimed (`processing`, tries + 1) before it runs: when it
/// can be undone (the master must not plan a rollback while it runs), or when
/// a retry must know that an earlier attempt may have taken effect.
fn needs_claim(row: &QueueRow) -> bool {
    row.rollback.is_some()
        || matches!(&row.action, Action::Ddl(ddl) if verdict::needs_attempt_record(ddl))
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
            self.set_each(rows, &claimed, |r| Ok((r.status.claim()?, r.tries + 1)))
                .await?;
            // The master plans a rollback only once no row of the group is
            // `processing`; so after the claim, one look at the group tells
            // whether these rows may still take effect.
            let group = self.store.group(&rows[batch[0]].group).await?;
            if group.is_none_or(|g| g.status != GroupStatus::Committed || g.is_paused()) {
                self.set_each(rows, &claimed, |r| Ok((r.status, r.tries)))
                    .await?;
                return Ok(BatchEnd::Withdrawn);
            }
        }
        for (k, &i) in batch.iter().enumerate() {
            // Other nodes' rows may wait for what is done already: record it
            // before a statement that can take seconds.
            if may_be_slow(&rows[i].action) && !self.done.is_empty() {
                self.done.flush(self.store).await?;
                self.signals.master.notify_one();
            }
            // Before a statement that can take seconds, one more look at the
            // group: a paused (or aborted) group starts nothing more; the
            // statements it ran are not interrupted.
            if k > 0 && may_be_slow(&rows[i].action) {
                let group = self.store.group(&rows[i].group).await?;
                if group.is_none_or(|g| g.status != GroupStatus::Committed || g.is_paused()) {
                    let rest: Vec<usize> = batch[k..]
                        .iter()
                        .copied()
                        .filter(|j| claimed.contains(j))
                        .collect();
                    self.set_each(rows, &rest, |r| Ok((r.status, r.tries)))
                        .await?;
                    return Ok(BatchEnd::Withdrawn);
                }
            }
            if !self.run_row(&mut rows[i]).await? {
                let rest: Vec<usize> = batch[k + 1..]
                    .iter()
                    .copied()
                    .filter(|j| claimed.contains(j))
                    .collect();
                self.set_each(rows, &rest, |r| Ok((r.status, r.tries)))
                    .await?;
                return Ok(BatchEnd::Failed);
            }
            // A cluster statement is what other nodes' rows wait for: its
            // completion is recorded at once.
            if self.done.due() || may_be_slow(&rows[i].action) {
                self.done.flush(self.store).await?;
                self.signals.master.notify_one();
            }
        }
        Ok(BatchEnd::Completed)
    }

    /// Writes `(status, tries)` computed from each row's current values.
    async fn set_each(
        &self,
        rows: &[QueueRow],
        which: &[usize],
        value: impl Fn(&QueueRow) -> Result<(QueueStatus, u32), TransitionError>,
    ) -> Result<(), StoreError> {
        let mut by_value: BTreeMap<(QueueStatus, u32), Vec<u64>> = BTreeMap::new();
        for &i in which {
            let status = value(&rows[i]).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            by_value.entry(status).or_default().push(rows[i].id);
        }
        for ((status, tries), ids) in by_value {
            self.store.set_statuses(&ids, status, tries, 0).await?;
        }
        Ok(())
    }

    /// Runs one row and updates it in place; `false` when it failed.
    async fn run_row(&mut self, row: &mut QueueRow) -> Result<bool, StoreError> {
        let tries = row.tries + 1;
        let started = Instant::now();
        let injected = |i: failpoint::Injected| Failure::permanent(i.text);
        let outcome = match failpoint::hit(failpoint::EXECUTOR_BEFORE_RUN).await {
            Ok(()) => match self.execute(row).await {
                Ok(()) => failpoint::hit(failpoint::EXECUTOR_AFTER_RUN)
                    .await
                    .map_err(injected),
                failed => failed,
            },
            Err(i) => Err(injected(i)),
        };
        crate::metrics::hooks::step_ran(&row.action, outcome.is_ok(), started.elapsed());
        let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        row.tries = tries;
        row.updated_at = now_ms();
        let corrupt = |e: TransitionError| StoreError::Corrupt(e.to_string());
        let failure = match outcome {
            Ok(()) => {
                debug!(id = row.id, group = %row.group, query = %row.action.to_query_text(), "queue row processed");
                self.done.add(row.id, tries, duration);
                row.status = row.status.attempted(true).map_err(corrupt)?;
                return Ok(true);
            }
            Err(failure) => failure,
        };
        let query = row.action.to_query_text();
        warn!(id = row.id, group = %row.group, node = %self.node.id, tries, query = %query,
            error = %failure.message, "queue row failed");
        let record = RowFailure {
            node: self.node.id.clone(),
            query,
            error: failure.message.clone(),
            tries,
            at_ms: now_ms(),
        };
        self.store.put_row_failure(row.id, &record).await?;
        // A permanent failure uses up the remaining tries at once; waiting
        // for a cluster never does.
        if !failure.transient {
            row.tries = tries.max(self.retry.max_tries);
        } else if failure.waiting {
            row.tries = tries.min(self.retry.max_tries.saturating_sub(1));
        }
        row.status = row.status.attempted(false).map_err(corrupt)?;
        self.store
            .set_statuses(&[row.id], QueueStatus::Error, row.tries, duration)
            .await?;
        Ok(false)
    }

    async fn execute(&mut self, row: &QueueRow) -> Result<(), Failure> {
        match &row.action {
            Action::Noop => Ok(()),
            // Runs before anything can ship the table here (the ship waits
            // for this row), so a table of that name is always foreign.
            Action::ExpectAbsent { table } => {
                if self.existing.contains(self.api, table).await? {
                    return Err(foreign_shard(
                        ShardTable::parse(table).map_or(0, |s| s.shard),
                    ));
                }
                Ok(())
            }
            Action::VerifyCopy { table, source } => verify_copy(self.api, table, source).await,
            Action::Ddl(ddl) => self.execute_ddl(ddl, row.tries).await,
        }
    }

    async fn execute_ddl(&mut self, ddl: &Ddl, tries: u32) -> Result<(), Failure> {
        if let (Some(dir), Some(data_dir)) = (ddl.cluster_path(), &self.node.data_dir) {
            ensure_cluster_dir(data_dir, dir.as_str());
        }
        // First attempt of a shard creation: `IF NOT EXISTS` would silently
        // adopt a table that was there before (wrong schema, foreign data).
        // Only a retry may find our own table from an attempt whose outcome
        // was unknown.
        if let Ddl::CreateShard { shard, .. } = ddl {
            if tries == 0 && self.existing.contains(self.api, &shard.to_string()).await? {
                return Err(foreign_shard(shard.shard));
            }
        }
        let swapping = match ddl {
            Ddl::SwapWrapper { .. } => Some(self.wrappers.swap().await),
            _ => None,
        };
        let result = run_all(self.api, &verdict::statement(ddl)).await;
        drop(swapping);
        let err = match result {
            Ok(()) => {
                if let Ddl::CreateShard { shard, .. } = ddl {
                    self.existing.created(&shard.to_string());
                }
                return Ok(());
            }
            Err(e) => e,
        };
        let Some(message) = err.daemon_message() else {
            return Err(err.into());
        };
        if let Ddl::DropShard { shard } = ddl {
            if message.contains("unable to drop a cluster table") {
                return self.leave_cluster_then_drop(ddl, shard, message).await;
            }
        }
        match verdict::judge(ddl, message) {
            Verdict::CheckExisting => match ddl {
                Ddl::CreateWrapper { table, .. }
                    if tries > 0 && is_shard_wrapper(self.api, table.as_str()).await =>
                {
                    Ok(())
                }
                Ddl::CreateWrapper { table, .. } => Err(Failure::permanent(format!(
                    "a table named '{table}' already exists there and is not shardbuddy's; \
                     drop or rename it there and retry"
                ))),
                _ => Err(Failure::permanent(message)),
            },
            judged => outcome(judged, message),
        }
    }

    /// A shard still in a replication cluster here refuses `DROP TABLE`
    /// (`unable to drop a cluster table`): this node was away while a DROP
    /// or a move detached it on the others, or deleted the cluster it
    /// emptied. The shard leaves the cluster here first; a cluster that
    /// holds nothing more and that no other node runs is deleted here, then
    /// the shard is dropped. While the node is still rejoining, or the
    /// cluster is not primary here (the master makes a cluster its other
    /// members deleted writable again), the row waits rather than fails:
    /// the DROP it belongs to only moves forward.
    async fn leave_cluster_then_drop(
        &mut self,
        ddl: &Ddl,
        shard: &ShardTable,
        refusal: &str,
    ) -> Result<(), Failure> {
        let wait = |f: Failure| Failure::waiting(f.message);
        let name = shard.to_string();
        let reports = daemon::cluster_reports(self.api).await?;
        let Some(report) = reports.iter().find(|r| r.tables.contains(&name)) else {
            return Err(Failure::waiting(refusal));
        };
        let cluster = report.name.clone();
        let detach = Ddl::AlterClusterDrop {
            cluster: cluster.clone(),
            shards: vec![shard.clone()],
        };
        self.run_judged(&detach).await.map_err(wait)?;
        let alone = daemon::cluster_health(self.api, &cluster)
            .await?
            .is_some_and(|h| h.membership.active.len() <= 1 && h.size <= 1);
        if alone && report.tables.iter().all(|t| *t == name) {
            self.run_judged(&Ddl::DeleteCluster { cluster })
                .await
                .map_err(wait)?;
        }
        self.run_judged(ddl).await.map_err(wait)
    }

    /// Runs `ddl` once, its error judged as for a queue row.
    async fn run_judged(&mut self, ddl: &Ddl) -> Result<(), Failure> {
        let err = match run_all(self.api, &verdict::statement(ddl)).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        let Some(message) = err.daemon_message() else {
            return Err(err.into());
        };
        outcome(verdict::judge(ddl, message), message)
    }
}

/// What a judged error means for the row.
fn outcome(verdict: Verdict, message: &str) -> Result<(), Failure> {
    match verdict {
        Verdict::AlreadyDone => Ok(()),
        Verdict::Transient => Err(Failure::transient(message)),
        Verdict::Waiting => Err(Failure::waiting(message)),
        Verdict::Permanent | Verdict::CheckExisting => Err(Failure::permanent(message)),
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

    fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    fn due(&self) -> bool {
        self.rows.len() >= Self::MAX_ROWS
            || self.since.is_some_and(|t| t.elapsed() >= Self::MAX_DELAY)
    }

    async fn flush(&mut self, store: &dyn MetaStore) -> Result<(), StoreError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        failpoint::hit(failpoint::EXECUTOR_BEFORE_RECORD).await?;
        let mut by_tries: BTreeMap<u32, (Vec<u64>, i64)> = BTreeMap::new();
        for (id, tries, duration) in self.rows.drain(..) {
            let entry = by_tries.entry(tries).or_default();
            entry.0.push(id);
            entry.1 = entry.1.max(duration);
        }
        self.since = None;
        for (tries, (ids, duration)) in by_tries {
            store
                .set_statuses(&ids, QueueStatus::Processed, tries, duration)
                .await?;
        }
        failpoint::hit(failpoint::EXECUTOR_AFTER_RECORD).await?;
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
    async fn contains(&mut self, api: &dyn NodeApi, table: &str) -> Result<bool, Failure> {
        if self.tables.is_none() {
            let set = api.query_one("SHOW TABLES FROM system").await?;
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

/// A table of a shard's name that was there before shardbuddy made or
/// shipped the shard.
fn foreign_shard(shard: u32) -> Failure {
    Failure::permanent(format!(
        "a table for shard {shard} already exists there and was not made by shardbuddy; \
         remove it (SHOW TABLES FROM system lists it) and retry"
    ))
}

struct Failure {
    message: String,
    transient: bool,
    /// Waits for the cluster: the attempts never run out.
    waiting: bool,
}

impl Failure {
    fn permanent(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: false,
            waiting: false,
        }
    }

    fn transient(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
            waiting: false,
        }
    }

    fn waiting(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            transient: true,
            waiting: true,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self {
            transient: e.is_transient(),
            message: e.to_string(),
            waiting: false,
        }
    }
}

async fn is_shard_wrapper(api: &dyn NodeApi, table: &str) -> bool {
    match api
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

/// Runs `sql` (one statement or several separated by `;`); the first
/// error of any of its result sets is the error.
async fn run_all(api: &dyn NodeApi, sql: &str) -> Result<(), ClientError> {
    for set in api.query(sql).await? {
        if !set.error.is_empty() {
            return Err(ClientError::Daemon {
                status: 200,
                message: set.error,
            });
        }
    }
    Ok(())
}

/// Ids read per range while a copy is verified.
const VERIFY_PAGE: usize = 10_000;

/// How many times one range of ids is compared within one attempt.
const VERIFY_ROUNDS: usize = 10;

/// The ids of `table` above `lo` and up to `hi` (both optional), in order;
/// at most `limit`.
async fn ids_between(
    api: &dyn NodeApi,
    table: &str,
    lo: Option<u64>,
    hi: Option<u64>,
    limit: usize,
) -> Result<Vec<u64>, Failure> {
    let mut filter = Vec::new();
    if let Some(lo) = lo {
        filter.push(format!("id > {lo}"));
    }
    if let Some(hi) = hi {
        filter.push(format!("id <= {hi}"));
    }
    let filter = if filter.is_empty() {
        String::new()
    } else {
        format!("WHERE {} ", filter.join(" AND "))
    };
    let set = api
        .query_one(&format!(
            "SELECT id FROM {table} {filter}ORDER BY id ASC LIMIT {limit} OPTION max_matches={limit}"
        ))
        .await?;
    Ok((0..set.rows.len())
        .filter_map(|i| set.text(i, "id")?.parse().ok())
        .collect())
}

/// Whether every id of `part` is in `whole` (both in ascending order).
fn contains_all(whole: &[u64], part: &[u64]) -> bool {
    let mut rest = whole.iter();
    part.iter().all(|id| rest.by_ref().any(|w| w == id))
}

/// The copy on this node must hold the rows the one on `source` holds
/// before the source may be retired: nothing missing, nothing extra.
///
/// Both copies are in one replication cluster and writes go on while they
/// are compared (on a busy table, without pause), so the two are compared
/// one range of ids at a time, each range read from the source, then from
/// the copy, then from the source again: every id the source held before
/// must be in the copy, and every id of the copy in the source after. A
/// write between the reads is tolerated; a delete there costs another
/// round. Memory stays bounded by the range's size, whatever the shard's.
async fn verify_copy(api: &dyn NodeApi, table: &str, source: &NodeId) -> Result<(), Failure> {
    let there = api.for_node(source);
    // Room for the rows written into a range while it is compared.
    let limit = 2 * VERIFY_PAGE;
    let mut lo: Option<u64> = None;
    loop {
        let mut verified = None;
        let mut last = (0, 0);
        for round in 0..VERIFY_ROUNDS {
            if round > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let before = ids_between(&*there, table, lo, None, VERIFY_PAGE).await?;
            // A full page bounds the range; the ids above it are the next's.
            let hi = (before.len() == VERIFY_PAGE).then(|| before[VERIFY_PAGE - 1]);
            let here = ids_between(api, table, lo, hi, limit).await?;
            let after = ids_between(&*there, table, lo, hi, limit).await?;
            let complete = here.len() < limit && after.len() < limit;
            if complete && contains_all(&here, &before) && contains_all(&after, &here) {
                verified = Some(hi);
                break;
            }
            last = (here.len(), after.len());
        }
        match verified {
            Some(Some(hi)) => lo = Some(hi),
            Some(None) => return Ok(()),
            None => {
                let range = match lo {
                    Some(lo) => format!("ids above {lo}"),
                    None => "ids".to_string(),
                };
                let (here, there) = last;
                let text = format!(
                    "the new copy holds {here} {range} where the one on {source} holds {there}; the copy is checked again"
                );
                return Err(Failure::transient(text));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::protocol::{Column, ColumnType, ResultSet};

    /// Two copies of a shard: the new one (`here`) holds `copied` ids; the
    /// source gains one id with every read of it, unless `still`.
    struct Copies {
        node: &'static str,
        copied: u64,
        source_rows: Arc<AtomicU64>,
        still: bool,
    }

    /// Ids `1..=n` as `sql` selects them (`id > a`, `id <= b`, `LIMIT k`).
    fn ids(n: u64, sql: &str) -> ResultSet {
        let after = |key: &str| -> Option<u64> {
            let rest = &sql[sql.find(key)? + key.len()..];
            rest.split(|c: char| !c.is_ascii_digit())
                .next()?
                .parse()
                .ok()
        };
        let (lo, hi, limit) = (
            after("id > ").unwrap_or(0),
            after("id <= ").unwrap_or(u64::MAX),
            after("LIMIT ").unwrap_or(u64::MAX),
        );
        let mut set = ResultSet::with_columns(vec![Column::new("id", ColumnType::LongLong)]);
        for id in (1..=n)
            .filter(|id| *id > lo && *id <= hi)
            .take(limit as usize)
        {
            set.push_row(vec![json!(id)]);
        }
        set
    }

    #[async_trait]
    impl NodeApi for Copies {
        async fn query(&self, sql: &str) -> Result<Vec<ResultSet>, ClientError> {
            if self.node == "here" {
                return Ok(vec![ids(self.copied, sql)]);
            }
            let n = if self.still {
                self.source_rows.load(Ordering::SeqCst)
            } else {
                self.source_rows.fetch_add(1, Ordering::SeqCst)
            };
            Ok(vec![ids(n, sql)])
        }

        fn for_node(&self, node: &NodeId) -> Arc<dyn NodeApi> {
            Arc::new(Copies {
                node: if node.as_str() == "source:1" {
                    "source"
                } else {
                    "here"
                },
                copied: self.copied,
                source_rows: self.source_rows.clone(),
                still: self.still,
            })
        }

        fn as_user(&self, _user: &str) -> Arc<dyn NodeApi> {
            unreachable!("verification acts for nobody in particular")
        }
    }

    async fn verify(copied: u64, source_rows: u64, still: bool) -> Result<(), Failure> {
        let here = Copies {
            node: "here",
            copied,
            source_rows: Arc::new(AtomicU64::new(source_rows)),
            still,
        };
        verify_copy(&here, "system.t_s0", &NodeId::new("source:1")).await
    }

    #[tokio::test]
    async fn a_copy_matching_the_source_before_or_after_it_is_verified() {
        // Matches the read before (3 rows), the read after (4), or a still source.
        assert!(verify(3, 3, false).await.is_ok());
        assert!(verify(4, 3, false).await.is_ok());
        assert!(verify(5, 5, true).await.is_ok());
    }

    #[tokio::test]
    async fn a_copy_missing_rows_is_not_verified() {
        let failure = verify(4, 6, true).await.expect_err("two rows short");
        assert_eq!(
            failure.message,
            "the new copy holds 4 ids where the one on source:1 holds 6; the copy is checked again"
        );
        // Nor one that keeps falling behind a busy source.
        assert!(verify(1, 3, false).await.is_err());
    }

    /// Two copies of a busy shard in one replication cluster: every read,
    /// of either copy, is followed by a write that reaches both.
    struct Busy(Arc<AtomicU64>);

    #[async_trait]
    impl NodeApi for Busy {
        async fn query(&self, sql: &str) -> Result<Vec<ResultSet>, ClientError> {
            Ok(vec![ids(self.0.fetch_add(1, Ordering::SeqCst), sql)])
        }
        fn for_node(&self, _node: &NodeId) -> Arc<dyn NodeApi> {
            Arc::new(Busy(self.0.clone()))
        }
        fn as_user(&self, _user: &str) -> Arc<dyn NodeApi> {
            unreachable!()
        }
    }

    #[tokio::test]
    async fn a_copy_of_a_busy_source_is_verified_range_by_range() {
        // No read of the copy equals a read of the source before or after
        // it, yet it holds every id the source held before and none it did
        // not hold after.
        let n = 2 * VERIFY_PAGE as u64 + 17;
        let busy = Busy(Arc::new(AtomicU64::new(n)));
        assert!(verify_copy(&busy, "system.t_s0", &NodeId::new("source:1"))
            .await
            .is_ok());
        // One id missing in the second range is found.
        let here = Copies {
            node: "here",
            copied: n,
            source_rows: Arc::new(AtomicU64::new(n)),
            still: true,
        };
        struct Gap(Copies);
        #[async_trait]
        impl NodeApi for Gap {
            async fn query(&self, sql: &str) -> Result<Vec<ResultSet>, ClientError> {
                let mut sets = self.0.query(sql).await?;
                if self.0.node == "here" {
                    let gap = VERIFY_PAGE as u64 + 5;
                    let rows = std::mem::take(&mut sets[0].rows);
                    sets[0].rows = rows.into_iter().filter(|r| r[0] != json!(gap)).collect();
                }
                Ok(sets)
            }
            fn for_node(&self, node: &NodeId) -> Arc<dyn NodeApi> {
                self.0.for_node(node)
            }
            fn as_user(&self, _user: &str) -> Arc<dyn NodeApi> {
                unreachable!()
            }
        }
        let failure = verify_copy(&Gap(here), "system.t_s0", &NodeId::new("source:1"))
            .await
            .expect_err("an id is missing");
        assert_eq!(
            failure.message,
            format!(
                "the new copy holds 9999 ids above {} where the one on source:1 holds 10000; the \
                 copy is checked again",
                VERIFY_PAGE
            )
        );
    }
}
