//! Every change to tables or documents is a [`Mutation`] value applied by [`apply`].
//!
//! The write-ahead log records mutations, and a replication layer can sequence and ship the
//! same values: anything that decides (ids, matched documents) is resolved before a mutation
//! is made, so applying it is deterministic.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::catalog::{Catalog, Table};
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
    /// Attaches a table to a replication cluster, or detaches it (`None`).
    SetCluster {
        table: String,
        cluster: Option<String>,
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
        Mutation::SetCluster { table, cluster } => {
            let t = catalog
                .get_mut(table)
                .ok_or_else(|| ApplyError::NoTable(table.clone()))?;
            t.cluster = cluster.clone();
        }
    }
    Ok(())
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
