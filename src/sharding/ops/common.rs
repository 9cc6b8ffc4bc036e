//! Pieces the statement handlers share: their error type, the permission
//! probe, existence checks, and waiting for the master's verdict.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::client::ClientError;
use crate::failpoint;
use crate::handler::Reply;
use crate::ids::TableName;
use crate::protocol::ResultSet;
use crate::sharding::clock::now_ms;
use crate::sharding::daemon::DaemonError;
use crate::sharding::heartbeat;
use crate::sharding::metadata::SetupError;
use crate::sharding::ops::Context;
use crate::sharding::records::{OpKind, TableStatus};
use crate::sharding::store::{MetaStore, StoreError};

/// Why a statement failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// A message for the user, verbatim.
    #[error("{0}")]
    User(String),
    #[error("sharding metadata cannot be read on this node: {0}; check that the node is synced in its cluster and retry")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Daemon(#[from] DaemonError),
}

impl From<ClientError> for OpError {
    fn from(e: ClientError) -> Self {
        OpError::Store(StoreError::Client(e))
    }
}

impl From<failpoint::Injected> for OpError {
    fn from(e: failpoint::Injected) -> Self {
        OpError::User(e.text)
    }
}

impl From<SetupError> for OpError {
    fn from(e: SetupError) -> Self {
        match e {
            SetupError::Store(e) => OpError::Store(e),
            SetupError::Daemon(e) => OpError::Daemon(e),
            other => OpError::User(other.to_string()),
        }
    }
}

pub fn user(msg: impl Into<String>) -> OpError {
    OpError::User(msg.into())
}

/// Turns an outcome into the reply searchd relays.
pub fn reply(outcome: Result<Vec<ResultSet>, OpError>) -> Reply {
    match outcome {
        Ok(sets) => Reply::Sets(sets),
        Err(e) => Reply::Error(e.to_string()),
    }
}

/// Buddy's permission probe (spec §1.8, §4.3): a bare `ALTER TABLE <t>` as
/// the requesting user; only a "permission denied" answer matters.
pub async fn check_schema_permission(
    ctx: &Context,
    user: &str,
    table: &TableName,
) -> Result<(), OpError> {
    let probe = ctx.node.api().as_user(user);
    match probe.query_one(&format!("ALTER TABLE {table}")).await {
        Err(e) if is_permission_denied(&e) => Err(user_error_permission(user, table)),
        _ => Ok(()),
    }
}

/// Whether the daemon refused a statement for lack of rights
/// (`Permission denied for user '<name>'`).
pub fn is_permission_denied(e: &ClientError) -> bool {
    e.daemon_message()
        .is_some_and(|m| m.to_ascii_lowercase().contains("permission denied"))
}

fn user_error_permission(user: &str, table: &TableName) -> OpError {
    OpError::User(format!(
        "Permission denied for user '{user}': requires schema permission on table '{table}'"
    ))
}

/// Whether a CREATE or DROP of `table` is still under way: requested,
/// planned and running, or being undone. Until it is over, whether the
/// table exists is not known, so `IF [NOT] EXISTS` cannot answer OK.
/// One that succeeded is over once it answered, though its group may still
/// be recording itself finished, or deleting the clusters a DROP emptied:
/// the next statement on the table may be requested (the master starts it
/// after that group).
pub async fn busy(store: &dyn MetaStore, table: &TableName) -> Result<bool, OpError> {
    let Some(state) = store.table(table).await? else {
        return Ok(false);
    };
    if state.in_flight() {
        return Ok(true);
    }
    if state.status == TableStatus::Done {
        return Ok(false);
    }
    Ok(match &state.operation_group {
        Some(group) => store
            .group(group)
            .await?
            .is_some_and(|record| !record.status.is_final()),
        None => false,
    })
}

/// The answer to a statement on a table whose CREATE or DROP is under way.
pub fn in_progress(table: &TableName) -> OpError {
    user(format!(
        "table '{table}': a CREATE or DROP of this table is in progress; retry when it has finished"
    ))
}

/// The daemon's full DDL of `table` (`SHOW CREATE TABLE … OPTION force=1`),
/// or `None` when there is no such table.
pub async fn show_create(ctx: &Context, table: &TableName) -> Result<Option<String>, OpError> {
    match ctx
        .node
        .api()
        .query_one(&format!("SHOW CREATE TABLE {table} OPTION force=1"))
        .await
    {
        Ok(set) => Ok(set.text(0, "Create Table")),
        Err(ClientError::Daemon { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A request id unique across nodes and restarts.
pub fn request_id(node: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "{node}/{}/{}/{}",
        std::process::id(),
        now_ms(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// How a request ended, as far as the requesting statement can tell.
pub enum Outcome {
    Done(Vec<ResultSet>),
    Failed(String),
}

/// Waits until the master records the outcome of request `id` for `table`.
/// A finished DROP or a failed CREATE leaves no trace: the state the outcome
/// was read from is removed (`forget_when`). While it waits, this process's
/// registration beats often, so the master sees the requester alive (a
/// CREATE is completed only once it was, after its work was done).
///
/// The request is written, so from here on an error answer must not be
/// given while the operation may still go on: a failed read of the outcome
/// is retried until the deadline, and then the answer says the outcome is
/// not known and how to learn it.
pub async fn await_outcome(
    ctx: &Context,
    store: &dyn MetaStore,
    table: &TableName,
    id: &str,
    patience: Duration,
    forget_when: impl Fn(&Outcome) -> bool,
) -> Result<Vec<ResultSet>, OpError> {
    let deadline = Instant::now() + patience;
    let me = ctx.node.id().await?;
    let beat_every = ctx.config.heartbeat_interval.min(ctx.config.wait_poll * 5);
    let mut last_beat: Option<Instant> = None;
    loop {
        if last_beat.is_none_or(|at| at.elapsed() >= beat_every) {
            heartbeat::beat(store, &me, &ctx.pulse).await;
            last_beat = Some(Instant::now());
        }
        let notified = ctx.signals.table_changed.notified();
        let read = match failpoint::hit(failpoint::HELPER_AFTER_REQUEST).await {
            Ok(()) => store.table(table).await.map_err(|e| e.to_string()),
            Err(injected) => Err(injected.text),
        };
        let state = match read {
            Ok(state) => state,
            Err(error) if Instant::now() >= deadline => {
                return Err(outcome_unknown(table, &error));
            }
            Err(error) => {
                tracing::warn!(table = %table, error = %error, "cannot read the outcome of a statement yet; retrying");
                tokio::time::sleep(ctx.config.wait_poll).await;
                continue;
            }
        };
        match state {
            Some(state) if state.request_id() == Some(id) => {
                let outcome = match state.status {
                    TableStatus::Done => Outcome::Done(result_sets(state.result.as_ref())),
                    TableStatus::Failed => Outcome::Failed(state.error.unwrap_or_else(|| "operation failed".into())),
                    TableStatus::Requested | TableStatus::Processing => {
                        if Instant::now() >= deadline {
                            return Err(still_running(table, state.kind));
                        }
                        tokio::select! {
                            _ = tokio::time::sleep(ctx.config.wait_poll) => {}
                            _ = notified => {}
                        }
                        continue;
                    }
                };
                if forget_when(&outcome) {
                    // The outcome stands whether or not its record goes:
                    // a record left behind is replaced by the next request.
                    if let Err(e) = store.delete_table(table).await {
                        tracing::warn!(table = %table, error = %e, "cannot remove the record of a finished statement");
                    }
                }
                failpoint::hit(failpoint::HELPER_BEFORE_REPLY).await?;
                return match outcome {
                    Outcome::Done(sets) => Ok(sets),
                    Outcome::Failed(msg) => Err(user(msg)),
                };
            }
            _ => {
                return Err(user(format!(
                    "table '{table}': another CREATE or DROP of this table took over; check SHOW SHARDING STATUS"
                )))
            }
        }
    }
}

/// The answer when a request is still under way at the requester's
/// deadline. A CREATE the master gave up on was answered with Buddy's
/// `Waiting timeout exceeded.` already (the master writes it); here the
/// master has not decided (it may have changed hands, or a DROP waits for a
/// node that is unreachable: a DROP only moves forward), so the statement
/// may still take effect.
fn still_running(table: &TableName, kind: OpKind) -> OpError {
    let verb = match kind {
        OpKind::Create => "CREATE TABLE",
        OpKind::Drop => "DROP TABLE",
    };
    user(format!(
        "Waiting timeout exceeded: {verb} of table '{table}' has not finished and may still take effect; check SHOW SHARDING STATUS {table} before running it again"
    ))
}

/// The answer when the outcome of a written request cannot be read.
fn outcome_unknown(table: &TableName, error: &str) -> OpError {
    user(format!(
        "table '{table}': the statement was handed over but its outcome cannot be read ({error}); check SHOW SHARDING STATUS {table} before running it again"
    ))
}

/// The result sets recorded with a finished request (`Query OK` when none).
pub(super) fn result_sets(value: Option<&serde_json::Value>) -> Vec<ResultSet> {
    let sets: Vec<ResultSet> = value
        .and_then(|v| v.as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|v| ResultSet::from_json(v).ok())
                .collect()
        })
        .unwrap_or_default();
    if sets.is_empty() {
        vec![ResultSet::ok()]
    } else {
        sets
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::ids::NodeId;
    use crate::sharding::records::{OpKind, Scope, TableState};
    use crate::sharding::store::memory::MemStore;
    use crate::sharding::store::SqlStore;
    use crate::sharding::testing::{context, identity, local_request, lost, FakeNode};

    #[tokio::test]
    async fn a_request_replaced_by_another_is_not_waited_for() {
        let node = FakeNode::new(|sql, _| identity(sql).unwrap_or_else(|| panic!("{sql}")));
        let ctx = context(&node);
        let store = MemStore::new(Scope::Local);
        let t = TableName::parse("t").unwrap();
        let theirs = local_request("theirs", "b:1");
        let state =
            TableState::requested(OpKind::Create, theirs, "id bigint".into(), String::new());
        store.with(|c| c.tables.insert(t.clone(), state));
        let err = await_outcome(&ctx, &store, &t, "mine", Duration::from_secs(30), |_| false)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "table 't': another CREATE or DROP of this table took over; check SHOW SHARDING STATUS"
        );
    }

    #[tokio::test]
    async fn a_statement_is_busy_until_answered_or_undone() {
        use crate::sharding::records::{
            table::RollbackOutcome, GroupKind, GroupName, GroupRecord, GroupStatus,
        };
        let t = TableName::parse("t").unwrap();
        let group = GroupName::from("shard_create_t_1");
        let request = local_request("r", "a:1");
        let requested =
            TableState::requested(OpKind::Create, request, "id bigint".into(), "".into());
        let mut processing = requested.clone();
        processing
            .start(group.clone(), Vec::new(), Vec::new())
            .unwrap();
        let mut done = processing.clone();
        done.succeed(serde_json::Value::Null).unwrap();
        let mut failed = processing.clone();
        failed
            .fail(
                "x".into(),
                Some(RollbackOutcome {
                    executed: true,
                    success: true,
                }),
            )
            .unwrap();
        let committed = GroupRecord::committed(GroupKind::Create, &t, 1, &NodeId::new("a:1"), 0);
        let mut completed = committed.clone();
        completed.complete(0).unwrap();
        assert!(completed.status.is_final() && committed.status == GroupStatus::Committed);
        for (state, record, busy_expected) in [
            (&requested, None, true),
            (&processing, Some(&committed), true),
            // Answered; the group is still being recorded finished.
            (&done, Some(&committed), false),
            (&done, Some(&completed), false),
            // Failed, and still being undone.
            (&failed, Some(&committed), true),
            (&failed, Some(&completed), false),
        ] {
            let store = MemStore::new(Scope::Local);
            store.with(|c| c.tables.insert(t.clone(), state.clone()));
            if let Some(record) = record {
                store.put_group(&group, record).await.unwrap();
            }
            assert_eq!(
                busy(&store, &t).await.unwrap(),
                busy_expected,
                "{:?} with {:?}",
                state.status,
                record.map(|r| r.status)
            );
        }
    }

    #[tokio::test]
    async fn metadata_that_cannot_be_read_says_what_to_check() {
        let node = FakeNode::new(|_, _| lost());
        let store = SqlStore::new(Arc::new(node), Scope::Local);
        let err = busy(&store, &TableName::parse("t").unwrap())
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sharding metadata cannot be read on this node: connection to \
             http://fake/sql?mode=raw lost before the reply: connection reset; check that the \
             node is synced in its cluster and retry"
        );
    }
}
