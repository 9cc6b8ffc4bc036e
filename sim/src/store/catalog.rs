//! The set of tables a node holds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::cluster::ClusterMeta;
use super::table::{RtData, TableDef};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub name: String,
    pub def: TableDef,
    /// Documents (RT tables only).
    pub data: RtData,
    /// Replication cluster the table belongs to; writes must then use `cluster:table`.
    pub cluster: Option<String>,
}

impl Table {
    pub fn is_rt(&self) -> bool {
        matches!(self.def, TableDef::Rt { .. })
    }

    /// Names in the `system` database are listed only by `SHOW TABLES FROM system`.
    pub fn is_system(&self) -> bool {
        self.name.starts_with("system.")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    tables: BTreeMap<String, Table>,
    /// Replication clusters this node is a member of, by name.
    #[serde(default)]
    clusters: BTreeMap<String, ClusterMeta>,
    /// Cluster names in the order this node created or joined them (searchd lists its clusters
    /// that way: `rebalance.49` shows `h` before `g`).
    #[serde(default)]
    cluster_order: Vec<String>,
}

impl Catalog {
    /// Table names are case-insensitive, as in searchd.
    pub fn key(name: &str) -> String {
        name.to_ascii_lowercase()
    }

    pub fn get(&self, name: &str) -> Option<&Table> {
        self.tables.get(&Catalog::key(name))
    }

    pub fn get_mut(&mut self, name: &str) -> Option<&mut Table> {
        self.tables.get_mut(&Catalog::key(name))
    }

    pub fn insert(&mut self, table: Table) {
        self.tables.insert(Catalog::key(&table.name), table);
    }

    pub fn remove(&mut self, name: &str) -> Option<Table> {
        self.tables.remove(&Catalog::key(name))
    }

    /// Tables sorted by name.
    pub fn tables(&self) -> impl Iterator<Item = &Table> {
        self.tables.values()
    }

    pub fn cluster(&self, name: &str) -> Option<&ClusterMeta> {
        self.clusters.get(name)
    }

    pub fn cluster_mut(&mut self, name: &str) -> Option<&mut ClusterMeta> {
        self.clusters.get_mut(name)
    }

    pub fn put_cluster(&mut self, meta: ClusterMeta) {
        if !self.cluster_order.contains(&meta.name) {
            self.cluster_order.push(meta.name.clone());
        }
        self.clusters.insert(meta.name.clone(), meta);
    }

    pub fn remove_cluster(&mut self, name: &str) -> Option<ClusterMeta> {
        self.cluster_order.retain(|n| n != name);
        self.clusters.remove(name)
    }

    /// Clusters in the order they came to this node (then any a snapshot from before that
    /// order was kept holds, by name).
    pub fn clusters(&self) -> impl Iterator<Item = &ClusterMeta> {
        let ordered = self
            .cluster_order
            .iter()
            .filter_map(|n| self.clusters.get(n));
        let rest = self
            .clusters
            .values()
            .filter(|m| !self.cluster_order.contains(&m.name));
        ordered.chain(rest)
    }

    /// Tables attached to a cluster.
    pub fn cluster_tables<'a>(&'a self, cluster: &'a str) -> impl Iterator<Item = &'a Table> + 'a {
        self.tables
            .values()
            .filter(move |t| t.cluster.as_deref() == Some(cluster))
    }

    /// Rebuilds in-memory indexes after loading from disk.
    pub fn reindex(&mut self) {
        for t in self.tables.values_mut() {
            t.data.reindex();
        }
    }

    /// Largest document id stored anywhere (auto ids must stay above it after a restart).
    pub fn max_id(&self) -> i64 {
        self.tables
            .values()
            .flat_map(|t| t.data.ids())
            .max()
            .unwrap_or(0)
    }
}
