//! The master's task. Only the node holding the lease runs it: it turns
//! CREATE/DROP requests into queue rows (so queue ids are globally ordered and
//! stamped with its epoch), supervises every operation group to completion,
//! rolls failed groups back on the nodes that ran them, and purges finished
//! work after the retention period.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::ids::{ClusterName, NodeId, TableName};
use crate::placement::{self, Placement, PlacementError, Step, TableDdl};
use crate::protocol::ResultSet;
use crate::sharding::clock::{now_ms, now_s};
use crate::sharding::coordinator::assess::{self, Progress};
use crate::sharding::executor::run::RowError;
use crate::sharding::executor::statement::{self, Kind};
use crate::sharding::group::{rollback_group_name, GroupKind, GroupRecord, GroupStatus};
use crate::sharding::heartbeat;
use crate::sharding::lease::{Lease, Role};
use crate::sharding::queue::encode::encode_steps;
use crate::sharding::queue::row::{epoch_of, queue_id, QueueStatus, SEQ_BITS};
use crate::sharding::runtime::Shared;
use crate::sharding::state::StateKey;
use crate::sharding::store::{PlacementRow, Store, StoreError};
use crate::sharding::table_state::{OpKind, OpRequest, TableState, TableStatus};
use crate::sharding::topology::Membership;

pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut office: Option<Office> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(shared.config.poll_interval) => {}
            _ = shared.wake_coordinator.notified() => {}
        }
        let Role::Master { epoch } = shared.role() else {
            office = None;
            continue;
        };
        let (Ok(node), Ok(Some(store))) = (shared.node().await, shared.store().await) else {
            continue;
        };
        if office.as_ref().map(|o| o.epoch) != Some(epoch) {
            match Office::take(&store, epoch, node.id.clone()).await {
                Ok(o) => office = Some(o),
                Err(e) => {
                    warn!(error = %e, "cannot take office as master");
                    continue;
                }
            }
        }
        if let Some(o) = office.as_mut() {
            if let Err(e) = o.tick(&shared, &store).await {
                debug!(error = %e, "master tick failed");
            }
        }
    }
}

/// The master's per-epoch state.
struct Office {
    epoch: u64,
    me: NodeId,
    next_seq: u64,
    /// Groups whose rows were (maybe partly) written but never committed
    /// because a write failed: executors hold such rows, so they are purged
    /// before anything else.
    abandoned: Vec<String>,
}

impl Office {
    /// Starts an epoch: adopts the committed groups of earlier masters (so
    /// their rows keep running under the new lease), discards rows that an
    /// earlier master wrote but never committed, and continues the id
    /// sequence.
    async fn take(store: &Store, epoch: u64, me: NodeId) -> Result<Self, StoreError> {
        let groups: BTreeMap<String, GroupRecord> = store.list_as("group:").await?;
        let mut adopted = 0;
        for (name, mut rec) in groups.clone() {
            if rec.status.is_final() || (rec.epoch == epoch && rec.master == me) {
                continue;
            }
            rec.epoch = epoch;
            rec.master = me.clone();
            store.put(&StateKey::Group(name), &rec, now_s()).await?;
            adopted += 1;
        }
        let orphans: BTreeSet<String> = store
            .unprocessed_rows()
            .await?
            .into_iter()
            .filter(|r| epoch_of(r.id) < epoch && !groups.contains_key(&r.operation_group))
            .map(|r| r.operation_group)
            .collect();
        for group in &orphans {
            store.purge_group(group).await?;
        }
        let max = store.max_queue_id().await?;
        let next_seq = if epoch_of(max) == epoch {
            (max & ((1 << SEQ_BITS) - 1)) + 1
        } else {
            1
        };
        info!(
            epoch,
            adopted,
            discarded = orphans.len(),
            "took office as sharding master"
        );
        Ok(Self {
            epoch,
            me,
            next_seq,
            abandoned: Vec::new(),
        })
    }

    fn next_id(&mut self) -> u64 {
        let id = queue_id(self.epoch, self.next_seq);
        self.next_seq += 1;
        id
    }

    async fn tick(&mut self, shared: &Shared, store: &Store) -> Result<(), StoreError> {
        // Act only while the lease really is ours: the role comes from the
        // last heartbeat, which may be a moment old.
        let lease: Option<Lease> = store.get_as(&StateKey::MasterLease).await?;
        if lease.is_none_or(|l| l.epoch != self.epoch || l.node != self.me) {
            return Ok(());
        }
        while let Some(group) = self.abandoned.last() {
            store.purge_group(group).await?;
            self.abandoned.pop();
        }
        let Some(members) = heartbeat::membership(shared, store, &self.me).await else {
            return Ok(());
        };
        let tables: BTreeMap<String, TableState> = store.list_as("table:").await?;
        let groups: BTreeMap<String, GroupRecord> = store.list_as("group:").await?;
        for (table, state) in &tables {
            let uncommitted = state.status == TableStatus::Processing
                && state
                    .operation_group
                    .as_ref()
                    .is_some_and(|g| !groups.contains_key(g));
            if state.status == TableStatus::Requested || uncommitted {
                if let Some(g) = state.operation_group.as_ref().filter(|_| uncommitted) {
                    // Its master stopped between the table state and the commit.
                    store.purge_group(g).await?;
                }
                self.start(shared, store, &members, table, state.clone())
                    .await?;
            }
        }
        let groups: BTreeMap<String, GroupRecord> = store.list_as("group:").await?;
        for (name, rec) in &groups {
            if rec.kind == GroupKind::Rollback || rec.status.is_final() {
                continue;
            }
            if rec.epoch > self.epoch {
                // A newer master exists: this office is over.
                return Ok(());
            }
            if rec.epoch != self.epoch || rec.master != self.me {
                // Written by a master that lost the lease after this office
                // began: its rows never ran (executors hold them); re-plan.
                self.discard_foreign(shared, store, name, rec, &tables)
                    .await?;
                continue;
            }
            self.supervise(shared, store, &members, name, rec, &groups)
                .await?;
        }
        self.purge(shared, store, &groups, &tables).await
    }

    // ---- starting requested operations --------------------------------------

    async fn start(
        &mut self,
        shared: &Shared,
        store: &Store,
        members: &Membership,
        table: &str,
        mut state: TableState,
    ) -> Result<(), StoreError> {
        let Some(request) = state.request.clone() else {
            return self
                .finish_table(
                    shared,
                    store,
                    table,
                    state,
                    Err("malformed request: no request".into()),
                )
                .await;
        };
        let Ok(name) = TableName::parse(table) else {
            return self
                .finish_table(
                    shared,
                    store,
                    table,
                    state,
                    Err(format!("invalid table name '{table}'")),
                )
                .await;
        };
        if now_ms() > request.at_ms + request.timeout_ms {
            return self
                .finish_table(
                    shared,
                    store,
                    table,
                    state,
                    Err("Waiting timeout exceeded.".into()),
                )
                .await;
        }
        let bound = store.cluster().map(ClusterName::as_str).unwrap_or("");
        if request.cluster != bound {
            let msg = format!(
                "sharded tables of these nodes live in cluster '{bound}': use that cluster for table '{table}'"
            );
            return self
                .finish_table(shared, store, table, state, Err(msg))
                .await;
        }
        let planned = match state.kind {
            OpKind::Create => {
                let others: Vec<PlacementRow> = store
                    .placement_rows(None)
                    .await?
                    .into_iter()
                    .filter(|r| r.table != name.as_str())
                    .collect();
                self.plan_create(members, &name, &state, &request, &others_clusters(&others))
            }
            OpKind::Drop => self.plan_drop(store, members, &name).await?,
        };
        let Planned {
            steps,
            nodes,
            placement: placement_rows,
        } = match planned {
            Ok(p) => p,
            Err(msg) => {
                return self
                    .finish_table(shared, store, table, state, Err(msg))
                    .await
            }
        };
        let first = self.next_id();
        let prefix = match state.kind {
            OpKind::Create => "shard_create",
            OpKind::Drop => "shard_drop",
        };
        let group = format!("{prefix}_{table}_{first:x}");
        let mut first_id = Some(first);
        let rows = encode_steps(
            &steps,
            &group,
            || first_id.take().unwrap_or_else(|| self.next_id()),
            now_ms(),
        );
        let record = GroupRecord {
            status: GroupStatus::Committed,
            kind: match state.kind {
                OpKind::Create => GroupKind::Create,
                OpKind::Drop => GroupKind::Drop,
            },
            table: table.to_string(),
            epoch: self.epoch,
            master: self.me.clone(),
            started_at_ms: now_ms(),
            deadline_ms: Some(request.at_ms + request.timeout_ms),
            undoes: None,
            error: None,
            finished_at_ms: None,
        };
        state.status = TableStatus::Processing;
        state.operation_group = Some(group.clone());
        state.nodes = nodes;
        // PHP Buddy's `queue_ids`: the wrapper creations of a CREATE, every row of a DROP.
        state.queue_ids = rows
            .iter()
            .filter(|r| {
                state.kind == OpKind::Drop
                    || matches!(
                        statement::prepare(&r.query).kind,
                        Kind::CreateWrapper { .. }
                    )
            })
            .map(|r| r.id)
            .collect();
        // Rows, placement, table state, and the commit record last: until it
        // is written nothing runs, and a table left `processing` without it
        // is planned again (`tick`).
        let committed = async {
            store.enqueue(&rows).await?;
            if let Some(rows) = &placement_rows {
                store.delete_placement(&name).await?;
                store.write_placement(rows).await?;
            }
            store
                .put(&StateKey::Table(name.clone()), &state, now_s())
                .await?;
            store
                .put(&StateKey::Group(group.clone()), &record, now_s())
                .await
        }
        .await;
        if let Err(e) = committed {
            self.abandoned.push(group);
            return Err(e);
        }
        info!(table, group = %group, rows = rows.len(), "operation enqueued");
        shared.wake_executor.notify_one();
        shared.table_changed.notify_waiters();
        Ok(())
    }

    /// Steps, the nodes involved, and the placement rows of a CREATE, or the
    /// user-facing reason it cannot be planned.
    /// Replica sets another table already uses keep their internal cluster:
    /// it is neither created again nor undone by this table's rollback.
    fn plan_create(
        &self,
        members: &Membership,
        table: &TableName,
        state: &TableState,
        request: &OpRequest,
        existing_clusters: &BTreeSet<ClusterName>,
    ) -> Result<Planned, String> {
        let nodes: Vec<NodeId> = members.active.iter().cloned().collect();
        if (request.rf as usize) > nodes.len() {
            return Err(format!(
                "The node count ({}) is lower than replication factor ({})",
                nodes.len(),
                request.rf
            ));
        }
        let placement = placement::initial_placement(&nodes, request.shards, request.rf)
            .map_err(|e| e.to_string())?;
        let ddl = TableDdl {
            table: table.clone(),
            columns: (!state.structure.is_empty()).then(|| state.structure.clone()),
            extra: state.extra.clone(),
        };
        let steps =
            placement::create_steps_with_existing(&ddl, &placement, &nodes, existing_clusters);
        let rows = nodes
            .iter()
            .map(|n| PlacementRow {
                cluster: request.cluster.clone(),
                node: n.clone(),
                table: table.to_string(),
                shards: placement.shards_on(n),
            })
            .collect();
        Ok(Planned {
            steps,
            nodes,
            placement: Some(rows),
        })
    }

    async fn plan_drop(
        &self,
        store: &Store,
        members: &Membership,
        table: &TableName,
    ) -> Result<Result<Planned, String>, StoreError> {
        let all = store.placement_rows(None).await?;
        let (mine, others): (Vec<_>, Vec<_>) =
            all.into_iter().partition(|r| r.table == table.as_str());
        let placement = match placement_of(&mine) {
            Ok(p) => p,
            Err(e) => {
                return Ok(Err(format!(
                    "table '{table}': cannot plan DROP from its placement metadata: {e}"
                )))
            }
        };
        let mut nodes: BTreeSet<NodeId> = mine.iter().map(|r| r.node.clone()).collect();
        if nodes.is_empty() {
            // Metadata lost or never written: drop what the live nodes may hold.
            nodes = members.active.clone();
        }
        let in_use: BTreeSet<ClusterName> = others_clusters(&others);
        let nodes: Vec<NodeId> = nodes.into_iter().collect();
        let steps = placement::drop_steps(table, &placement, &nodes, &in_use);
        Ok(Ok(Planned {
            steps,
            nodes,
            placement: None,
        }))
    }

    // ---- supervising groups -------------------------------------------------

    async fn supervise(
        &mut self,
        shared: &Shared,
        store: &Store,
        members: &Membership,
        name: &str,
        rec: &GroupRecord,
        groups: &BTreeMap<String, GroupRecord>,
    ) -> Result<(), StoreError> {
        let policy = &shared.config.retry;
        // Only the unfinished rows are read on every round (a big group has
        // thousands of rows); all of them only to plan a rollback.
        let rows = store.unfinished_group_rows(name).await?;
        match rec.status {
            GroupStatus::Committed => {
                // DROP only moves forward: it is never timed out, only a
                // final failure stops it.
                let deadline = (rec.kind == GroupKind::Create)
                    .then_some(rec.deadline_ms)
                    .flatten();
                match assess::assess(&rows, policy, deadline, now_ms()) {
                    Progress::Running => Ok(()),
                    Progress::Done => self.complete(shared, store, name, rec).await,
                    Progress::TimedOut => {
                        self.abort(shared, store, name, rec, "Waiting timeout exceeded.".into())
                            .await
                    }
                    Progress::Failed { row, node } => {
                        let detail: Option<RowError> =
                            store.get_as(&StateKey::RowError(row)).await?;
                        let error =
                            detail.map_or_else(|| format!("queue row {row} failed"), |d| d.error);
                        let msg = format!("{error} (on node {node})");
                        self.abort(shared, store, name, rec, msg).await
                    }
                }
            }
            GroupStatus::Aborting => {
                if !assess::settled(&rows, &members.active) {
                    return Ok(());
                }
                let all_rows = store.group_rows(name).await?;
                let undo = assess::to_undo(&all_rows, &members.active);
                let mut rec = rec.clone();
                if undo.is_empty() {
                    // Nothing took effect: leave no trace, then report.
                    purge_history(store, name).await?;
                    return self
                        .rolled_back(shared, store, name, &rec, true, false)
                        .await;
                }
                let rb_name = rollback_group_name(name);
                let rb_rows = assess::rollback_rows(
                    &undo,
                    &members.active,
                    || self.next_id(),
                    &rb_name,
                    now_ms(),
                );
                store.enqueue(&rb_rows).await?;
                let rb = GroupRecord {
                    status: GroupStatus::Committed,
                    kind: GroupKind::Rollback,
                    table: rec.table.clone(),
                    epoch: self.epoch,
                    master: self.me.clone(),
                    started_at_ms: now_ms(),
                    deadline_ms: None,
                    undoes: Some(name.to_string()),
                    error: None,
                    finished_at_ms: None,
                };
                store.put(&StateKey::Group(rb_name), &rb, now_s()).await?;
                rec.status = GroupStatus::RollingBack;
                store
                    .put(&StateKey::Group(name.to_string()), &rec, now_s())
                    .await?;
                info!(group = name, steps = rb_rows.len(), "rolling back");
                shared.wake_executor.notify_one();
                Ok(())
            }
            GroupStatus::RollingBack => {
                let rb_name = rollback_group_name(name);
                let rb_rows = store.unfinished_group_rows(&rb_name).await?;
                let failed = rb_rows.iter().any(|r| policy.is_final(r));
                let live_done = !rb_rows.iter().any(|r| members.active.contains(&r.node));
                let all_done = rb_rows.is_empty();
                if !(failed || all_done || live_done) {
                    return Ok(());
                }
                if all_done {
                    // Undone everywhere: a failed CREATE leaves no trace.
                    purge_history(store, name).await?;
                }
                // The statement gets its answer once the live nodes are clean;
                // rollbacks on dead nodes run when they return.
                self.rolled_back(shared, store, name, rec, !failed, true)
                    .await?;
                if all_done {
                    return Ok(());
                }
                if failed {
                    warn!(
                        group = name,
                        "rollback failed; leftovers stay until an operator cleans them up"
                    );
                    for (g, r) in [
                        (name.to_string(), Some(rec.clone())),
                        (rb_name.clone(), groups.get(&rb_name).cloned()),
                    ] {
                        if let Some(mut r) = r {
                            r.status = GroupStatus::RollbackFailed;
                            r.finished_at_ms = Some(now_ms());
                            store.put(&StateKey::Group(g), &r, now_s()).await?;
                        }
                    }
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    async fn complete(
        &mut self,
        shared: &Shared,
        store: &Store,
        name: &str,
        rec: &GroupRecord,
    ) -> Result<(), StoreError> {
        let mut rec = rec.clone();
        rec.status = GroupStatus::Done;
        rec.finished_at_ms = Some(now_ms());
        store
            .put(&StateKey::Group(name.to_string()), &rec, now_s())
            .await?;
        let key = StateKey::Table(table_name(&rec.table)?);
        if rec.kind == GroupKind::Drop {
            // A dropped table leaves nothing behind: its placement, and the
            // finished operations that made and removed it.
            store.delete_placement(&table_name(&rec.table)?).await?;
            let groups: BTreeMap<String, GroupRecord> = store.list_as("group:").await?;
            for (g, r) in &groups {
                if r.table == rec.table && r.kind != GroupKind::Rollback && r.status.is_final() {
                    purge_history(store, g).await?;
                }
            }
        }
        if let Some(state) = store.get_as::<TableState>(&key).await? {
            if state.operation_group.as_deref() == Some(name) {
                let ok = serde_json::to_value(vec![ResultSet::ok()]).unwrap_or_default();
                self.finish_table(shared, store, &rec.table, state, Ok(ok))
                    .await?;
            }
        }
        info!(group = name, table = %rec.table, "operation done");
        Ok(())
    }

    async fn abort(
        &mut self,
        shared: &Shared,
        store: &Store,
        name: &str,
        rec: &GroupRecord,
        error: String,
    ) -> Result<(), StoreError> {
        warn!(group = name, table = %rec.table, %error, "operation failed, undoing it");
        let mut rec = rec.clone();
        rec.status = GroupStatus::Aborting;
        rec.error = Some(error);
        store
            .put(&StateKey::Group(name.to_string()), &rec, now_s())
            .await?;
        shared.wake_coordinator.notify_one();
        Ok(())
    }

    /// Reports the outcome of the aborted group `name` to its table state (once).
    async fn rolled_back(
        &mut self,
        shared: &Shared,
        store: &Store,
        name: &str,
        rec: &GroupRecord,
        success: bool,
        executed: bool,
    ) -> Result<(), StoreError> {
        let key = StateKey::Table(table_name(&rec.table)?);
        let Some(mut state) = store.get_as::<TableState>(&key).await? else {
            return Ok(());
        };
        if state.status != TableStatus::Processing || state.operation_group.as_deref() != Some(name)
        {
            return Ok(());
        }
        if state.kind == OpKind::Create {
            store.delete_placement(&table_name(&rec.table)?).await?;
        }
        state.rollback_executed = Some(executed);
        state.rollback_success = Some(success);
        let error = rec
            .error
            .clone()
            .unwrap_or_else(|| "operation failed".into());
        self.finish_table(shared, store, &rec.table, state, Err(error))
            .await
    }

    async fn finish_table(
        &mut self,
        shared: &Shared,
        store: &Store,
        table: &str,
        mut state: TableState,
        outcome: Result<serde_json::Value, String>,
    ) -> Result<(), StoreError> {
        match outcome {
            Ok(result) => {
                state.status = TableStatus::Done;
                state.result = Some(result);
            }
            Err(error) => {
                state.status = TableStatus::Failed;
                state.error = Some(error);
            }
        }
        let key = match TableName::parse(table) {
            Ok(t) => StateKey::Table(t),
            // Not a name we could have written: drop the bogus request.
            Err(_) => return Ok(()),
        };
        store.put(&key, &state, now_s()).await?;
        shared.table_changed.notify_waiters();
        Ok(())
    }

    async fn discard_foreign(
        &mut self,
        shared: &Shared,
        store: &Store,
        name: &str,
        rec: &GroupRecord,
        tables: &BTreeMap<String, TableState>,
    ) -> Result<(), StoreError> {
        warn!(group = name, epoch = rec.epoch, master = %rec.master, "discarding work of a stale master");
        let mut stale = rec.clone();
        stale.status = GroupStatus::Stale;
        stale.finished_at_ms = Some(now_ms());
        store
            .put(&StateKey::Group(name.to_string()), &stale, now_s())
            .await?;
        if let Some(state) = tables.get(&rec.table) {
            if state.operation_group.as_deref() == Some(name) {
                let mut again = state.clone();
                again.status = TableStatus::Requested;
                again.operation_group = None;
                store
                    .put(&StateKey::Table(table_name(&rec.table)?), &again, now_s())
                    .await?;
                shared.wake_coordinator.notify_one();
            }
        }
        Ok(())
    }

    // ---- retention ----------------------------------------------------------

    /// Removes finished groups (rows, commit records, row errors) once they
    /// are older than the retention period, with a leftover table state of a
    /// finished DROP or failed CREATE (normally its requester removes it).
    async fn purge(
        &mut self,
        shared: &Shared,
        store: &Store,
        groups: &BTreeMap<String, GroupRecord>,
        tables: &BTreeMap<String, TableState>,
    ) -> Result<(), StoreError> {
        let retention = i64::try_from(shared.config.retention.as_millis()).unwrap_or(i64::MAX);
        let now = now_ms();
        for (name, rec) in groups {
            let due = rec.kind != GroupKind::Rollback
                && rec.status.is_final()
                && rec.finished_at_ms.is_some_and(|at| now - at >= retention);
            if !due {
                continue;
            }
            if let Some(state) = tables.get(&rec.table) {
                let gone = (state.kind == OpKind::Drop && state.status == TableStatus::Done)
                    || (state.kind == OpKind::Create && state.status == TableStatus::Failed);
                if gone && state.operation_group.as_deref() == Some(name.as_str()) {
                    store
                        .delete(&StateKey::Table(table_name(&rec.table)?))
                        .await?;
                }
            }
            purge_history(store, name).await?;
        }
        Ok(())
    }
}

/// Deletes every trace of a finished group: its rows and those of its
/// rollback, their error records, and both commit records.
async fn purge_history(store: &Store, group: &str) -> Result<(), StoreError> {
    let rollback = rollback_group_name(group);
    for name in [group, rollback.as_str()] {
        for row in store.group_rows(name).await? {
            // Only a row that failed at least once has an error record.
            if row.status == QueueStatus::Error || row.tries > 1 {
                store.delete(&StateKey::RowError(row.id)).await?;
            }
        }
        store.purge_group(name).await?;
        store.delete(&StateKey::Group(name.to_string())).await?;
    }
    debug!(group, "purged finished operation");
    Ok(())
}

/// A planned operation: its steps, the nodes involved, and (CREATE) the
/// placement rows to record.
struct Planned {
    steps: Vec<Step>,
    nodes: Vec<NodeId>,
    placement: Option<Vec<PlacementRow>>,
}

fn table_name(raw: &str) -> Result<TableName, StoreError> {
    TableName::parse(raw).map_err(|e| StoreError::Corrupt(format!("table '{raw}': {e}")))
}

/// The committed placement of one table, from its metadata rows.
pub fn placement_of(rows: &[PlacementRow]) -> Result<Placement, PlacementError> {
    Placement::from_rows(rows.iter().map(|r| (r.node.clone(), r.shards.clone())))
}

/// Internal clusters that other tables' replica sets still use.
fn others_clusters(others: &[PlacementRow]) -> BTreeSet<ClusterName> {
    let mut by_table: BTreeMap<&str, Vec<PlacementRow>> = BTreeMap::new();
    for r in others {
        by_table
            .entry(r.table.as_str())
            .or_default()
            .push(r.clone());
    }
    let mut clusters = BTreeSet::new();
    for rows in by_table.values() {
        match placement_of(rows) {
            Ok(p) => clusters.extend(p.internal_clusters()),
            // Keep every cluster such a table might use: better a leftover
            // cluster than one deleted under another table.
            Err(_) => {
                let mut shards: BTreeMap<u32, Vec<NodeId>> = BTreeMap::new();
                for r in rows {
                    for s in &r.shards {
                        shards.entry(*s).or_default().push(r.node.clone());
                    }
                }
                clusters.extend(
                    shards
                        .values()
                        .filter(|n| n.len() > 1)
                        .map(|n| placement::internal_cluster_name(n)),
                );
            }
        }
    }
    clusters
}
