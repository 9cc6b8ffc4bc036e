//! An in-memory [`MetaStore`] for unit tests of the drivers.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{MetaStore, Result};
use crate::ids::{NodeId, TableName};
use crate::sharding::records::{
    ControlRequest, DrainRecord, GroupName, GroupRecord, Lease, PlacementRow, QueueRow,
    QueueStatus, Registration, RowFailure, Scope, TableState,
};

#[derive(Default)]
pub struct Contents {
    pub ready: Option<Scope>,
    pub lease: Option<Lease>,
    pub master: Option<NodeId>,
    pub registrations: BTreeMap<NodeId, Registration>,
    pub tables: BTreeMap<TableName, TableState>,
    pub groups: BTreeMap<GroupName, GroupRecord>,
    pub controls: BTreeMap<TableName, ControlRequest>,
    pub drained: BTreeMap<NodeId, DrainRecord>,
    pub failures: BTreeMap<u64, RowFailure>,
    pub rows: BTreeMap<u64, QueueRow>,
    pub placement: Vec<PlacementRow>,
}

pub struct MemStore {
    scope: Scope,
    pub contents: Mutex<Contents>,
}

impl MemStore {
    pub fn new(scope: Scope) -> Self {
        Self {
            scope,
            contents: Mutex::default(),
        }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut Contents) -> T) -> T {
        f(&mut self.contents.lock().expect("store lock"))
    }
}

#[async_trait]
impl MetaStore for MemStore {
    fn scope(&self) -> &Scope {
        &self.scope
    }

    async fn is_initialized(&self) -> Result<bool> {
        Ok(true)
    }

    async fn prepare_tables(&self) -> Result<()> {
        Ok(())
    }

    async fn ready_scope(&self) -> Result<Option<Scope>> {
        Ok(self.with(|c| c.ready.clone()))
    }

    async fn put_ready_scope(&self, scope: &Scope) -> Result<()> {
        self.with(|c| c.ready = Some(scope.clone()));
        Ok(())
    }

    async fn put_cluster_hash(&self, _hash: &str) -> Result<()> {
        Ok(())
    }

    async fn lease(&self) -> Result<Option<Lease>> {
        Ok(self.with(|c| c.lease.clone()))
    }

    async fn put_lease(&self, lease: &Lease) -> Result<()> {
        self.with(|c| c.lease = Some(lease.clone()));
        Ok(())
    }

    async fn put_master(&self, node: &NodeId) -> Result<()> {
        self.with(|c| c.master = Some(node.clone()));
        Ok(())
    }

    async fn put_registration(&self, node: &NodeId, registration: &Registration) -> Result<()> {
        self.with(|c| c.registrations.insert(node.clone(), registration.clone()));
        Ok(())
    }

    async fn registrations(&self) -> Result<BTreeMap<NodeId, Registration>> {
        Ok(self.with(|c| c.registrations.clone()))
    }

    async fn table(&self, table: &TableName) -> Result<Option<TableState>> {
        Ok(self.with(|c| c.tables.get(table).cloned()))
    }

    async fn tables(&self) -> Result<BTreeMap<TableName, TableState>> {
        Ok(self.with(|c| c.tables.clone()))
    }

    async fn put_table(&self, table: &TableName, state: &TableState) -> Result<()> {
        self.with(|c| c.tables.insert(table.clone(), state.clone()));
        Ok(())
    }

    async fn delete_table(&self, table: &TableName) -> Result<()> {
        self.with(|c| c.tables.remove(table));
        Ok(())
    }

    async fn group(&self, group: &GroupName) -> Result<Option<GroupRecord>> {
        Ok(self.with(|c| c.groups.get(group).cloned()))
    }

    async fn groups(&self) -> Result<BTreeMap<GroupName, GroupRecord>> {
        Ok(self.with(|c| c.groups.clone()))
    }

    async fn put_group(&self, group: &GroupName, record: &GroupRecord) -> Result<()> {
        self.with(|c| c.groups.insert(group.clone(), record.clone()));
        Ok(())
    }

    async fn controls(&self) -> Result<BTreeMap<TableName, ControlRequest>> {
        Ok(self.with(|c| c.controls.clone()))
    }

    async fn control(&self, table: &TableName) -> Result<Option<ControlRequest>> {
        Ok(self.with(|c| c.controls.get(table).cloned()))
    }

    async fn put_control(&self, table: &TableName, request: &ControlRequest) -> Result<()> {
        self.with(|c| c.controls.insert(table.clone(), request.clone()));
        Ok(())
    }

    async fn delete_control(&self, table: &TableName) -> Result<()> {
        self.with(|c| c.controls.remove(table));
        Ok(())
    }

    async fn drained(&self) -> Result<BTreeMap<NodeId, DrainRecord>> {
        Ok(self.with(|c| c.drained.clone()))
    }

    async fn put_drain(&self, node: &NodeId, record: &DrainRecord) -> Result<()> {
        self.with(|c| c.drained.insert(node.clone(), record.clone()));
        Ok(())
    }

    async fn delete_drain(&self, node: &NodeId) -> Result<()> {
        self.with(|c| c.drained.remove(node));
        Ok(())
    }

    async fn row_failure(&self, row: u64) -> Result<Option<RowFailure>> {
        Ok(self.with(|c| c.failures.get(&row).cloned()))
    }

    async fn put_row_failure(&self, row: u64, failure: &RowFailure) -> Result<()> {
        self.with(|c| c.failures.insert(row, failure.clone()));
        Ok(())
    }

    async fn enqueue(&self, rows: &[QueueRow]) -> Result<()> {
        self.with(|c| {
            for r in rows {
                c.rows.insert(r.id, r.clone());
            }
        });
        Ok(())
    }

    async fn pending_rows(&self, node: &NodeId) -> Result<Vec<QueueRow>> {
        Ok(self.with(|c| {
            c.rows
                .values()
                .filter(|r| r.node == *node && r.status != QueueStatus::Processed)
                .cloned()
                .collect()
        }))
    }

    async fn group_rows(&self, group: &GroupName) -> Result<Vec<QueueRow>> {
        Ok(self.with(|c| {
            c.rows
                .values()
                .filter(|r| r.group == *group)
                .cloned()
                .collect()
        }))
    }

    async fn unprocessed_rows(&self) -> Result<Vec<QueueRow>> {
        Ok(self.with(|c| {
            c.rows
                .values()
                .filter(|r| r.status != QueueStatus::Processed)
                .cloned()
                .collect()
        }))
    }

    async fn statuses(&self, ids: &BTreeSet<u64>) -> Result<BTreeMap<u64, Option<QueueStatus>>> {
        Ok(self.with(|c| {
            ids.iter()
                .map(|id| (*id, c.rows.get(id).map(|r| r.status)))
                .collect()
        }))
    }

    async fn set_statuses(
        &self,
        ids: &[u64],
        status: QueueStatus,
        tries: u32,
        duration_ms: i64,
    ) -> Result<()> {
        self.with(|c| {
            for id in ids {
                if let Some(r) = c.rows.get_mut(id) {
                    r.status = status;
                    r.tries = tries;
                    r.duration = duration_ms;
                }
            }
        });
        Ok(())
    }

    async fn max_queue_id(&self) -> Result<u64> {
        Ok(self.with(|c| c.rows.keys().next_back().copied().unwrap_or(0)))
    }

    async fn purge_group(&self, group: &GroupName) -> Result<()> {
        self.with(|c| {
            let ids: Vec<u64> = c
                .rows
                .values()
                .filter(|r| r.group == *group)
                .map(|r| r.id)
                .collect();
            for id in ids {
                c.rows.remove(&id);
                c.failures.remove(&id);
            }
            c.groups.remove(group);
        });
        Ok(())
    }

    async fn placement_rows(&self, table: Option<&TableName>) -> Result<Vec<PlacementRow>> {
        Ok(self.with(|c| {
            c.placement
                .iter()
                .filter(|r| table.is_none_or(|t| r.table == *t))
                .cloned()
                .collect()
        }))
    }

    async fn replace_placement(&self, table: &TableName, rows: &[PlacementRow]) -> Result<()> {
        self.with(|c| {
            c.placement.retain(|r| r.table != *table);
            c.placement.extend(rows.iter().cloned());
        });
        Ok(())
    }

    async fn delete_placement(&self, table: &TableName) -> Result<()> {
        self.with(|c| c.placement.retain(|r| r.table != *table));
        Ok(())
    }
}
