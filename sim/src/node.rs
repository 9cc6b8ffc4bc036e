//! The node core: configuration, the catalog with its log, ids, counters and helper state.
//!
//! Every change goes through [`Node::write`]: the caller plans under the write lock and returns
//! mutations; they are appended to the log (before anyone is told about success) and applied.
//!
//! Writes to tables of a replication cluster are planned the same way and then handed to
//! [`crate::cluster::submit`], which sequences the same [`Mutation`] values on the cluster's
//! leader and applies them on every member through this write path.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use thiserror::Error;

use crate::cluster::Clusters;
use crate::config::Config;
use crate::exec::error::{ExecError, ExecResult};
use crate::logfile::DaemonLog;
use crate::store::catalog::Catalog;
use crate::store::mutation::{apply, Mutation};
use crate::store::wal::{Wal, WalError};

/// The version searchd reports by default (the build facts.md was measured on); the helper's
/// version is appended once it runs. `sim { version = … }` replaces it (the golden transcripts of
/// cases 1–5 were recorded from build `29.2.2 e790cb571@26082211`).
pub const VERSION: &str = "29.2.2 fe8f84c8b@26082106";

#[derive(Debug, Error)]
pub enum NodeError {
    #[error("{0}")]
    Wal(#[from] WalError),
}

/// The running helper as searchd knows it after the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelperInfo {
    /// `http://<ip>:<port>`
    pub url: String,
    /// `v<version>` as printed in the handshake.
    pub version: String,
}

struct Store {
    catalog: Catalog,
    wal: Wal,
}

/// Counters shown by SHOW STATUS.
#[derive(Default)]
pub struct Counters {
    pub connections: AtomicU64,
    pub queries: AtomicU64,
    pub command_search: AtomicU64,
    pub command_insert: AtomicU64,
    pub command_replace: AtomicU64,
    pub command_update: AtomicU64,
    pub command_delete: AtomicU64,
    pub command_status: AtomicU64,
    pub command_sphinxql: AtomicU64,
}

pub struct Node {
    pub config: Config,
    pub log: DaemonLog,
    store: RwLock<Store>,
    next_id: AtomicI64,
    started: Instant,
    helper: Mutex<Option<HelperInfo>>,
    log_level: Mutex<String>,
    pub counters: Counters,
    /// Identity of the connection that gets the next id.
    next_conn: AtomicU64,
    /// Bearer token of the internal helper user (only with auth configured).
    pub helper_token: Option<String>,
    /// Replication clusters: membership, liveness and sequencing.
    pub clusters: Clusters,
    /// Test tooling: statement faults (`sim { statement_fault = … }` and the control messages).
    pub statement_faults: crate::faults::StatementFaults,
}

impl Node {
    pub fn open(config: Config, log: DaemonLog) -> Result<Node, NodeError> {
        let recovered = Wal::open(
            &config.data_dir,
            config.sim.wal_fsync,
            config.sim.wal_compact_records,
        )?;
        for s in &recovered.skipped {
            log.line(&format!("WARNING: replay: {s}"));
        }
        if recovered.replayed > 0 {
            log.line(&format!(
                "replayed {} log records from {}",
                recovered.replayed,
                recovered.wal.path().display()
            ));
        }
        let helper_token = (!config.sim.users.is_empty()).then(crate::buddy::new_token);
        let first_id =
            first_auto_id(&config.node_id()).max(recovered.catalog.max_id().saturating_add(1));
        Ok(Node {
            clusters: Clusters::new(&config),
            statement_faults: crate::faults::StatementFaults::new(
                config.sim.statement_faults.iter().cloned(),
            ),
            config,
            log,
            store: RwLock::new(Store {
                catalog: recovered.catalog,
                wal: recovered.wal,
            }),
            next_id: AtomicI64::new(first_id),
            started: Instant::now(),
            helper: Mutex::new(None),
            log_level: Mutex::new("info".to_string()),
            counters: Counters::default(),
            next_conn: AtomicU64::new(1),
            helper_token,
        })
    }

    pub fn node_id(&self) -> String {
        self.config.node_id()
    }

    /// Read access to the catalog. Never hold it across an `.await`.
    pub fn catalog(&self) -> CatalogGuard<'_> {
        CatalogGuard(self.store.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Plans a change under the write lock, persists the mutations, then applies them.
    pub fn write<R>(
        &self,
        plan: impl FnOnce(&Catalog) -> ExecResult<(Vec<Mutation>, R)>,
    ) -> ExecResult<R> {
        let mut store = self.store.write().unwrap_or_else(|p| p.into_inner());
        let (mutations, result) = plan(&store.catalog)?;
        if mutations.is_empty() {
            return Ok(result);
        }
        store
            .wal
            .append(&mutations)
            .map_err(|e| ExecError::new(format!("failed to write the log: {e}")))?;
        let Store { catalog, wal } = &mut *store;
        for m in &mutations {
            if let Err(e) = apply(catalog, m) {
                // Planning validated the change; a failure here is a bug worth seeing in the log.
                self.log
                    .line(&format!("WARNING: applying a planned change failed: {e}"));
            }
        }
        if wal.needs_compaction() {
            if let Err(e) = wal.compact(catalog) {
                self.log
                    .line(&format!("WARNING: log compaction failed: {e}"));
            }
        }
        Ok(result)
    }

    /// A fresh document id, unique on this node across restarts.
    pub fn next_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }

    pub fn next_connection_id(&self) -> u32 {
        self.counters.connections.fetch_add(1, Ordering::Relaxed);
        self.next_conn.fetch_add(1, Ordering::Relaxed) as u32
    }

    pub fn helper(&self) -> Option<HelperInfo> {
        self.helper
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_helper(&self, info: Option<HelperInfo>) {
        *self.helper.lock().unwrap_or_else(|p| p.into_inner()) = info;
    }

    /// `29.2.2 … (buddy v1.2.3)` while a helper runs.
    pub fn version(&self) -> String {
        let own = &self.config.sim.version;
        match self.helper() {
            Some(h) => format!("{own} (buddy {})", h.version),
            None => own.clone(),
        }
    }

    /// The version without the helper's (the `Server:` header, the MySQL handshake).
    pub fn server_version(&self) -> &str {
        &self.config.sim.version
    }

    pub fn log_level(&self) -> String {
        self.log_level
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set_log_level(&self, level: &str) {
        *self.log_level.lock().unwrap_or_else(|p| p.into_inner()) = level.to_string();
    }

    /// Whether auth is configured (then requests must identify a user).
    pub fn auth_enabled(&self) -> bool {
        !self.config.sim.users.is_empty()
    }
}

pub struct CatalogGuard<'a>(RwLockReadGuard<'a, Store>);

impl std::ops::Deref for CatalogGuard<'_> {
    type Target = Catalog;
    fn deref(&self) -> &Catalog {
        &self.0.catalog
    }
}

/// searchd-style uid: server id in the top bits, start time in the middle, a counter below.
fn first_auto_id(node_id: &str) -> i64 {
    // 32..=63: ids always have 19 digits, like searchd's.
    let server = i64::from(0x20 | (crc32fast::hash(node_id.as_bytes()) & 0x1f));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    (server << 56) | (((now & 0xffff_ffff) as i64) << 24) | 1
}
