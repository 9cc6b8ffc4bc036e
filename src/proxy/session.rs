//! One client connection: the MySQL-protocol side (opensrv-mysql) in front
//! of one backend connection (mysql_async) that it keeps for its life, so
//! session state — variables, transactions, `last_insert_id` — stays on
//! its node. Result sets are relayed row by row as they arrive.
//!
//! When the node goes away, the connection moves to another healthy node:
//! before a statement is sent when the node is already known to be down, or
//! after a read-only statement failed with the connection; `SET`
//! statements are replayed there. Inside a transaction, or when a write may
//! have run, the client gets an error instead. Statements refused with
//! `unknown local table(s)` (a wrapper being replaced during a rebalance)
//! are held and retried for a short while.

use std::io;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use opensrv_mysql::{
    AsyncMysqlShim, Column, ColumnFlags, ColumnType, ErrorKind, OkResponse, ParamParser,
    QueryResultWriter, StatementMetaWriter, StatusFlags,
};
use prometheus_client::metrics::counter::Counter;
use tokio::io::AsyncWrite;

use super::backends::{opts, Backend};
use super::Shared;
use crate::handler::Reply;
use crate::protocol::{BuddyRequest, ResultSet};

/// How long a statement refused during a wrapper swap is held in all.
const HOLD_FOR: Duration = Duration::from_secs(3);
/// Pause between two tries of a held statement.
const HOLD_STEP: Duration = Duration::from_millis(25);
/// The daemon's words while a `type='shard'` wrapper is being replaced.
const SWAP_WINDOW: &str = "unknown local table(s)";
/// `SET` statements kept for replay on another node.
const MAX_REPLAYED: usize = 64;
/// Time limit for connecting to a node.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a statement got no answer from a node.
#[derive(Debug, thiserror::Error)]
enum ProxyError {
    #[error("no node of the cluster can be reached ({0}); check that the nodes given with --node are running")]
    NoNode(String),
    #[error("node {0} went away inside a transaction, which is lost; start the transaction again")]
    LostInTransaction(String),
    #[error("node {0} went away while running the statement, which may or may not have taken effect; check and run it again if needed")]
    MaybeRan(String),
    /// The node's own refusal, passed on as it is.
    #[error("{}", .0.message)]
    Refused(mysql_async::ServerError),
}

impl ProxyError {
    fn kind(&self) -> ErrorKind {
        match self {
            ProxyError::NoNode(_) => ErrorKind::ER_CON_COUNT_ERROR,
            ProxyError::Refused(e) => ErrorKind::from(e.code),
            _ => ErrorKind::ER_QUERY_INTERRUPTED,
        }
    }
}

struct Attached {
    backend: Arc<Backend>,
    conn: mysql_async::Conn,
    /// This node's count of answered statements, looked up once.
    answered: Counter,
}

/// What a connection keeps between statements.
#[derive(Default)]
struct State {
    /// User and password from the handshake (kept only to reconnect after
    /// a failover; never logged).
    login: (String, String),
    attached: Option<Attached>,
    in_transaction: bool,
    replay: Vec<String>,
}

/// Result sets one statement may answer with; more are read and dropped.
const MAX_SETS: usize = 16;

pub struct Session {
    shared: Arc<Shared>,
    connection_id: u32,
    /// Filled by `authenticate`, which only gets `&self`.
    login: Mutex<Option<(String, String)>>,
    state: State,
    /// Column definitions of the reply being written: opensrv's row writer
    /// borrows them for the whole reply, so each set gets a slot that is
    /// filled once per statement.
    columns: Vec<OnceLock<Vec<Column>>>,
}

impl Session {
    pub fn new(shared: Arc<Shared>, connection_id: u32) -> Self {
        Self {
            shared,
            connection_id,
            login: Mutex::new(None),
            state: State::default(),
            columns: (0..MAX_SETS).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl State {
    /// A backend connection, opening one (on another node than `except`)
    /// when there is none.
    async fn attach(&mut self, shared: &Shared, except: Option<&str>) -> Result<(), ProxyError> {
        if self.attached.is_some() {
            return Ok(());
        }
        let (user, password) = &self.login;
        let mut last = String::from("no node is known");
        for backend in shared.backends.candidates(except) {
            let connect = mysql_async::Conn::new(opts(&backend.mysql, user, password));
            match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(Ok(mut conn)) => {
                    backend.set_healthy(true);
                    for set in &self.replay {
                        // Best effort: a variable the new node refuses
                        // would have been refused on the first one too.
                        let _ = conn.query_drop(set.as_str()).await;
                    }
                    let answered = shared.metrics.answered(&backend.mysql);
                    self.attached = Some(Attached {
                        backend,
                        conn,
                        answered,
                    });
                    return Ok(());
                }
                Ok(Err(mysql_async::Error::Server(e))) => {
                    // The node answered (refused the login): the client must hear it.
                    return Err(ProxyError::Refused(e));
                }
                Ok(Err(e)) => {
                    backend.set_healthy(false);
                    last = format!("{}: {e}", backend.mysql);
                }
                Err(_) => {
                    backend.set_healthy(false);
                    last = format!("{}: no answer within {CONNECT_TIMEOUT:?}", backend.mysql);
                }
            }
        }
        Err(ProxyError::NoNode(last))
    }

    /// Drops the backend connection; `failed`: its node is marked down.
    fn detach(&mut self, failed: bool) -> Option<Arc<Backend>> {
        let attached = self.attached.take()?;
        if failed {
            attached.backend.set_healthy(false);
        }
        Some(attached.backend)
    }

    fn node(&self) -> String {
        self.attached
            .as_ref()
            .map(|a| a.backend.mysql.clone())
            .unwrap_or_default()
    }

    fn track(&mut self, sql: &str) {
        let head = leading_words(sql);
        match head.as_str() {
            "begin" | "start transaction" => self.in_transaction = true,
            "commit" | "rollback" => self.in_transaction = false,
            _ if head.starts_with("set ") && self.replay.len() < MAX_REPLAYED => {
                self.replay.push(sql.to_string())
            }
            _ => {}
        }
    }
}

/// The first two words of a statement, lower-case, single-spaced.
fn leading_words(sql: &str) -> String {
    sql.split_whitespace()
        .take(2)
        .map(|w| w.trim_end_matches(';').to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end()
        .to_string()
}

fn is_read_only(sql: &str) -> bool {
    let first = leading_words(sql);
    ["select", "show", "desc", "describe", "explain"]
        .iter()
        .any(|verb| first == *verb || first.starts_with(&format!("{verb} ")))
}

fn opensrv_type(t: mysql_async::consts::ColumnType) -> ColumnType {
    ColumnType::try_from(t as u8).unwrap_or(ColumnType::MYSQL_TYPE_VAR_STRING)
}

fn columns_of(columns: &[mysql_async::Column]) -> Vec<Column> {
    columns
        .iter()
        .map(|c| Column {
            table: c.table_str().into_owned(),
            column: c.name_str().into_owned(),
            coltype: opensrv_type(c.column_type()),
            colflags: ColumnFlags::from_bits_truncate(c.flags().bits()),
        })
        .collect()
}

#[async_trait::async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Session {
    type Error = io::Error;

    fn version(&self) -> String {
        self.shared.version()
    }

    fn connect_id(&self) -> u32 {
        self.connection_id
    }

    /// Asks for the password as it is (`mysql_clear_password`): it must
    /// reach the node, and be sent again to another node after a failover.
    fn default_auth_plugin(&self) -> &str {
        "mysql_clear_password"
    }

    /// No switch: a client that will not send clear text logs in without a
    /// password.
    async fn auth_plugin_for_username(&self, _user: &[u8]) -> &str {
        ""
    }

    async fn authenticate(
        &self,
        _plugin: &str,
        username: &[u8],
        _salt: &[u8],
        auth_data: &[u8],
    ) -> bool {
        let Some(password) = clear_password(auth_data) else {
            return false;
        };
        *self.login.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((String::from_utf8_lossy(username).into_owned(), password));
        true
    }

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        info.error(
            ErrorKind::ER_UNKNOWN_COM_ERROR,
            b"prepared statements are not supported through the proxy; send the statement as text",
        )
        .await
    }

    async fn on_execute<'a>(
        &'a mut self,
        _id: u32,
        _params: ParamParser<'a>,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        results
            .error(
                ErrorKind::ER_UNKNOWN_COM_ERROR,
                b"prepared statements are not supported through the proxy; send the statement as text",
            )
            .await
    }

    async fn on_close(&mut self, _stmt: u32) {}

    async fn on_query<'a>(
        &'a mut self,
        sql: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        if let Some(login) = self.login.lock().unwrap_or_else(|p| p.into_inner()).take() {
            self.state.login = login;
        }
        let Session {
            shared,
            state,
            columns,
            ..
        } = self;
        for slot in columns.iter_mut() {
            slot.take();
        }
        let columns: &'a [OnceLock<Vec<Column>>] = columns;
        let metrics = &shared.metrics;
        // A node found down since the last statement: move before sending.
        if !state.in_transaction
            && state
                .attached
                .as_ref()
                .is_some_and(|a| !a.backend.is_healthy())
        {
            if let Some(from) = state.detach(false) {
                metrics.failover(&from.mysql);
            }
        }
        let was_in_transaction = state.in_transaction;
        state.track(sql);
        let held_until = Instant::now() + HOLD_FOR;
        let mut except: Option<String> = None;
        loop {
            if let Err(e) = state.attach(shared, except.as_deref()).await {
                metrics.statement("none", "unreachable");
                return results.error(e.kind(), e.to_string().as_bytes()).await;
            }
            let Some(attached) = state.attached.as_mut() else {
                continue;
            };
            let answered = attached.answered.clone();
            let mysql = attached.backend.mysql.clone();
            let error = match attached.conn.query_iter(sql).await {
                Ok(result) => {
                    let relayed = relay(result, results, columns, &mysql).await;
                    if relayed.is_ok() {
                        answered.inc();
                    }
                    return relayed;
                }
                Err(e) => e,
            };
            let node = state.node();
            match error {
                mysql_async::Error::Server(e)
                    if e.message.contains(SWAP_WINDOW)
                        && !state.in_transaction
                        && Instant::now() < held_until =>
                {
                    metrics.held(&node);
                    tokio::time::sleep(HOLD_STEP).await;
                }
                mysql_async::Error::Server(e) => {
                    if let Some(reply) = shared.answer_locally(&node, &state.login.0, sql, &e).await
                    {
                        metrics.statement(&node, "answered_here");
                        return write_reply(reply, results, columns, &e).await;
                    }
                    metrics.statement(&node, "error");
                    return results
                        .error(ErrorKind::from(e.code), e.message.as_bytes())
                        .await;
                }
                // Anything but the node's own answer: the connection is gone.
                e => {
                    tracing::debug!(node = %node, error = %e, "lost the connection to a node");
                    state.detach(true);
                    metrics.failover(&node);
                    let lost = if was_in_transaction || state.in_transaction {
                        state.in_transaction = false;
                        Some(ProxyError::LostInTransaction(node.clone()))
                    } else if !is_read_only(sql) || except.is_some() {
                        Some(ProxyError::MaybeRan(node.clone()))
                    } else {
                        None
                    };
                    if let Some(lost) = lost {
                        metrics.statement(&node, "lost");
                        return results
                            .error(lost.kind(), lost.to_string().as_bytes())
                            .await;
                    }
                    except = Some(node);
                }
            }
        }
    }
}

/// Relays every result set of `result` to the client as it arrives.
/// A reply that breaks off with the connection (`node` went away mid-result)
/// reaches the client as an error and is logged: it cannot be sent again.
async fn relay<'a, W: AsyncWrite + Send + Unpin>(
    mut result: mysql_async::QueryResult<'_, 'static, mysql_async::TextProtocol>,
    results: QueryResultWriter<'a, W>,
    slots: &'a [OnceLock<Vec<Column>>],
    node: &str,
) -> io::Result<()> {
    let broke_off = |e: &mysql_async::Error| {
        if !matches!(e, mysql_async::Error::Server(_)) {
            tracing::warn!(node = %node, error = %e, "a node's reply broke off mid-result; the client got an error");
        }
    };
    let mut results = results;
    let mut index = 0;
    loop {
        let columns = result.columns().unwrap_or_else(|| Arc::from(Vec::new()));
        if columns.is_empty() {
            let mut ok = OkResponse {
                affected_rows: result.affected_rows(),
                last_insert_id: result.last_insert_id().unwrap_or(0),
                info: result.info().into_owned(),
                warnings: result.warnings(),
                ..OkResponse::default()
            };
            if let Err(e) = result.next().await {
                broke_off(&e);
                return results
                    .error(error_kind(&e), e.to_string().as_bytes())
                    .await;
            }
            if result.columns().is_none() {
                return results.completed(ok).await;
            }
            ok.status_flags
                .set(StatusFlags::SERVER_MORE_RESULTS_EXISTS, true);
            results = results.complete_one(ok).await?;
        } else {
            let Some(slot) = slots.get(index) else {
                let _ = result.drop_result().await;
                return results.no_more_results().await;
            };
            let defs = slot.get_or_init(|| columns_of(&columns));
            let mut rows = results.start(defs).await?;
            loop {
                match result.next().await {
                    Ok(Some(row)) => {
                        for value in row.unwrap() {
                            match value {
                                mysql_async::Value::NULL => rows.write_col(None::<&[u8]>)?,
                                mysql_async::Value::Bytes(bytes) => rows.write_col(&bytes[..])?,
                                other => rows.write_col(other.as_sql(true).as_bytes())?,
                            }
                        }
                        rows.end_row().await?;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        broke_off(&e);
                        return rows
                            .finish_error(error_kind(&e), &e.to_string().into_bytes())
                            .await;
                    }
                }
            }
            if result.columns().is_none() {
                return rows.finish().await;
            }
            results = rows.finish_one().await?;
        }
        index += 1;
    }
}

fn error_kind(e: &mysql_async::Error) -> ErrorKind {
    match e {
        mysql_async::Error::Server(s) => ErrorKind::from(s.code),
        _ => ErrorKind::ER_UNKNOWN_ERROR,
    }
}

/// Writes what the sharding handlers answered.
async fn write_reply<'a, W: AsyncWrite + Send + Unpin>(
    reply: Reply,
    results: QueryResultWriter<'a, W>,
    slots: &'a [OnceLock<Vec<Column>>],
    original: &mysql_async::ServerError,
) -> io::Result<()> {
    let sets = match reply {
        Reply::Sets(sets) => sets,
        Reply::Error(text) => {
            return results
                .error(ErrorKind::ER_PARSE_ERROR, text.as_bytes())
                .await
        }
        Reply::Text(_) | Reply::Decline => {
            return results
                .error(ErrorKind::from(original.code), original.message.as_bytes())
                .await
        }
    };
    let mut results = results;
    let count = sets.len().min(slots.len());
    for (i, (set, slot)) in sets.iter().zip(slots).enumerate() {
        let last = i + 1 == count;
        if !set.error.is_empty() {
            return results
                .error(ErrorKind::ER_PARSE_ERROR, set.error.as_bytes())
                .await;
        }
        if set.columns.is_empty() {
            let mut ok = OkResponse {
                affected_rows: set.total,
                ..OkResponse::default()
            };
            if last {
                return results.completed(ok).await;
            }
            ok.status_flags
                .set(StatusFlags::SERVER_MORE_RESULTS_EXISTS, true);
            results = results.complete_one(ok).await?;
            continue;
        }
        let defs = slot.get_or_init(|| handler_columns(set));
        let mut rows = results.start(defs).await?;
        for row in &set.rows {
            for cell in row {
                match cell {
                    serde_json::Value::Null => rows.write_col(None::<&[u8]>)?,
                    serde_json::Value::String(s) => rows.write_col(s.as_bytes())?,
                    other => rows.write_col(other.to_string().as_bytes())?,
                }
            }
            rows.end_row().await?;
        }
        if last {
            return rows.finish().await;
        }
        results = rows.finish_one().await?;
    }
    results.completed(OkResponse::default()).await
}

fn handler_columns(set: &ResultSet) -> Vec<Column> {
    use crate::protocol::ColumnType as T;
    set.columns
        .iter()
        .map(|c| Column {
            table: String::new(),
            column: c.name.clone(),
            coltype: match c.ty {
                T::LongLong => ColumnType::MYSQL_TYPE_LONGLONG,
                T::Long => ColumnType::MYSQL_TYPE_LONG,
                T::Float => ColumnType::MYSQL_TYPE_FLOAT,
                T::Double => ColumnType::MYSQL_TYPE_DOUBLE,
                T::String | T::Other(_) => ColumnType::MYSQL_TYPE_VAR_STRING,
            },
            colflags: ColumnFlags::empty(),
        })
        .collect()
}

/// The envelope searchd would have sent its helper for `sql`, which failed
/// on the node with `error`.
pub fn envelope(user: &str, sql: &str, error: &str) -> Option<BuddyRequest> {
    let body = serde_json::json!({
        "type": "unknown sql request",
        "error": {"message": error, "body": null},
        "version": 3,
        "user": user,
        "message": {"path_query": "", "body": sql},
    });
    BuddyRequest::from_envelope("proxy", body.to_string().as_bytes()).ok()
}

/// The password of a `mysql_clear_password` answer (`password\0`); an
/// empty answer is no password. `None` for anything else (a scramble).
fn clear_password(auth_data: &[u8]) -> Option<String> {
    if auth_data.is_empty() {
        return Some(String::new());
    }
    let text = auth_data.strip_suffix(&[0]).unwrap_or(auth_data);
    if text.contains(&0) {
        return None;
    }
    String::from_utf8(text.to_vec()).ok()
}
