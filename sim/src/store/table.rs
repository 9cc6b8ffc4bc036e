//! Table definitions (RT, distributed, shard) and RT document storage.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use super::schema::Schema;
use super::value::Row;

/// One remote target of a distributed or shard table: `host:port:table[|mirror…][options]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The clause value as written, for SHOW CREATE TABLE.
    pub raw: String,
    pub mirrors: Vec<Mirror>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mirror {
    pub host: String,
    pub port: u16,
    /// Remote table names (comma-separated in the clause).
    pub tables: Vec<String>,
}

impl Mirror {
    /// `host:port`, the node id of the node serving this mirror.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// searchd's default binary-API port, used when an agent names no port.
const DEFAULT_AGENT_PORT: u16 = 9312;

impl Agent {
    /// Parses an `agent='…'` value. `Err` is searchd's per-agent complaint.
    pub fn parse(raw: &str) -> Result<Agent, String> {
        let body = match (raw.rfind('['), raw.ends_with(']')) {
            (Some(pos), true) => &raw[..pos],
            _ => raw,
        };
        let mut mirrors = Vec::new();
        for part in body.split('|') {
            let mut pieces = part.splitn(3, ':');
            let host = pieces.next().unwrap_or_default().trim().to_string();
            if host.parse::<std::net::IpAddr>().is_err() && host != "localhost" {
                return Err(format!("agent '{raw}': failed to lookup host name '{host}' (error=Success), - SKIPPING AGENT"));
            }
            let port = match pieces.next() {
                Some(p) => p
                    .trim()
                    .parse::<u16>()
                    .map_err(|_| format!("agent '{raw}': invalid port '{p}'"))?,
                None => DEFAULT_AGENT_PORT,
            };
            let tables = pieces
                .next()
                .map(|t| {
                    t.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            let host = if host == "localhost" {
                "127.0.0.1".to_string()
            } else {
                host
            };
            mirrors.push(Mirror { host, port, tables });
        }
        Ok(Agent {
            raw: raw.to_string(),
            mirrors,
        })
    }
}

/// Targets of a distributed or shard table.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Targets {
    pub locals: Vec<String>,
    pub agents: Vec<Agent>,
}

impl Targets {
    /// Every target table name (locals and the first mirror's tables), for the `system.` checks.
    pub fn table_names(&self) -> impl Iterator<Item = &str> {
        self.locals
            .iter()
            .map(String::as_str)
            .chain(self.agents.iter().flat_map(|a| {
                a.mirrors
                    .iter()
                    .flat_map(|m| m.tables.iter().map(String::as_str))
            }))
    }

    pub fn has_system_table(&self) -> bool {
        self.table_names().any(|t| t.starts_with("system."))
    }

    pub fn is_empty(&self) -> bool {
        self.locals.is_empty() && self.agents.is_empty()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TableDef {
    Rt {
        schema: Schema,
        /// Table options as written (`min_infix_len='3'`), rendered by SHOW CREATE TABLE.
        options: Vec<(String, String)>,
    },
    Distributed {
        targets: Targets,
    },
    Shard {
        schema: Schema,
        targets: Targets,
        options: Vec<(String, String)>,
    },
}

impl TableDef {
    /// The `Type` column of SHOW TABLES.
    pub fn type_name(&self) -> &'static str {
        match self {
            TableDef::Rt { .. } => "rt",
            TableDef::Distributed { .. } => "distributed",
            TableDef::Shard { .. } => "shard",
        }
    }

    pub fn schema(&self) -> Option<&Schema> {
        match self {
            TableDef::Rt { schema, .. } | TableDef::Shard { schema, .. } => Some(schema),
            TableDef::Distributed { .. } => None,
        }
    }

    pub fn targets(&self) -> Option<&Targets> {
        match self {
            TableDef::Distributed { targets } | TableDef::Shard { targets, .. } => Some(targets),
            TableDef::Rt { .. } => None,
        }
    }
}

/// Where a document sits: RAM segment (one per write statement) and row id inside it.
/// searchd breaks ties between equally ranked matches by row id, so the order is observable.
pub type RowPos = (u64, u32);

/// Documents of an RT table in storage order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RtData {
    #[serde(with = "rows_as_list")]
    rows: BTreeMap<RowPos, Row>,
    #[serde(skip)]
    by_id: HashMap<i64, RowPos>,
    next_segment: u64,
    /// Replaced or deleted documents still counted by keyword statistics until the table is
    /// optimized, flushed or truncated (searchd keeps killed rows in RAM segments until a merge).
    killed: Vec<Row>,
}

/// Killed documents kept for keyword statistics; older ones are forgotten.
const MAX_KILLED: usize = 10_000;

impl RtData {
    /// Rebuilds the id index after deserialisation.
    pub fn reindex(&mut self) {
        self.by_id = self.rows.iter().map(|(pos, row)| (row.id, *pos)).collect();
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn contains(&self, id: i64) -> bool {
        self.by_id.contains_key(&id)
    }

    pub fn get(&self, id: i64) -> Option<&Row> {
        self.by_id.get(&id).and_then(|pos| self.rows.get(pos))
    }

    /// Where a document is stored.
    pub fn position(&self, id: i64) -> Option<RowPos> {
        self.by_id.get(&id).copied()
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Row> {
        let pos = *self.by_id.get(&id)?;
        self.rows.get_mut(&pos)
    }

    /// Documents in storage order with their positions.
    pub fn iter(&self) -> impl Iterator<Item = (RowPos, &Row)> {
        self.rows.iter().map(|(pos, row)| (*pos, row))
    }

    pub fn killed(&self) -> &[Row] {
        &self.killed
    }

    /// Stores one write statement's documents as a new segment, replacing documents with the same id.
    pub fn insert_segment(&mut self, rows: Vec<Row>) {
        let segment = self.next_segment;
        self.next_segment += 1;
        for (rowid, row) in rows.into_iter().enumerate() {
            self.remove(row.id);
            let pos = (segment, rowid as u32);
            self.by_id.insert(row.id, pos);
            self.rows.insert(pos, row);
        }
    }

    pub fn remove(&mut self, id: i64) -> bool {
        let Some(pos) = self.by_id.remove(&id) else {
            return false;
        };
        if let Some(row) = self.rows.remove(&pos) {
            if self.killed.len() >= MAX_KILLED {
                self.killed.remove(0);
            }
            self.killed.push(row);
        }
        true
    }

    pub fn clear(&mut self) {
        self.rows.clear();
        self.by_id.clear();
        self.killed.clear();
    }

    /// Merges segments away: killed documents are gone for good.
    pub fn compact(&mut self) {
        self.killed.clear();
    }

    pub fn ids(&self) -> impl Iterator<Item = i64> + '_ {
        self.rows.values().map(|r| r.id)
    }
}

/// JSON objects need string keys; rows are stored as a list of `[position, row]` pairs.
mod rows_as_list {
    use super::{Row, RowPos};
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(rows: &BTreeMap<RowPos, Row>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(rows.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<RowPos, Row>, D::Error> {
        Ok(Vec::<(RowPos, Row)>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::value::Value;

    fn row(id: i64) -> Row {
        Row {
            id,
            values: vec![Value::Int(id)],
        }
    }

    #[test]
    fn segments_keep_storage_order_and_replace() {
        let mut d = RtData::default();
        d.insert_segment(vec![row(1), row(2), row(3)]);
        d.insert_segment(vec![row(4), row(5)]);
        d.insert_segment(vec![row(2)]);
        assert!(d.remove(3));
        assert!(!d.remove(3));
        let order: Vec<(RowPos, i64)> = d.iter().map(|(p, r)| (p, r.id)).collect();
        assert_eq!(
            order,
            vec![((0, 0), 1), ((1, 0), 4), ((1, 1), 5), ((2, 0), 2)]
        );
        assert_eq!(d.killed().len(), 2);
        d.compact();
        assert!(d.killed().is_empty());
    }

    #[test]
    fn agent_clauses() {
        let a = Agent::parse(
            "127.0.0.1:1:system.m_s0|127.0.0.1:2:system.m_s0[retry_count=2,ha_strategy=noerrors]",
        )
        .unwrap();
        assert_eq!(a.mirrors.len(), 2);
        assert_eq!(a.mirrors[1].addr(), "127.0.0.1:2");
        assert_eq!(a.mirrors[0].tables, vec!["system.m_s0".to_string()]);
        let e = Agent::parse("nohost").unwrap_err();
        assert_eq!(
            e,
            "agent 'nohost': failed to lookup host name 'nohost' (error=Success), - SKIPPING AGENT"
        );
        let multi = Agent::parse("127.0.0.1:1:system.s_s1,system.p_s1").unwrap();
        assert_eq!(multi.mirrors[0].tables.len(), 2);
    }
}
