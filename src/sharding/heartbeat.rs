//! The heartbeat task, the election's driver: every interval it renews this
//! node's registration (`node:<id>`: this process and its beat, see
//! [`Pulse`]), reads the cluster view and the master lease, runs the
//! election ([`Election`], sans I/O) and writes what it decides — it is the
//! only writer of the lease — and publishes the role.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::ids::NodeId;
use crate::sharding::daemon;
use crate::sharding::daemon::LocalNode;
use crate::sharding::election::{Election, LeaseWrite, Role, View};
use crate::sharding::metadata::Metadata;
use crate::sharding::pulse::Pulse;
use crate::sharding::records::Lease;
use crate::sharding::store::{MetaStore, StoreError};
use crate::sharding::ticker::{Signals, Ticker};

/// What the heartbeat task works with.
pub struct Heartbeat {
    pub node: LocalNode,
    pub metadata: Metadata,
    pub signals: Arc<Signals>,
    pub pulse: Arc<Pulse>,
    pub interval: Duration,
    pub lease_timeout: Duration,
    pub role: watch::Sender<Role>,
}

pub async fn run(task: Heartbeat, shutdown: CancellationToken) {
    let ticker = Ticker::new(task.interval, &task.signals.heartbeat, &shutdown);
    let mut election: Option<Election> = None;
    while ticker.next(None).await {
        let me = match task.node.id().await {
            Ok(id) => id,
            Err(e) => {
                debug!(error = %e, "node identity not known yet");
                continue;
            }
        };
        let store = match task.metadata.store().await {
            Ok(Some(store)) => store,
            Ok(None) => continue,
            Err(e) => {
                debug!(error = %e, "cannot read sharding metadata");
                continue;
            }
        };
        beat(&*store, &me, &task.pulse).await;
        let election =
            election.get_or_insert_with(|| Election::new(me.clone(), task.lease_timeout));
        task.tick(&*store, &me, election).await;
    }
}

/// Writes `node:<id>` with this process's next beat (Buddy's tests count
/// these keys to see a node join).
pub async fn beat(store: &dyn MetaStore, me: &NodeId, pulse: &Pulse) {
    if let Err(e) = store.put_registration(me, &pulse.registration()).await {
        debug!(error = %e, "node registration not written");
    }
}

impl Heartbeat {
    async fn tick(&self, store: &dyn MetaStore, me: &NodeId, election: &mut Election) {
        let Some(members) = daemon::membership(&**self.node.api(), store.scope(), me).await else {
            self.role.send_replace(Role::Follower { master: None });
            return;
        };
        let lease = match store.lease().await {
            Ok(lease) => lease,
            Err(e) => {
                debug!(error = %e, "cannot read the master lease");
                return;
            }
        };
        let was_master = matches!(*self.role.borrow(), Role::Master { .. });
        let now = Instant::now();
        let view = View {
            lease: lease.as_ref(),
            live: &members.active,
            writable: members.primary,
            founder: self.metadata.founded_here(),
        };
        let (mut role, write) = election.tick(now, view);
        if let Some(write) = write {
            match write_lease(store, &write).await {
                Ok(lease) => {
                    election.written(now, &lease);
                    role = Role::Master { epoch: lease.epoch };
                }
                Err(e) => warn!(error = %e, "master lease not written"),
            }
        }
        if let Role::Master { epoch } = role {
            if !was_master {
                info!(node = %me, epoch, "becoming master");
                self.signals.master.notify_one();
            }
        }
        self.role.send_if_modified(|r| {
            let changed = *r != role;
            *r = role;
            changed
        });
    }
}

/// The one place the lease is written.
async fn write_lease(store: &dyn MetaStore, write: &LeaseWrite) -> Result<Lease, StoreError> {
    let (lease, takeover) = match write {
        LeaseWrite::Renew(l) => (l, false),
        LeaseWrite::TakeOver(l) => (l, true),
    };
    store.put_lease(lease).await?;
    if takeover {
        // PHP Buddy and people read the plain `master` key.
        store.put_master(&lease.node).await?;
    }
    Ok(lease.clone())
}
