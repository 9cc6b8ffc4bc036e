//! First use: creating the metadata tables, attaching them to the user
//! cluster, and making this node the first master (spec §6.2).

use md5::{Digest, Md5};
use tracing::info;

use crate::ids::ClusterName;
use crate::sharding::clock::now_s;
use crate::sharding::daemon;
use crate::sharding::lease::Lease;
use crate::sharding::ops::common::OpError;
use crate::sharding::runtime::Shared;
use crate::sharding::state::StateKey;
use crate::sharding::store::Store;
use crate::sharding::topology::Membership;

/// PHP Buddy's topology fingerprint: `md5(join('|', sorted nodes))`.
pub fn cluster_hash(members: &Membership) -> String {
    let joined: Vec<&str> = members.active.iter().map(|n| n.as_str()).collect();
    format!("{:x}", Md5::digest(joined.join("|").as_bytes()))
}

/// The store, setting the metadata up first when this node has none. A
/// setup that was interrupted half-way (tables made, keys not written) is
/// completed.
pub async fn ensure(shared: &Shared, cluster: Option<&ClusterName>) -> Result<Store, OpError> {
    if let Some(store) = shared.store().await? {
        return Ok(store);
    }
    let node = shared.node().await?.id.clone();
    let store = Store::new(shared.client.clone(), cluster.cloned());
    store.prepare_tables().await?;
    if store.get(&StateKey::Cluster).await?.is_some() {
        // Another node completed the setup meanwhile; its rows reached us.
        return shared.store().await?.ok_or_else(|| {
            OpError::User("sharding metadata is being set up by another node: retry".into())
        });
    }
    let members = match cluster {
        Some(c) => daemon::cluster_health(&shared.client, c)
            .await?
            .map(|h| h.membership)
            .unwrap_or_else(|| Membership::single(&node)),
        None => Membership::single(&node),
    };
    let now = now_s();
    let name = cluster.map(ClusterName::as_str).unwrap_or("");
    store
        .put(&StateKey::ClusterHash, &cluster_hash(&members), now)
        .await?;
    if store.get(&StateKey::MasterLease).await?.is_none() {
        let lease = Lease {
            node: node.clone(),
            epoch: 1,
            beat: 0,
        };
        store.put(&StateKey::MasterLease, &lease, now).await?;
        store.put(&StateKey::Master, &node, now).await?;
    }
    // Written last: it marks the metadata as ready (see `Shared::store`).
    store.put(&StateKey::Cluster, &name, now).await?;
    shared.bind(cluster.cloned());
    shared.wake_heartbeat.notify_one();
    info!(node = %node, cluster = name, "sharding metadata set up");
    Ok(store)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::NodeId;

    #[test]
    fn hash_matches_buddy() {
        let m = Membership {
            all: Default::default(),
            active: [NodeId::new("b"), NodeId::new("a")].into(),
            primary: true,
        };
        assert_eq!(cluster_hash(&m), format!("{:x}", Md5::digest(b"a|b")));
    }
}
