//! A Manticore result set as it travels in JSON: the elements of a
//! `/sql?mode=raw` reply and of a Buddy `sql response` message.
//!
//! On the wire a row is an object whose keys follow the column order, and
//! searchd reads it positionally; here rows are kept positional so the order
//! can never be lost.

use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::{Map, Value};

/// A column type name as Manticore writes it (`"string"`, `"long long"`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnType {
    String,
    LongLong,
    Long,
    Float,
    Double,
    /// Any other name searchd may send (`"uint"`, `"timestamp"`, …), kept verbatim.
    Other(String),
}

impl ColumnType {
    pub fn as_str(&self) -> &str {
        match self {
            ColumnType::String => "string",
            ColumnType::LongLong => "long long",
            ColumnType::Long => "long",
            ColumnType::Float => "float",
            ColumnType::Double => "double",
            ColumnType::Other(name) => name,
        }
    }

    /// Whether the `mysql` client right-aligns the column: searchd sends
    /// these as numeric MySQL types (`bool` too).
    pub fn is_numeric(&self) -> bool {
        match self {
            Self::LongLong | Self::Long | Self::Float | Self::Double => true,
            Self::String => false,
            Self::Other(name) => matches!(
                name.as_str(),
                "bool" | "decimal" | "uint" | "int" | "integer" | "bigint"
            ),
        }
    }

    pub fn from_name(name: &str) -> Self {
        match name {
            "string" => ColumnType::String,
            "long long" => ColumnType::LongLong,
            "long" => ColumnType::Long,
            "float" => ColumnType::Float,
            "double" => ColumnType::Double,
            other => ColumnType::Other(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub ty: ColumnType,
}

impl Column {
    pub fn new(name: impl Into<String>, ty: ColumnType) -> Self {
        Self {
            name: name.into(),
            ty,
        }
    }
}

/// One statement's result: either rows with columns, or (no columns) an OK
/// with `total` affected rows. A non-empty `error` marks a failed statement.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Value>>,
    pub total: u64,
    pub error: String,
    pub warning: String,
}

/// A result-set JSON value that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultSetError {
    #[error("result set is not a JSON object")]
    NotAnObject,
    #[error("result set field '{0}' has the wrong type")]
    BadField(&'static str),
    #[error("row {row} has {got} values for {want} columns")]
    RowWidth { row: usize, got: usize, want: usize },
}

impl ResultSet {
    /// An empty success, Buddy's `TaskResult::none()`:
    /// `{"total":0,"error":"","warning":""}`.
    pub fn ok() -> Self {
        Self::default()
    }

    /// An empty table with the given columns.
    pub fn with_columns(columns: Vec<Column>) -> Self {
        Self {
            columns,
            ..Self::default()
        }
    }

    /// Appends a row; `total` follows the row count.
    pub fn push_row(&mut self, row: Vec<Value>) {
        debug_assert_eq!(row.len(), self.columns.len());
        self.rows.push(row);
        self.total = self.rows.len() as u64;
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The cell `name` of row `row`, if both exist.
    pub fn cell(&self, row: usize, name: &str) -> Option<&Value> {
        let col = self.column_index(name)?;
        self.rows.get(row)?.get(col)
    }

    /// The cell as text: strings as they are, numbers printed, null as `None`.
    pub fn text(&self, row: usize, name: &str) -> Option<String> {
        match self.cell(row, name)? {
            Value::String(s) => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// Reads one element of a `/sql?mode=raw` reply (any field order).
    pub fn from_json(value: &Value) -> Result<Self, ResultSetError> {
        let obj = value.as_object().ok_or(ResultSetError::NotAnObject)?;
        let mut set = ResultSet::default();
        if let Some(cols) = obj.get("columns") {
            let cols = cols.as_array().ok_or(ResultSetError::BadField("columns"))?;
            for col in cols {
                let (name, spec) = col
                    .as_object()
                    .and_then(|o| o.iter().next())
                    .ok_or(ResultSetError::BadField("columns"))?;
                let ty = spec
                    .get("type")
                    .and_then(Value::as_str)
                    .map(ColumnType::from_name)
                    .unwrap_or(ColumnType::String);
                set.columns.push(Column::new(name.clone(), ty));
            }
        }
        if let Some(data) = obj.get("data") {
            let data = data.as_array().ok_or(ResultSetError::BadField("data"))?;
            for (i, row) in data.iter().enumerate() {
                let row = row.as_object().ok_or(ResultSetError::BadField("data"))?;
                let values: Vec<Value> = row.values().cloned().collect();
                if values.len() != set.columns.len() {
                    return Err(ResultSetError::RowWidth {
                        row: i,
                        got: values.len(),
                        want: set.columns.len(),
                    });
                }
                set.rows.push(values);
            }
        }
        set.total = match obj.get("total") {
            None | Some(Value::Null) => set.rows.len() as u64,
            Some(v) => v.as_u64().ok_or(ResultSetError::BadField("total"))?,
        };
        for (field, slot) in [("error", &mut set.error), ("warning", &mut set.warning)] {
            match obj.get(field) {
                None | Some(Value::Null) => {}
                Some(Value::String(s)) => *slot = s.clone(),
                Some(_) => return Err(ResultSetError::BadField(field)),
            }
        }
        Ok(set)
    }

    /// The JSON form, in Buddy's field order (`total`, `error`, `warning`,
    /// then `columns` and `data` when there are columns).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Result sets as searchd itself writes a `/sql?mode=raw` reply: one line
/// for the columns, one per row, and `columns`, `data`, `total`, `error`,
/// `warning` in that order (`JsonRowBuffer_c` in searchd), e.g.
///
/// ```text
/// [{
/// "columns":[{"Table":{"type":"string"}}],
/// "data":[
/// {"Table":"t"}
/// ],
/// "total":1,
/// "error":"",
/// "warning":""
/// }]
/// ```
///
/// A set without columns is `{"total":N,"error":"","warning":""}` on one line.
pub fn raw_reply_text(sets: &[ResultSet]) -> String {
    let json = |v: &Value| serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    let text = |s: &str| json(&Value::String(s.to_string()));
    let parts: Vec<String> = sets
        .iter()
        .map(|set| {
            let tail = format!(
                "\"total\":{},\"error\":{},\"warning\":{}",
                set.total,
                text(&set.error),
                text(&set.warning)
            );
            if set.columns.is_empty() {
                return format!("{{{tail}}}");
            }
            let columns: Vec<String> = set
                .columns
                .iter()
                .map(|c| format!("{{{}:{{\"type\":{}}}}}", text(&c.name), text(c.ty.as_str())))
                .collect();
            let rows: Vec<String> = set
                .rows
                .iter()
                .map(|row| {
                    let cells: Vec<String> = set
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(c, v)| format!("{}:{}", text(&c.name), json(v)))
                        .collect();
                    format!("{{{}}}", cells.join(","))
                })
                .collect();
            format!(
                "{{\n\"columns\":[{}],\n\"data\":[\n{}\n],\n{}\n}}",
                columns.join(","),
                rows.join(",\n"),
                tail.replace(",\"", ",\n\"")
            )
        })
        .collect();
    format!("[{}]", parts.join(",\n"))
}

struct Columns<'a>(&'a [Column]);

impl Serialize for Columns<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for col in self.0 {
            let mut spec = Map::new();
            spec.insert("type".into(), Value::String(col.ty.as_str().to_string()));
            let mut entry = Map::new();
            entry.insert(col.name.clone(), Value::Object(spec));
            seq.serialize_element(&entry)?;
        }
        seq.end()
    }
}

struct Row<'a> {
    columns: &'a [Column],
    values: &'a [Value],
}

impl Serialize for Row<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.columns.len()))?;
        for (col, value) in self.columns.iter().zip(self.values) {
            map.serialize_entry(&col.name, value)?;
        }
        map.end()
    }
}

struct Rows<'a>(&'a ResultSet);

impl Serialize for Rows<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.rows.len()))?;
        for values in &self.0.rows {
            seq.serialize_element(&Row {
                columns: &self.0.columns,
                values,
            })?;
        }
        seq.end()
    }
}

impl Serialize for ResultSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("total", &self.total)?;
        map.serialize_entry("error", &self.error)?;
        map.serialize_entry("warning", &self.warning)?;
        if !self.columns.is_empty() {
            map.serialize_entry("columns", &Columns(&self.columns))?;
            map.serialize_entry("data", &Rows(self))?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_success_matches_buddy() {
        assert_eq!(
            serde_json::to_string(&ResultSet::ok()).unwrap(),
            r#"{"total":0,"error":"","warning":""}"#
        );
    }

    #[test]
    fn rows_keep_column_order() {
        let mut set = ResultSet::with_columns(vec![
            Column::new("table", ColumnType::String),
            Column::new("shard", ColumnType::LongLong),
        ]);
        set.push_row(vec![json!("t"), json!(0)]);
        assert_eq!(
            serde_json::to_string(&set).unwrap(),
            r#"{"total":1,"error":"","warning":"","columns":[{"table":{"type":"string"}},{"shard":{"type":"long long"}}],"data":[{"table":"t","shard":0}]}"#
        );
    }

    #[test]
    fn reads_searchd_raw_reply() {
        let raw = json!({
            "columns": [{"Table": {"type": "string"}}, {"Type": {"type": "string"}}],
            "data": [{"Table": "t", "Type": "shard"}],
            "total": 1, "error": "", "warning": ""
        });
        let set = ResultSet::from_json(&raw).unwrap();
        assert_eq!(set.text(0, "Type").as_deref(), Some("shard"));
        assert_eq!(set.total, 1);
        assert_eq!(ResultSet::from_json(&set.to_json()).unwrap(), set);
    }

    #[test]
    fn raw_text_has_searchds_layout() {
        // golden/transcripts.jsonl, single.11 and single.27.
        let empty = ResultSet::with_columns(vec![
            Column::new("Table", ColumnType::String),
            Column::new("Type", ColumnType::String),
        ]);
        assert_eq!(
            raw_reply_text(std::slice::from_ref(&empty)),
            "[{\n\"columns\":[{\"Table\":{\"type\":\"string\"}},{\"Type\":{\"type\":\"string\"}}],\n\"data\":[\n\n],\n\"total\":0,\n\"error\":\"\",\n\"warning\":\"\"\n}]"
        );
        assert_eq!(
            raw_reply_text(&[ResultSet::ok()]),
            r#"[{"total":0,"error":"","warning":""}]"#
        );
        let mut two = empty;
        two.push_row(vec![json!("a/b"), json!("shard")]);
        two.push_row(vec![json!("t\"q"), json!(3)]);
        let text = raw_reply_text(&[two, ResultSet::ok()]);
        assert!(
            text.contains("\"data\":[\n{\"Table\":\"a/b\",\"Type\":\"shard\"},\n{\"Table\":\"t\\\"q\",\"Type\":3}\n],\n\"total\":2,"),
            "{text}"
        );
        assert!(
            text.ends_with("\n},\n{\"total\":0,\"error\":\"\",\"warning\":\"\"}]"),
            "{text}"
        );
        let parsed: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn rejects_malformed_sets() {
        assert_eq!(
            ResultSet::from_json(&json!([])),
            Err(ResultSetError::NotAnObject)
        );
        assert_eq!(
            ResultSet::from_json(&json!({"total": "x"})),
            Err(ResultSetError::BadField("total"))
        );
    }

    #[test]
    fn a_row_of_the_wrong_width_is_named() {
        let raw = json!({
            "columns": [{"Table": {"type": "string"}}, {"Type": {"type": "string"}}],
            "data": [{"Table": "t", "Type": "shard"}, {"Table": "u"}],
        });
        let err = ResultSet::from_json(&raw).unwrap_err();
        assert_eq!(err.to_string(), "row 1 has 1 values for 2 columns");
    }
}
