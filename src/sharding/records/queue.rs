//! Rows of `system.sharding_queue` (spec §6.1, §9.1): their typed form, the
//! strict status codec, the id scheme and the SQL that writes them. A row's
//! statements are typed ([`Action`]) in memory and become text only here.

use crate::ids::NodeId;
use crate::placement::Action;
use crate::protocol::ResultSet;
use crate::sqltext::quote_literal;

use super::{GroupName, TransitionError};

/// Bits of a queue id below the master epoch. Ids are `epoch << 40 | seq`:
/// only the master allocates them, so they are totally ordered across nodes
/// (unlike PHP Buddy's per-host monotonic clocks), and a row's id tells which
/// master epoch wrote it.
pub const SEQ_BITS: u32 = 40;

pub fn queue_id(epoch: u64, seq: u64) -> u64 {
    (epoch << SEQ_BITS) | (seq & ((1 << SEQ_BITS) - 1))
}

pub fn epoch_of(id: u64) -> u64 {
    id >> SEQ_BITS
}

/// The sequence number of `id` within its epoch.
pub fn seq_of(id: u64) -> u64 {
    id & ((1 << SEQ_BITS) - 1)
}

/// Queue row status strings, as PHP Buddy writes them.
///
/// ```text
/// created ──claim──▶ processing ──ran──▶ processed
///    │                   │  │
///    │                   │  └─failed──▶ error ──retry (claim)──▶ processing
///    │                   └─given back──▶ (its status before the claim)
///    └──ran without a claim──▶ processed / error
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QueueStatus {
    Created,
    Processing,
    Processed,
    /// The last attempt failed; retried while `tries` is below the limit,
    /// final once it is reached.
    Error,
}

impl QueueStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueStatus::Created => "created",
            QueueStatus::Processing => "processing",
            QueueStatus::Processed => "processed",
            QueueStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "created" => QueueStatus::Created,
            "processing" => QueueStatus::Processing,
            "processed" => QueueStatus::Processed,
            "error" => QueueStatus::Error,
            _ => return None,
        })
    }

    fn unless_processed(self, to: QueueStatus) -> Result<QueueStatus, TransitionError> {
        if self == QueueStatus::Processed {
            return Err(TransitionError {
                record: "queue row",
                from: self.as_str().to_string(),
                to: to.as_str(),
            });
        }
        Ok(to)
    }

    /// An executor claims the row before running it (a row found
    /// `processing` after a crash is claimed again: its outcome is unknown).
    pub fn claim(self) -> Result<QueueStatus, TransitionError> {
        self.unless_processed(QueueStatus::Processing)
    }

    /// An attempt ended.
    pub fn attempted(self, ok: bool) -> Result<QueueStatus, TransitionError> {
        self.unless_processed(if ok {
            QueueStatus::Processed
        } else {
            QueueStatus::Error
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueRow {
    pub id: u64,
    pub node: NodeId,
    pub action: Action,
    /// `None` when the step has nothing to undo.
    pub rollback: Option<Action>,
    /// 0, or the id of a row that must be processed first.
    pub wait_for_id: u64,
    pub group: GroupName,
    pub tries: u32,
    pub status: QueueStatus,
    /// Milliseconds since the epoch (the writing node's wall clock).
    pub created_at: i64,
    pub updated_at: i64,
    /// Milliseconds the last attempt took.
    pub duration: i64,
}

/// A queue row that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queue row {row}: {problem}")]
pub struct RowDecodeError {
    pub row: usize,
    pub problem: String,
}

fn int_cell(set: &ResultSet, row: usize, name: &str) -> Result<i64, RowDecodeError> {
    let bad = |problem: String| RowDecodeError { row, problem };
    match set.cell(row, name) {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| bad(format!("'{name}' is not an integer"))),
        Some(serde_json::Value::String(s)) => s
            .parse()
            .map_err(|_| bad(format!("'{name}' is not an integer"))),
        _ => Err(bad(format!("missing column '{name}'"))),
    }
}

fn text_cell(set: &ResultSet, row: usize, name: &str) -> Result<String, RowDecodeError> {
    set.text(row, name).ok_or_else(|| RowDecodeError {
        row,
        problem: format!("missing column '{name}'"),
    })
}

impl QueueRow {
    /// A row not yet attempted, written at `now_ms`.
    pub fn fresh(
        id: u64,
        node: NodeId,
        action: Action,
        rollback: Option<Action>,
        wait_for_id: u64,
        group: &GroupName,
        now_ms: i64,
    ) -> Self {
        QueueRow {
            id,
            node,
            action,
            rollback,
            wait_for_id,
            group: group.clone(),
            tries: 0,
            status: QueueStatus::Created,
            created_at: now_ms,
            updated_at: now_ms,
            duration: 0,
        }
    }

    /// Reads row `row` of a `SELECT * FROM system.sharding_queue …` result.
    pub fn from_result(set: &ResultSet, row: usize) -> Result<Self, RowDecodeError> {
        let bad = |problem: String| RowDecodeError { row, problem };
        let status = text_cell(set, row, "status")?;
        let non_negative = |name: &str| -> Result<u64, RowDecodeError> {
            u64::try_from(int_cell(set, row, name)?)
                .map_err(|_| bad(format!("'{name}' is negative")))
        };
        let query = text_cell(set, row, "query")?;
        Ok(QueueRow {
            id: non_negative("id")?,
            node: NodeId::new(text_cell(set, row, "node")?),
            action: Action::from_query_text(&query)
                .ok_or_else(|| bad("'query' is empty".to_string()))?,
            rollback: Action::from_query_text(&text_cell(set, row, "rollback_query")?),
            wait_for_id: non_negative("wait_for_id")?,
            group: GroupName::from(text_cell(set, row, "operation_group")?.as_str()),
            tries: u32::try_from(non_negative("tries")?).unwrap_or(u32::MAX),
            status: QueueStatus::parse(&status)
                .ok_or_else(|| bad(format!("unknown status '{status}'")))?,
            created_at: int_cell(set, row, "created_at")?,
            updated_at: int_cell(set, row, "updated_at")?,
            duration: int_cell(set, row, "duration")?,
        })
    }

    pub fn all_from_result(set: &ResultSet) -> Result<Vec<Self>, RowDecodeError> {
        (0..set.rows.len())
            .map(|i| Self::from_result(set, i))
            .collect()
    }

    fn values_sql(&self) -> String {
        let rollback = self
            .rollback
            .as_ref()
            .map(Action::to_query_text)
            .unwrap_or_default();
        format!(
            "({}, {}, {}, {}, {}, 0, {}, {}, {}, {}, {}, {})",
            self.id,
            quote_literal(self.node.as_str()),
            quote_literal(&self.action.to_query_text()),
            quote_literal(&rollback),
            self.wait_for_id,
            quote_literal(self.group.as_str()),
            self.tries,
            quote_literal(self.status.as_str()),
            self.created_at,
            self.updated_at,
            self.duration,
        )
    }
}

/// One multi-row INSERT (spec §9.1 column list) into `table`, which is
/// `system.sharding_queue` or its cluster-prefixed name.
pub fn insert_sql(table: &str, rows: &[QueueRow]) -> String {
    let values: Vec<String> = rows.iter().map(QueueRow::values_sql).collect();
    format!(
        "INSERT INTO {table} (`id`, `node`, `query`, `rollback_query`, `wait_for_id`, \
         `rollback_wait_for_id`, `operation_group`, `tries`, `status`, `created_at`, `updated_at`, \
         `duration`) VALUES {}",
        values.join(", ")
    )
}

/// Sets the outcome of the rows `ids`.
pub fn update_statuses_sql(
    table: &str,
    ids: &[u64],
    status: QueueStatus,
    tries: u32,
    updated_at: i64,
    duration: i64,
) -> String {
    let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
    format!(
        "UPDATE {table} SET `status` = {}, `tries` = {tries}, `updated_at` = {updated_at}, \
         `duration` = {duration} WHERE `id` IN ({})",
        quote_literal(status.as_str()),
        ids.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::Ddl;
    use crate::protocol::{Column, ColumnType};
    use serde_json::json;

    fn sample() -> QueueRow {
        QueueRow {
            id: queue_id(1, 3),
            node: NodeId::new("127.0.0.1:1312"),
            action: Action::from_query_text(
                "CREATE TABLE `t` (id bigint, title text)\n\t\t\ttype='shard' local='system.t_s0' ",
            )
            .unwrap(),
            rollback: Action::from_query_text("DROP TABLE IF EXISTS t OPTION force=1"),
            wait_for_id: 0,
            group: GroupName::from("shard_create_t_1"),
            tries: 0,
            status: QueueStatus::Created,
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_000,
            duration: 0,
        }
    }

    #[test]
    fn ids_carry_the_epoch_and_order_across_epochs() {
        assert_eq!(epoch_of(queue_id(7, 123)), 7);
        assert_eq!(seq_of(queue_id(7, 123)), 123);
        assert!(queue_id(2, 0) > queue_id(1, (1 << SEQ_BITS) - 1));
    }

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_rejected() {
        for s in [
            QueueStatus::Created,
            QueueStatus::Processing,
            QueueStatus::Processed,
            QueueStatus::Error,
        ] {
            assert_eq!(QueueStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(QueueStatus::parse("done"), None);
    }

    #[test]
    fn a_processed_row_never_changes_again() {
        use QueueStatus::*;
        for from in [Created, Processing, Error] {
            assert_eq!(from.claim(), Ok(Processing));
            assert_eq!(from.attempted(true), Ok(Processed));
            assert_eq!(from.attempted(false), Ok(Error));
        }
        assert!(Processed.claim().is_err());
        assert_eq!(
            Processed.attempted(false).unwrap_err().to_string(),
            "queue row: cannot go from 'processed' to 'error'"
        );
    }

    #[test]
    fn insert_escapes_queries() {
        let mut row = sample();
        row.action = Action::Ddl(Ddl::Other(
            r"CREATE TABLE t (a text) charset_table='a\b' x='it''s'".into(),
        ));
        let sql = insert_sql("c:system.sharding_queue", &[row]);
        assert!(sql.starts_with("INSERT INTO c:system.sharding_queue (`id`, `node`"));
        assert!(sql.contains(r"charset_table=\'a\\b\' x=\'it\'\'s\'"));
        assert!(
            sql.contains(", 0, 'shard_create_t_1', 0, 'created', 1700000000000, 1700000000000, 0)")
        );
    }

    #[test]
    fn rows_decode_from_result_sets_with_typed_statements() {
        let row = sample();
        assert!(matches!(row.action, Action::Ddl(Ddl::CreateWrapper { .. })));
        let mut set = ResultSet::with_columns(
            [
                ("id", ColumnType::LongLong),
                ("node", ColumnType::String),
                ("query", ColumnType::String),
                ("rollback_query", ColumnType::String),
                ("wait_for_id", ColumnType::LongLong),
                ("rollback_wait_for_id", ColumnType::LongLong),
                ("operation_group", ColumnType::String),
                ("tries", ColumnType::Long),
                ("status", ColumnType::String),
                ("created_at", ColumnType::LongLong),
                ("updated_at", ColumnType::LongLong),
                ("duration", ColumnType::Long),
            ]
            .into_iter()
            .map(|(n, t)| Column::new(n, t))
            .collect(),
        );
        set.push_row(vec![
            json!(row.id),
            json!(row.node.as_str()),
            json!(row.action.to_query_text()),
            json!("DROP TABLE IF EXISTS t OPTION force=1"),
            json!(0),
            json!(0),
            json!(row.group.as_str()),
            json!(0),
            json!("created"),
            json!(row.created_at),
            json!(row.updated_at),
            json!(0),
        ]);
        assert_eq!(QueueRow::all_from_result(&set).unwrap(), vec![row]);
        set.rows[0][3] = json!("");
        assert_eq!(QueueRow::from_result(&set, 0).unwrap().rollback, None);
        set.rows[0][8] = json!("bogus");
        assert!(QueueRow::from_result(&set, 0).is_err());
        set.rows[0][8] = json!("created");
        set.rows[0][2] = json!("");
        assert!(QueueRow::from_result(&set, 0).is_err());
    }
}
