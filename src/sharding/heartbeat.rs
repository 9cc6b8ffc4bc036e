//! The heartbeat task: every interval it records this node's heartbeat
//! (`node:<id>`, one write per node whatever the number of tables), reads the
//! master lease, runs the election and writes what it decides.

use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::ids::NodeId;
use crate::sharding::clock::now_s;
use crate::sharding::daemon;
use crate::sharding::lease::{Election, Lease, LeaseWrite, Role};
use crate::sharding::runtime::Shared;
use crate::sharding::state::StateKey;
use crate::sharding::store::Store;
use crate::sharding::topology::Membership;

/// The `node:<id>` value (PHP Buddy writes `seen_at` only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub seen_at: i64,
    #[serde(default)]
    pub version: String,
}

/// Live membership of the cluster the metadata lives in.
pub async fn membership(shared: &Shared, store: &Store, me: &NodeId) -> Option<Membership> {
    let Some(cluster) = store.cluster() else {
        return Some(Membership::single(me));
    };
    match daemon::cluster_health(&shared.client, cluster).await {
        Ok(Some(health)) => Some(health.membership),
        Ok(None) => None,
        Err(e) => {
            debug!(error = %e, "cannot read cluster status");
            None
        }
    }
}

pub async fn run(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut election: Option<Election> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(shared.config.heartbeat_interval) => {}
            _ = shared.wake_heartbeat.notified() => {}
        }
        let node = match shared.node().await {
            Ok(node) => node.id.clone(),
            Err(e) => {
                debug!(error = %e, "node identity not known yet");
                continue;
            }
        };
        let store = match shared.store().await {
            Ok(Some(store)) => store,
            Ok(None) => continue,
            Err(e) => {
                debug!(error = %e, "cannot read sharding metadata");
                continue;
            }
        };
        let election = election
            .get_or_insert_with(|| Election::new(node.clone(), shared.config.lease_timeout));
        tick(&shared, &store, &node, election).await;
    }
}

async fn tick(shared: &Shared, store: &Store, me: &NodeId, election: &mut Election) {
    let beat = Heartbeat {
        seen_at: now_s(),
        version: crate::VERSION.to_string(),
    };
    if let Err(e) = store
        .put(&StateKey::Node(me.clone()), &beat, beat.seen_at)
        .await
    {
        debug!(error = %e, "heartbeat not written");
    }
    let Some(members) = membership(shared, store, me).await else {
        shared.set_role(Role::Follower { master: None });
        return;
    };
    let lease: Option<Lease> = match store.get_as(&StateKey::MasterLease).await {
        Ok(lease) => lease,
        Err(e) => {
            debug!(error = %e, "cannot read the master lease");
            return;
        }
    };
    let was_master = matches!(shared.role(), Role::Master { .. });
    let now = Instant::now();
    let (mut role, write) = election.tick(now, lease.as_ref(), &members.active, members.primary);
    if let Some(write) = write {
        let (lease, takeover) = match write {
            LeaseWrite::Renew(l) => (l, false),
            LeaseWrite::TakeOver(l) => (l, true),
        };
        match write_lease(store, &lease, takeover).await {
            Ok(()) => {
                election.written(now, &lease);
                role = Role::Master { epoch: lease.epoch };
            }
            Err(e) => warn!(error = %e, "master lease not written"),
        }
    }
    if let Role::Master { epoch } = role {
        if !was_master {
            info!(node = %me, epoch, "becoming master");
            shared.wake_coordinator.notify_one();
        }
    }
    shared.set_role(role);
}

async fn write_lease(
    store: &Store,
    lease: &Lease,
    takeover: bool,
) -> Result<(), crate::sharding::store::StoreError> {
    store.put(&StateKey::MasterLease, lease, now_s()).await?;
    if takeover {
        // PHP Buddy and people read the plain `master` key.
        store.put(&StateKey::Master, &lease.node, now_s()).await?;
    }
    Ok(())
}
