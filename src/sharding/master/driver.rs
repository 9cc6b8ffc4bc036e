//! The master's task: while this node holds the lease, load a snapshot,
//! let the engine decide, apply its commands, and loop. Nothing here decides
//! anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::failpoint;
use crate::ids::{ClusterName, NodeId};
use crate::sharding::clock::now_ms;
use crate::sharding::config::RetryPolicy;
use crate::sharding::daemon;
use crate::sharding::daemon::{ClusterReport, LocalNode};
use crate::sharding::election::Role;
use crate::sharding::holdings::{self, Holdings};
use crate::sharding::master::command::Command;
use crate::sharding::master::engine::{EngineConfig, MasterEngine};
use crate::sharding::master::snapshot::Snapshot;
use crate::sharding::metadata::Metadata;
use crate::sharding::node::NodeApi;
use crate::sharding::records::{GroupStatus, QueueRow};
use crate::sharding::store::{MetaStore, StoreError};
use crate::sharding::ticker::{Signals, Ticker};

/// What the master task works with.
pub struct Master {
    pub node: LocalNode,
    pub metadata: Metadata,
    pub signals: Arc<Signals>,
    pub poll: Duration,
    pub config: EngineConfig,
    /// How often the rounds read what every live node holds, for the
    /// cleanup of orphans; `None`: never.
    pub cleanup: Option<Duration>,
    pub role: watch::Receiver<Role>,
}

pub async fn run(task: Master, shutdown: CancellationToken) {
    let ticker = Ticker::new(task.poll, &task.signals.master, &shutdown);
    let mut engine: Option<MasterEngine> = None;
    let mut last_sweep: Option<Instant> = None;
    while ticker.next(None).await {
        let Role::Master { epoch } = task.role.borrow().clone() else {
            engine = None;
            continue;
        };
        let (Ok(me), Ok(Some(store))) = (task.node.id().await, task.metadata.store().await) else {
            continue;
        };
        if engine.as_ref().map(MasterEngine::epoch) != Some(epoch) {
            match store.max_queue_id().await {
                Ok(max) => engine = Some(MasterEngine::new(epoch, me.clone(), max)),
                Err(e) => {
                    warn!(error = %e, "cannot take office as master");
                    continue;
                }
            }
        }
        let Some(engine) = engine.as_mut() else {
            continue;
        };
        let sweep = task
            .cleanup
            .is_some_and(|every| last_sweep.is_none_or(|at| at.elapsed() >= every));
        if sweep {
            last_sweep = Some(Instant::now());
        }
        let api = &**task.node.api();
        if let Err(e) = round(
            engine,
            &*store,
            api,
            &me,
            &task.config,
            &task.signals,
            sweep,
        )
        .await
        {
            debug!(error = %e, "master round failed");
        }
    }
}

/// One step of the engine, applied.
async fn round(
    engine: &mut MasterEngine,
    store: &dyn MetaStore,
    api: &dyn NodeApi,
    me: &NodeId,
    config: &EngineConfig,
    signals: &Signals,
    sweep: bool,
) -> Result<(), StoreError> {
    // Decide only from metadata read while this node's copy was current
    // throughout: a node cut off from the quorum keeps its old rows (the
    // lease naming it master among them), and one that rejoins serves them
    // until its state transfer is done; commands decided from them would
    // land on the current metadata once the node is back.
    let Some(view) = daemon::current_view(api, store.scope()).await? else {
        debug!("the metadata on this node is not current; waiting");
        return Ok(());
    };
    let snapshot = load(store, api, me, &config.retry, sweep).await?;
    if daemon::current_view(api, store.scope()).await?.as_ref() != Some(&view) {
        debug!("the metadata cluster changed its view while being read; reading again");
        signals.master.notify_one();
        return Ok(());
    }
    let commands = engine.step(&snapshot, config);
    apply(store, api, me, signals, commands).await
}

/// Reads everything the engine decides from. The nodes are read before the
/// metadata: with `sweep`, what every live node holds, so that an object an
/// operation made is either placed or seen with its operation still open.
pub async fn load(
    store: &dyn MetaStore,
    api: &dyn NodeApi,
    me: &NodeId,
    retry: &RetryPolicy,
    sweep: bool,
) -> Result<Snapshot, StoreError> {
    let lease = store.lease().await?;
    let members = daemon::membership(api, store.scope(), me).await;
    let (clusters, holdings) = match &members {
        Some(m) => {
            let replicated = store.scope().cluster().is_some();
            observe(api, me, &m.active, replicated, sweep).await
        }
        None => (BTreeMap::new(), None),
    };
    let tables = store.tables().await?;
    let groups = store.groups().await?;
    let mut unfinished: BTreeMap<_, Vec<QueueRow>> = BTreeMap::new();
    for row in store.unprocessed_rows().await? {
        unfinished.entry(row.group.clone()).or_default().push(row);
    }
    let mut aborting = BTreeMap::new();
    for (name, rec) in &groups {
        if rec.status == GroupStatus::Aborting {
            aborting.insert(name.clone(), store.group_rows(name).await?);
        }
    }
    let failed: BTreeSet<u64> = unfinished
        .values()
        .flatten()
        .filter(|r| retry.is_final(r))
        .map(|r| r.id)
        .collect();
    let mut failures = BTreeMap::new();
    for id in failed {
        if let Some(f) = store.row_failure(id).await? {
            failures.insert(id, f);
        }
    }
    let placement = store.placement_rows(None).await?;
    let registrations = store.registrations().await?;
    let controls = store.controls().await?;
    let drained = store.drained().await?.into_keys().collect();
    let registered = registrations.keys().cloned().collect();
    Ok(Snapshot {
        now: Instant::now(),
        now_ms: now_ms(),
        lease,
        scope: store.scope().clone(),
        members,
        tables,
        groups,
        unfinished,
        aborting,
        failures,
        placement,
        registered,
        registrations,
        clusters,
        controls,
        drained,
        holdings,
    })
}

/// What the live nodes report of their replication clusters (promotion
/// and plans decide from them; with local sharding there are none) and,
/// with `sweep`, everything they hold (which includes their clusters). A
/// node that cannot be asked is left out.
async fn observe(
    api: &dyn NodeApi,
    me: &NodeId,
    live: &BTreeSet<NodeId>,
    replicated: bool,
    sweep: bool,
) -> (
    BTreeMap<NodeId, Vec<ClusterReport>>,
    Option<BTreeMap<NodeId, Holdings>>,
) {
    let mut clusters = BTreeMap::new();
    let mut held = BTreeMap::new();
    for node in live {
        let remote = (node != me).then(|| api.for_node(node));
        let on = remote.as_deref().unwrap_or(api);
        let reports = if sweep {
            match holdings::read(on, node).await {
                Ok(h) => {
                    let reports = h.clusters.clone();
                    held.insert(node.clone(), h);
                    Ok(reports)
                }
                Err(e) => Err(e),
            }
        } else if replicated {
            daemon::cluster_reports(on).await
        } else {
            Ok(Vec::new())
        };
        match reports {
            Ok(reports) if replicated => {
                clusters.insert(node.clone(), reports);
            }
            Ok(_) => {
                clusters.insert(node.clone(), Vec::new());
            }
            Err(e) => debug!(node = %node, error = %e, "cannot read what the node holds"),
        }
    }
    (clusters, sweep.then_some(held))
}

/// `SET CLUSTER <c> GLOBAL 'pc.bootstrap' = 1` on `node`. A failure is
/// logged; the engine promotes again while the cluster stays non-primary.
async fn bootstrap(api: &dyn NodeApi, me: &NodeId, node: &NodeId, cluster: &ClusterName) {
    let sql = format!("SET CLUSTER {cluster} GLOBAL 'pc.bootstrap' = 1");
    let result = if node == me {
        api.query_one(&sql).await
    } else {
        api.for_node(node).query_one(&sql).await
    };
    if let Err(e) = result {
        warn!(node = %node, cluster = %cluster, error = %e, "cannot make replica set writable");
    }
}

/// Applies `commands` in order, stopping at the first that fails.
pub async fn apply(
    store: &dyn MetaStore,
    api: &dyn NodeApi,
    me: &NodeId,
    signals: &Signals,
    commands: Vec<Command>,
) -> Result<(), StoreError> {
    let mut enqueued = false;
    if commands.iter().any(|c| matches!(c, Command::Enqueue(_))) {
        failpoint::hit(failpoint::MASTER_AFTER_PLAN).await?;
    }
    for command in commands {
        match command {
            Command::Enqueue(rows) => {
                store.enqueue(&rows).await?;
                enqueued = true;
                failpoint::hit(failpoint::MASTER_AFTER_ROWS).await?;
            }
            Command::ReplacePlacement(table, rows) => {
                store.replace_placement(&table, &rows).await?
            }
            Command::DeletePlacement(table) => store.delete_placement(&table).await?,
            Command::PutTable(table, state) => store.put_table(&table, &state).await?,
            Command::DeleteTable(table) => store.delete_table(&table).await?,
            Command::PutGroup(name, record) => {
                store.put_group(&name, &record).await?;
                if enqueued && record.status == GroupStatus::Committed {
                    failpoint::hit(failpoint::MASTER_AFTER_COMMIT).await?;
                }
            }
            Command::PurgeGroup(name) => store.purge_group(&name).await?,
            Command::PutControl(table, request) => store.put_control(&table, &request).await?,
            Command::WakeExecutors => signals.executor.notify_one(),
            Command::TableChanged => signals.table_changed.notify_waiters(),
            Command::StepAgain => signals.master.notify_one(),
            Command::Bootstrap { node, cluster } => bootstrap(api, me, &node, &cluster).await,
            Command::Log(event) => {
                // The message stays Buddy's text; the fields are for
                // machine-readable logs (SHARDBUDDY_LOG_FORMAT=json).
                let (table, group) = event.subject();
                let (table, group) = (table.map(|t| t.as_str()), group.map(|g| g.as_str()));
                if event.is_warning() {
                    warn!(table, group, "{event}");
                } else {
                    info!(table, group, "{event}");
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TableName;
    use crate::sharding::records::{
        Lease, OpKind, OpRequest, QueueStatus, Scope, TableState, TableStatus,
    };
    use crate::sharding::store::memory::MemStore;
    use crate::sharding::testing::FakeNode;

    /// A store in `scope` whose lease names `me` (epoch 1), with a CREATE of
    /// `t` (2 shards, rf 1) requested by `me`.
    async fn create_requested(scope: Scope, me: &NodeId) -> (MemStore, TableName) {
        let t = TableName::parse("t").unwrap();
        let store = MemStore::new(scope.clone());
        store
            .put_lease(&Lease {
                node: me.clone(),
                epoch: 1,
                beat: 0,
            })
            .await
            .unwrap();
        let request = OpRequest {
            id: "r".into(),
            by: me.clone(),
            at_ms: 0,
            timeout_ms: 30_000,
            scope,
            shards: 2,
            rf: 1,
            instance: None,
        };
        let state =
            TableState::requested(OpKind::Create, request, "id bigint".into(), String::new());
        store.put_table(&t, &state).await.unwrap();
        (store, t)
    }

    /// A local CREATE through the seams: the snapshot comes from the store,
    /// the commands go back to it, and the executors' work is played by
    /// marking rows processed.
    #[tokio::test]
    async fn a_local_create_runs_through_store_and_engine() {
        let me = NodeId::new("n1");
        let (store, t) = create_requested(Scope::Local, &me).await;
        let node = FakeNode::new(|sql, _| panic!("a local master asks the node nothing: {sql}"));
        let signals = Signals::default();
        let config = crate::sharding::master::tests::CONFIG;

        let mut engine = MasterEngine::new(1, me.clone(), store.max_queue_id().await.unwrap());
        async fn step(
            engine: &mut MasterEngine,
            store: &MemStore,
            node: &FakeNode,
            me: &NodeId,
            signals: &Signals,
            config: &EngineConfig,
        ) {
            let snapshot = load(store, node, me, &config.retry, false).await.unwrap();
            apply(store, node, me, signals, engine.step(&snapshot, config))
                .await
                .unwrap();
        }
        // Takes office, then plans.
        for _ in 0..2 {
            step(&mut engine, &store, &node, &me, &signals, &config).await;
        }
        assert_eq!(store.with(|c| c.rows.len()), 3);
        assert_eq!(store.with(|c| c.placement.len()), 1);
        store.with(|c| {
            for row in c.rows.values_mut() {
                row.status = QueueStatus::Processed;
            }
        });
        step(&mut engine, &store, &node, &me, &signals, &config).await;
        let done = store.table(&t).await.unwrap().unwrap();
        assert_eq!(done.status, TableStatus::Done);
        assert!(done.result.is_some());
    }

    /// A master decides nothing from metadata its node may hold stale: cut
    /// off from the quorum, rejoining (primary but `joining`), or with the
    /// view changing while the snapshot was read.
    #[tokio::test]
    async fn a_master_whose_copy_is_not_current_decides_nothing() {
        use crate::ids::ClusterName;
        use crate::sharding::testing::counters;
        use std::sync::Mutex;

        let me = NodeId::new("127.0.0.1:9312");
        let scope = Scope::Cluster(ClusterName::parse("c").unwrap());
        let (store, _) = create_requested(scope, &me).await;
        // (status, node_state) answered in turn, then the last one for good;
        // the view's conf_id is the answer's number.
        let answers: Arc<Mutex<Vec<(&str, &str)>>> = Arc::default();
        let asked = Arc::new(Mutex::new(0usize));
        let node = {
            let (answers, asked) = (answers.clone(), asked.clone());
            FakeNode::new(move |sql, _| {
                if sql != "SHOW STATUS LIKE 'cluster_c_%'" {
                    return counters(&[]);
                }
                let mut n = asked.lock().unwrap();
                let list = answers.lock().unwrap();
                let (status, state) = list[(*n).min(list.len() - 1)];
                let conf = (*n).min(list.len() - 1).to_string();
                *n += 1;
                counters(&[
                    ("cluster_c_status", status),
                    ("cluster_c_node_state", state),
                    ("cluster_c_conf_id", &conf),
                    ("cluster_c_nodes_set", "127.0.0.1:9312"),
                    (
                        "cluster_c_nodes_view",
                        "127.0.0.1:9312,127.0.0.1:9313:replication",
                    ),
                ])
            })
        };
        let signals = Signals::default();
        let config = crate::sharding::master::tests::CONFIG;
        let mut engine = MasterEngine::new(1, me.clone(), 0);
        let rounds = |list: Vec<(&'static str, &'static str)>| {
            *answers.lock().unwrap() = list;
            *asked.lock().unwrap() = 0;
        };
        for (case, list) in [
            ("cut off from the quorum", vec![("non-primary", "synced")]),
            ("rejoining", vec![("primary", "joining")]),
            (
                "a view change while reading",
                vec![("primary", "synced"), ("primary", "synced")],
            ),
        ] {
            rounds(list);
            for _ in 0..3 {
                round(&mut engine, &store, &node, &me, &config, &signals, false)
                    .await
                    .unwrap();
                *asked.lock().unwrap() = 0;
            }
            assert_eq!(store.with(|c| c.groups.len()), 0, "{case}");
            assert_eq!(store.with(|c| c.rows.len()), 0, "{case}");
        }
        // Current throughout: the engine takes office, then plans.
        rounds(vec![("primary", "synced")]);
        for _ in 0..2 {
            round(&mut engine, &store, &node, &me, &config, &signals, false)
                .await
                .unwrap();
        }
        assert_eq!(store.with(|c| c.rows.len()), 3);
    }
}
