//! What a statement produces: a result set, an OK with an affected-row count, or an error.

use crate::store::schema::ResultType;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Float(f32),
    Str(String),
    /// A JSON attribute without a value: `""` in raw JSON, `NULL` over MySQL.
    EmptyJson,
}

impl Cell {
    /// Text as the MySQL protocol carries it (`None` = SQL NULL).
    pub fn mysql_text(&self) -> Option<String> {
        match self {
            Cell::Null | Cell::EmptyJson => None,
            Cell::Int(v) => Some(v.to_string()),
            Cell::Float(v) => Some(format_float(*v)),
            Cell::Str(s) => Some(s.clone()),
        }
    }
}

/// searchd prints floats with six decimals.
pub fn format_float(v: f32) -> String {
    format!("{v:.6}")
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultColumn {
    pub name: String,
    pub ty: ResultType,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    pub columns: Vec<ResultColumn>,
    pub rows: Vec<Vec<Cell>>,
    /// Per-row relevance, for the `_score` of `/sql` JSON replies (empty: 1 for every row).
    pub scores: Vec<i64>,
    /// Order keys of a SELECT, for the `scroll` token of `/sql` JSON replies.
    pub order: Vec<(String, bool)>,
    /// Documents matched (before LIMIT), for `/sql` JSON replies.
    pub total_found: u64,
}

impl ResultSet {
    pub fn new(columns: &[(&str, ResultType)]) -> ResultSet {
        ResultSet {
            columns: columns
                .iter()
                .map(|(n, t)| ResultColumn {
                    name: n.to_string(),
                    ty: *t,
                })
                .collect(),
            ..ResultSet::default()
        }
    }

    /// A `Counter`/`Value`-style two-string-column result.
    pub fn pairs(
        key: &str,
        value: &str,
        rows: impl IntoIterator<Item = (String, String)>,
    ) -> ResultSet {
        let mut rs = ResultSet::new(&[(key, ResultType::String), (value, ResultType::String)]);
        rs.rows = rows
            .into_iter()
            .map(|(k, v)| vec![Cell::Str(k), Cell::Str(v)])
            .collect();
        rs
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    Rows(ResultSet),
    Ok { affected: u64 },
}

/// Statistics of the last search, for SHOW META.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Meta {
    pub warning: Option<String>,
    pub total: u64,
    pub total_found: u64,
    /// `eq`, or `gte` when some agent did not answer.
    pub relation_gte: bool,
    pub time_ms: u64,
    /// (keyword, documents, hits) per full-text keyword.
    pub keywords: Vec<(String, u64, u64)>,
}

impl Meta {
    pub fn to_result(&self) -> ResultSet {
        let mut rows = Vec::new();
        if let Some(w) = &self.warning {
            rows.push(("warning".to_string(), w.clone()));
        }
        rows.push(("total".to_string(), self.total.to_string()));
        rows.push(("total_found".to_string(), self.total_found.to_string()));
        rows.push((
            "total_relation".to_string(),
            if self.relation_gte { "gte" } else { "eq" }.to_string(),
        ));
        rows.push((
            "time".to_string(),
            format!("{:.3}", self.time_ms as f64 / 1000.0),
        ));
        for (i, (word, docs, hits)) in self.keywords.iter().enumerate() {
            rows.push((format!("keyword[{i}]"), word.clone()));
            rows.push((format!("docs[{i}]"), docs.to_string()));
            rows.push((format!("hits[{i}]"), hits.to_string()));
        }
        ResultSet::pairs("Variable_name", "Value", rows)
    }
}
