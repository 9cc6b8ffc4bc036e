//! The MySQL wire protocol (opensrv-mysql) in front of the executor.

use std::io;
use std::sync::{Arc, Mutex};

use opensrv_mysql::{
    AsyncMysqlIntermediary, AsyncMysqlShim, Column, ColumnFlags, ColumnType, ErrorKind, OkResponse,
    ParamParser, QueryResultWriter, StatementMetaWriter, StatusFlags,
};
use tokio::io::AsyncWrite;
use tokio::net::TcpListener;

use super::more_results::{MoreFlag, MoreResults};
use crate::auth::Perms;
use crate::buddy::{self, envelope::Failure};
use crate::exec::error::{ErrorCode, ExecError};
use crate::exec::result::{Output, ResultSet};
use crate::exec::session::{Protocol, Session};
use crate::exec::{self};
use crate::node::Node;
use crate::sql::lexer::split_statements;
use crate::store::schema::ResultType;

pub async fn serve(node: Arc<Node>, listener: TcpListener) {
    super::accept_loop(listener, move |stream| {
        let node = node.clone();
        async move {
            let conn_id = node.next_connection_id();
            let more = MoreFlag::default();
            let log = node.clone();
            let shim = Shim {
                node,
                session: Session::new("", Perms::ALL, conn_id, Protocol::Mysql),
                login: Mutex::new(None),
                columns: Vec::new(),
                more: more.clone(),
            };
            let (r, w) = stream.into_split();
            // A client that goes away mid-protocol is not an error worth reporting; anything
            // else that ends the connection (a reply the protocol layer refused to write) is.
            if let Err(e) = AsyncMysqlIntermediary::run_on(shim, r, MoreResults::new(w, more)).await
            {
                use io::ErrorKind::{
                    BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof,
                };
                if !matches!(
                    e.kind(),
                    BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof
                ) {
                    log.log
                        .line(&format!("WARNING: mysql connection {conn_id} closed: {e}"));
                }
            }
        }
    })
    .await
}

struct Shim {
    node: Arc<Node>,
    session: Session,
    /// User name and rights from the handshake (set by `authenticate`).
    login: Mutex<Option<(String, Perms)>>,
    /// Column definitions of the reply being written (they must outlive the row writer).
    columns: Vec<Vec<Column>>,
    /// Raised while the result after a row set starts (see [`MoreResults`]).
    more: MoreFlag,
}

fn column_type(ty: ResultType) -> ColumnType {
    match ty {
        ResultType::LongLong => ColumnType::MYSQL_TYPE_LONGLONG,
        ResultType::Long => ColumnType::MYSQL_TYPE_LONG,
        ResultType::Float => ColumnType::MYSQL_TYPE_FLOAT,
        ResultType::Bool => ColumnType::MYSQL_TYPE_LONG,
        ResultType::String | ResultType::Multi | ResultType::Json => {
            ColumnType::MYSQL_TYPE_VAR_STRING
        }
    }
}

fn columns_of(rs: &ResultSet) -> Vec<Column> {
    rs.columns
        .iter()
        .map(|c| Column {
            table: String::new(),
            column: c.name.clone(),
            coltype: column_type(c.ty),
            colflags: ColumnFlags::empty(),
        })
        .collect()
}

fn error_kind(code: ErrorCode) -> ErrorKind {
    match code {
        ErrorCode::Generic | ErrorCode::Injected => ErrorKind::ER_PARSE_ERROR,
        ErrorCode::NoSuchTable => ErrorKind::ER_NO_SUCH_TABLE,
        ErrorCode::AccessDenied => ErrorKind::ER_ACCESS_DENIED_ERROR,
    }
}

impl Shim {
    fn adopt_login(&mut self) {
        if let Some((user, perms)) = self.login.lock().unwrap_or_else(|p| p.into_inner()).take() {
            self.session.user = user;
            self.session.perms = perms;
        }
    }

    /// Runs the statements of one COM_QUERY, stopping at the first error.
    async fn run(&mut self, sql: &str) -> Vec<Result<Output, ExecError>> {
        let mut outcomes = Vec::new();
        let pieces = split_statements(sql);
        let pieces = if pieces.is_empty() { vec![sql] } else { pieces };
        for piece in pieces {
            let stmt = piece.trim();
            if let Err(e) = crate::faults::before_statement(&self.node, stmt).await {
                outcomes.push(Err(e));
                break;
            }
            match exec::execute(&self.node, &mut self.session, stmt).await {
                Ok(out) => outcomes.push(Ok(out)),
                Err(e) => {
                    outcomes.extend(self.via_helper(stmt, e).await);
                    break;
                }
            }
        }
        outcomes
    }

    /// A failed statement goes to the helper; its reply replaces the error when usable.
    async fn via_helper(&self, stmt: &str, err: ExecError) -> Vec<Result<Output, ExecError>> {
        if !err.code.forwardable() {
            return vec![Err(err)];
        }
        let failure = Failure {
            json_request: false,
            error_message: &err.message,
            error_body: None,
            user: &self.session.user,
            path_query: "",
            body: stmt,
            http_method: "",
        };
        let Some(reply) = buddy::forward(&self.node, &failure, self.session.conn_id).await else {
            return vec![Err(err)];
        };
        match buddy::sql_outcome(&reply) {
            Ok(outcomes) if !outcomes.is_empty() => outcomes,
            Ok(_) => vec![Err(err)],
            Err(why) => {
                self.node.log.line(&format!(
                    "WARNING: [BUDDY] [{}] {why}",
                    self.session.conn_id
                ));
                vec![Err(err)]
            }
        }
    }
}

#[async_trait::async_trait]
impl<W: AsyncWrite + Send + Unpin> AsyncMysqlShim<W> for Shim {
    type Error = io::Error;

    fn version(&self) -> String {
        self.node.server_version().to_string()
    }

    fn connect_id(&self) -> u32 {
        self.session.conn_id
    }

    async fn authenticate(
        &self,
        _plugin: &str,
        username: &[u8],
        _salt: &[u8],
        _auth_data: &[u8],
    ) -> bool {
        let name = String::from_utf8_lossy(username).to_string();
        let perms = if self.node.auth_enabled() {
            // The simulator identifies users by name; passwords are not verified over MySQL.
            match self.node.config.sim.users.iter().find(|u| u.name == name) {
                Some(u) => u.perms,
                None => return false,
            }
        } else {
            Perms::ALL
        };
        *self.login.lock().unwrap_or_else(|p| p.into_inner()) = Some((name, perms));
        true
    }

    async fn on_prepare<'a>(
        &'a mut self,
        _query: &'a str,
        info: StatementMetaWriter<'a, W>,
    ) -> io::Result<()> {
        info.error(
            ErrorKind::ER_UNKNOWN_COM_ERROR,
            b"prepared statements are not supported",
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
                b"prepared statements are not supported",
            )
            .await
    }

    async fn on_close(&mut self, _stmt: u32) {}

    async fn on_query<'a>(
        &'a mut self,
        sql: &'a str,
        results: QueryResultWriter<'a, W>,
    ) -> io::Result<()> {
        self.adopt_login();
        let outcomes = self.run(sql).await;
        self.columns = outcomes
            .iter()
            .map(|o| match o {
                Ok(Output::Rows(rs)) => columns_of(rs),
                _ => Vec::new(),
            })
            .collect();
        let this: &'a Self = self;
        let last_insert_id = this.session.last_insert_id.max(0) as u64;
        let mut results = results;
        let count = outcomes.len();
        let mut after_rows = false;
        for (i, (outcome, cols)) in outcomes.into_iter().zip(&this.columns).enumerate() {
            let last = i + 1 == count;
            // The row set before this result ends with a terminator written by the next call
            // below; it must announce this result.
            this.more
                .store(after_rows, std::sync::atomic::Ordering::Relaxed);
            after_rows = matches!(outcome, Ok(Output::Rows(_)));
            match outcome {
                Err(e) => {
                    return results
                        .error(error_kind(e.code), e.message.as_bytes())
                        .await
                }
                Ok(Output::Ok { affected }) => {
                    // opensrv sends an OK packet's own flags; more results must be announced here.
                    let mut status_flags = StatusFlags::empty();
                    status_flags.set(StatusFlags::SERVER_MORE_RESULTS_EXISTS, !last);
                    let ok = OkResponse {
                        affected_rows: affected,
                        last_insert_id,
                        status_flags,
                        ..OkResponse::default()
                    };
                    if last {
                        return results.completed(ok).await;
                    }
                    results = results.complete_one(ok).await?;
                }
                Ok(Output::Rows(rs)) => {
                    let mut w = results.start(cols).await?;
                    for row in &rs.rows {
                        for cell in row {
                            w.write_col(cell.mysql_text())?;
                        }
                        w.end_row().await?;
                    }
                    if last {
                        return w.finish().await;
                    }
                    results = w.finish_one().await?;
                }
            }
        }
        results.completed(OkResponse::default()).await
    }
}
