//! Every change to tables or documents is a [`Mutation`] value applied by [`apply`].
//!
//! The write-ahead log records mutations, and a replication layer can sequence and ship the
//! same values: anything that decides (ids, matched documents) is resolved before a mutation
//! is made, so applying it is deterministic.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::catalog::{Catalog, Table};
use super::cluster::{ClusterMeta, View};
use super::schema::Column;
use super::table::{RtData, TableDef};
use super::value::{Row, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Mutation {
    CreateTable {
        name: String,
        def: TableDef,
    },
    DropTable {
        name: String,
    },
    /// Stores documents as one segment; a document with an existing id replaces it.
    Insert {
        table: String,
        rows: Vec<Row>,
    },
    /// Sets attribute values (by schema position) on the listed documents.
    Update {
        table: String,
        ids: Vec<i64>,
        sets: Vec<(usize, Value)>,
    },
    Delete {
        table: String,
        ids: Vec<i64>,
    },
    Truncate {
        table: String,
    },
    AddColumn {
        table: String,
        column: Column,
    },
    DropColumn {
        table: String,
        column: String,
    },
    /// FLUSH RAMCHUNK / OPTIMIZE: segments are merged and killed documents forgotten.
    Compact {
        table: String,
    },
    /// Creates a replication cluster.
    ClusterCreate {
        meta: ClusterMeta,
    },
    /// Removes a cluster; its tables stay as local tables.
    ClusterDelete {
        cluster: String,
    },
    /// Attaches a table, shipped whole, to a cluster (replacing any local copy on the members
    /// that receive it). `origin`, the node that ran `ALTER CLUSTER … ADD`, keeps its own copy:
    /// see [`Mutation::for_node`].
    ClusterAttach {
        cluster: String,
        table: Box<Table>,
        #[serde(default)]
        origin: String,
    },
    /// Attaches the local table of that name to a cluster, rows as they are (the node that ran
    /// `ALTER CLUSTER … ADD`).
    ClusterAttachLocal {
        cluster: String,
        table: String,
    },
    /// Detaches a table from a cluster; it stays as a local table.
    ClusterDetach {
        cluster: String,
        table: String,
    },
    /// A new primary view and the persisted member list.
    ClusterView {
        cluster: String,
        view: View,
        nodes_set: Vec<String>,
    },
    /// The sequence number of the replicated write recorded with it.
    ClusterSeq {
        cluster: String,
        seq: u64,
    },
    /// Full state transfer: the cluster's description and all of its tables. Local tables
    /// the cluster claimed but the donor does not have are detached.
    ClusterInstall {
        meta: ClusterMeta,
        tables: Vec<Table>,
    },
}

#[derive(Debug, Error, PartialEq)]
pub enum ApplyError {
    #[error("table '{0}' does not exist")]
    NoTable(String),
    #[error("table '{0}' already exists")]
    Exists(String),
    #[error("table '{0}' is not an RT table")]
    NotRt(String),
    #[error("table '{table}': no column '{column}'")]
    NoColumn { table: String, column: String },
    #[error("unknown cluster '{0}'")]
    NoCluster(String),
}

impl Mutation {
    /// The table whose documents or schema this changes (not a cluster change).
    pub fn document_table(&self) -> Option<&str> {
        match self {
            Mutation::Insert { table, .. }
            | Mutation::Update { table, .. }
            | Mutation::Delete { table, .. }
            | Mutation::Truncate { table }
            | Mutation::AddColumn { table, .. }
            | Mutation::DropColumn { table, .. }
            | Mutation::Compact { table } => Some(table),
            _ => None,
        }
    }

    /// The form of a replicated batch that node `me` applies: the node that ran
    /// `ALTER CLUSTER … ADD` keeps its own copy of the table, rows written while the statement
    /// ran included; the others install the copy shipped when it started. Whether searchd ships
    /// rows written during the ADD is not recorded, so the simulator takes the cautious side:
    /// they stay on the origin only.
    pub fn for_node(self, me: &str) -> Mutation {
        match self {
            Mutation::ClusterAttach {
                cluster,
                table,
                origin,
            } if origin == me => Mutation::ClusterAttachLocal {
                cluster,
                table: table.name,
            },
            other => other,
        }
    }
}

pub fn apply(catalog: &mut Catalog, m: &Mutation) -> Result<(), ApplyError> {
    match m {
        Mutation::CreateTable { name, def } => {
            if catalog.get(name).is_some() {
                return Err(ApplyError::Exists(name.clone()));
            }
            catalog.insert(Table {
                name: name.clone(),
                def: def.clone(),
                data: RtData::default(),
                cluster: None,
            });
        }
        Mutation::DropTable { name } => {
            catalog
                .remove(name)
                .ok_or_else(|| ApplyError::NoTable(name.clone()))?;
        }
        Mutation::Insert { table, rows } => {
            rt_mut(catalog, table)?.data.insert_segment(rows.clone())
        }
        Mutation::Update { table, ids, sets } => {
            let t = rt_mut(catalog, table)?;
            for id in ids {
                if let Some(row) = t.data.get_mut(*id) {
                    for (pos, value) in sets {
                        if let Some(slot) = row.values.get_mut(*pos) {
                            *slot = value.clone();
                        }
                    }
                }
            }
        }
        Mutation::Delete { table, ids } => {
            let t = rt_mut(catalog, table)?;
            for id in ids {
                t.data.remove(*id);
            }
        }
        Mutation::Truncate { table } => rt_mut(catalog, table)?.data.clear(),
        Mutation::Compact { table } => rt_mut(catalog, table)?.data.compact(),
        Mutation::AddColumn { table, column } => {
            let t = rt_mut(catalog, table)?;
            let default = Value::default_for(column.ty);
            if let TableDef::Rt { schema, .. } = &mut t.def {
                schema.columns.push(column.clone());
            }
            let ids: Vec<i64> = t.data.ids().collect();
            for id in ids {
                if let Some(row) = t.data.get_mut(id) {
                    row.values.push(default.clone());
                }
            }
        }
        Mutation::DropColumn { table, column } => {
            let t = rt_mut(catalog, table)?;
            let TableDef::Rt { schema, .. } = &mut t.def else {
                return Err(ApplyError::NotRt(table.clone()));
            };
            let pos = schema
                .position(column)
                .ok_or_else(|| ApplyError::NoColumn {
                    table: table.clone(),
                    column: column.clone(),
                })?;
            schema.columns.remove(pos);
            let ids: Vec<i64> = t.data.ids().collect();
            for id in ids {
                if let Some(row) = t.data.get_mut(id) {
                    row.values.remove(pos);
                }
            }
        }
        Mutation::ClusterCreate { meta } => catalog.put_cluster(meta.clone()),
        Mutation::ClusterDelete { cluster } => {
            let meta = catalog
                .remove_cluster(cluster)
                .ok_or_else(|| ApplyError::NoCluster(cluster.clone()))?;
            detach_all(catalog, &meta.name);
        }
        Mutation::ClusterAttach { cluster, table, .. } => {
            list_in_cluster(catalog, cluster, &table.name)?;
            install_table(catalog, table, cluster);
        }
        Mutation::ClusterAttachLocal { cluster, table } => {
            list_in_cluster(catalog, cluster, table)?;
            rt_mut(catalog, table)?.cluster = Some(cluster.clone());
        }
        Mutation::ClusterDetach { cluster, table } => {
            let meta = catalog
                .cluster_mut(cluster)
                .ok_or_else(|| ApplyError::NoCluster(cluster.clone()))?;
            meta.tables
                .retain(|t| Catalog::key(t) != Catalog::key(table));
            if let Some(t) = catalog.get_mut(table) {
                t.cluster = None;
            }
        }
        Mutation::ClusterView {
            cluster,
            view,
            nodes_set,
        } => {
            let meta = catalog
                .cluster_mut(cluster)
                .ok_or_else(|| ApplyError::NoCluster(cluster.clone()))?;
            meta.view = view.clone();
            meta.nodes_set = nodes_set.clone();
        }
        Mutation::ClusterSeq { cluster, seq } => {
            catalog
                .cluster_mut(cluster)
                .ok_or_else(|| ApplyError::NoCluster(cluster.clone()))?
                .seq = *seq;
        }
        Mutation::ClusterInstall { meta, tables } => {
            detach_all(catalog, &meta.name);
            catalog.put_cluster(meta.clone());
            for t in tables {
                install_table(catalog, t, &meta.name);
            }
        }
    }
    Ok(())
}

/// Puts a shipped table in place of any local one, attached to `cluster`.
/// Adds `table` to the cluster's table list (once).
fn list_in_cluster(catalog: &mut Catalog, cluster: &str, table: &str) -> Result<(), ApplyError> {
    let meta = catalog
        .cluster_mut(cluster)
        .ok_or_else(|| ApplyError::NoCluster(cluster.to_string()))?;
    if !meta
        .tables
        .iter()
        .any(|t| Catalog::key(t) == Catalog::key(table))
    {
        meta.tables.push(table.to_string());
    }
    Ok(())
}

fn install_table(catalog: &mut Catalog, table: &Table, cluster: &str) {
    let mut t = table.clone();
    // The id index is not shipped; rebuild it.
    t.data.reindex();
    t.cluster = Some(cluster.to_string());
    catalog.insert(t);
}

fn detach_all(catalog: &mut Catalog, cluster: &str) {
    let names: Vec<String> = catalog
        .cluster_tables(cluster)
        .map(|t| t.name.clone())
        .collect();
    for name in names {
        if let Some(t) = catalog.get_mut(&name) {
            t.cluster = None;
        }
    }
}

fn rt_mut<'a>(catalog: &'a mut Catalog, name: &str) -> Result<&'a mut Table, ApplyError> {
    let t = catalog
        .get_mut(name)
        .ok_or_else(|| ApplyError::NoTable(name.to_string()))?;
    if !t.is_rt() {
        return Err(ApplyError::NotRt(name.to_string()));
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::schema::{ColumnType, Schema};

    fn rt(cols: &[(&str, ColumnType)]) -> TableDef {
        TableDef::Rt {
            schema: Schema {
                columns: cols
                    .iter()
                    .map(|(n, t)| Column {
                        name: n.to_string(),
                        ty: *t,
                    })
                    .collect(),
            },
            options: vec![],
        }
    }

    #[test]
    fn applies_a_sequence() {
        let mut c = Catalog::default();
        let steps = vec![
            Mutation::CreateTable {
                name: "t".into(),
                def: rt(&[("n", ColumnType::Uint)]),
            },
            Mutation::Insert {
                table: "t".into(),
                rows: vec![
                    Row {
                        id: 1,
                        values: vec![Value::Int(10)],
                    },
                    Row {
                        id: 2,
                        values: vec![Value::Int(20)],
                    },
                ],
            },
            Mutation::Update {
                table: "t".into(),
                ids: vec![2],
                sets: vec![(0, Value::Int(21))],
            },
            Mutation::AddColumn {
                table: "t".into(),
                column: Column {
                    name: "s".into(),
                    ty: ColumnType::String,
                },
            },
            Mutation::Delete {
                table: "t".into(),
                ids: vec![1],
            },
        ];
        for m in &steps {
            apply(&mut c, m).unwrap();
        }
        let t = c.get("T").unwrap();
        assert_eq!(t.data.len(), 1);
        assert_eq!(
            t.data.get(2).unwrap().values,
            vec![Value::Int(21), Value::Str(String::new())]
        );
        assert_eq!(
            apply(&mut c, &steps[0]),
            Err(ApplyError::Exists("t".into()))
        );
        assert_eq!(
            apply(&mut c, &Mutation::Truncate { table: "x".into() }),
            Err(ApplyError::NoTable("x".into()))
        );
    }

    #[test]
    fn cluster_membership_of_tables() {
        use crate::store::cluster::{ClusterMeta, View};
        let meta = ClusterMeta {
            name: "c".into(),
            path: String::new(),
            uuid: "u".into(),
            tables: vec![],
            nodes_set: vec![],
            seq: 0,
            view: View::default(),
        };
        let mut c = Catalog::default();
        for name in ["t", "u", "local"] {
            apply(
                &mut c,
                &Mutation::CreateTable {
                    name: name.into(),
                    def: rt(&[("n", ColumnType::Uint)]),
                },
            )
            .unwrap();
        }
        apply(&mut c, &Mutation::ClusterCreate { meta: meta.clone() }).unwrap();
        let mut shipped = c.get("t").unwrap().clone();
        shipped.data.insert_segment(vec![Row {
            id: 5,
            values: vec![Value::Int(1)],
        }]);
        for table in [shipped, c.get("u").unwrap().clone()] {
            apply(
                &mut c,
                &Mutation::ClusterAttach {
                    cluster: "c".into(),
                    table: Box::new(table),
                    origin: "elsewhere".into(),
                },
            )
            .unwrap();
        }
        // The shipped copy replaces the local one and is found by id.
        assert!(c.get("t").unwrap().data.contains(5));
        assert_eq!(c.cluster("c").unwrap().tables, ["t", "u"]);
        // The node that ran the ADD keeps its own rows, also those the shipped copy lacks.
        let stale = c.get("local").unwrap().clone();
        apply(
            &mut c,
            &Mutation::Insert {
                table: "local".into(),
                rows: vec![Row {
                    id: 9,
                    values: vec![Value::Int(1)],
                }],
            },
        )
        .unwrap();
        let attach = Mutation::ClusterAttach {
            cluster: "c".into(),
            table: Box::new(stale),
            origin: "me".into(),
        };
        apply(&mut c, &attach.clone().for_node("me")).unwrap();
        assert!(c.get("local").unwrap().data.contains(9));
        assert_eq!(c.get("local").unwrap().cluster.as_deref(), Some("c"));
        assert_eq!(c.cluster("c").unwrap().tables, ["t", "u", "local"]);
        assert_eq!(attach.clone().for_node("other"), attach);
        apply(
            &mut c,
            &Mutation::ClusterDetach {
                cluster: "c".into(),
                table: "local".into(),
            },
        )
        .unwrap();
        apply(
            &mut c,
            &Mutation::ClusterDetach {
                cluster: "c".into(),
                table: "T".into(),
            },
        )
        .unwrap();
        assert_eq!(c.cluster("c").unwrap().tables, ["u"]);
        assert_eq!(c.get("t").unwrap().cluster, None);
        // A transfer without `u` detaches it; the tables it brings are attached.
        let mut donor_t = c.get("t").unwrap().clone();
        donor_t.cluster = Some("c".into());
        apply(
            &mut c,
            &Mutation::ClusterInstall {
                meta: ClusterMeta {
                    tables: vec!["t".into()],
                    seq: 9,
                    ..meta
                },
                tables: vec![donor_t],
            },
        )
        .unwrap();
        assert_eq!(c.get("u").unwrap().cluster, None);
        assert_eq!(c.get("t").unwrap().cluster.as_deref(), Some("c"));
        assert_eq!(c.cluster("c").unwrap().seq, 9);
        apply(
            &mut c,
            &Mutation::ClusterDelete {
                cluster: "c".into(),
            },
        )
        .unwrap();
        assert!(c.cluster("c").is_none());
        assert_eq!(c.get("t").unwrap().cluster, None);
        assert_eq!(
            apply(
                &mut c,
                &Mutation::ClusterSeq {
                    cluster: "c".into(),
                    seq: 1
                }
            ),
            Err(ApplyError::NoCluster("c".into()))
        );
    }

    #[test]
    fn mutations_round_trip_through_json() {
        let m = Mutation::Insert {
            table: "t".into(),
            rows: vec![Row {
                id: 7,
                values: vec![Value::Mva(vec![1, 2]), Value::Json(None), Value::Float(1.5)],
            }],
        };
        let text = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<Mutation>(&text).unwrap(), m);
    }
}
