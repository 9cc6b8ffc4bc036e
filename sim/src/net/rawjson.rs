//! searchd's JSON text layouts: raw-mode result arrays (`/sql?mode=raw`, `/cli_json`) and the
//! search-style reply of `/sql`. Written by hand because the exact line breaks are part of the
//! format clients see.

use base64::Engine;

use crate::exec::result::{format_float, Cell, Output, ResultSet};
use crate::store::schema::ResultType;

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

fn raw_cell(c: &Cell) -> String {
    match c {
        Cell::Null => "null".to_string(),
        Cell::Int(v) => v.to_string(),
        Cell::Float(v) => format_float(*v),
        Cell::Str(s) => json_str(s),
        Cell::EmptyJson => "\"\"".to_string(),
    }
}

fn raw_set(rs: &ResultSet) -> String {
    let columns: Vec<String> = rs
        .columns
        .iter()
        .map(|c| {
            format!(
                "{{{}:{{\"type\":{}}}}}",
                json_str(&c.name),
                json_str(c.ty.name())
            )
        })
        .collect();
    let rows: Vec<String> = rs
        .rows
        .iter()
        .map(|row| {
            let cells: Vec<String> = rs
                .columns
                .iter()
                .zip(row)
                .map(|(c, v)| format!("{}:{}", json_str(&c.name), raw_cell(v)))
                .collect();
            format!("{{{}}}", cells.join(","))
        })
        .collect();
    format!(
        "{{\n\"columns\":[{}],\n\"data\":[\n{}\n],\n\"total\":{},\n\"error\":\"\",\n\"warning\":\"\"\n}}",
        columns.join(","),
        rows.join(",\n"),
        rs.rows.len()
    )
}

/// The raw-mode reply for a sequence of successful statements.
pub fn raw_reply(outputs: &[Output]) -> String {
    let parts: Vec<String> = outputs
        .iter()
        .map(|o| match o {
            Output::Rows(rs) => raw_set(rs),
            Output::Ok { affected } => {
                format!("{{\"total\":{affected},\"error\":\"\",\"warning\":\"\"}}")
            }
        })
        .collect();
    format!("[{}]", parts.join(",\n"))
}

/// `{"error":"<message>"}`
pub fn error_body(message: &str) -> String {
    format!("{{\"error\":{}}}", json_str(message))
}

/// A cell with its column's native JSON type, as `/sql` search replies show it in `_source`.
fn source_value(ty: ResultType, c: &Cell) -> String {
    match (ty, c) {
        (_, Cell::Null) | (ResultType::Json, Cell::EmptyJson) => "null".to_string(),
        (ResultType::Bool, Cell::Int(v)) => (*v != 0).to_string(),
        (ResultType::Multi, Cell::Str(s)) => format!("[{}]", s),
        (ResultType::Json, Cell::Str(s)) => s.clone(),
        (_, other) => raw_cell(other),
    }
}

/// The `/sql` (non-raw) reply: `{"took":…,"timed_out":false,"hits":{…}}`.
pub fn search_reply(rs: &ResultSet, took_ms: u64) -> String {
    search_reply_with(rs, took_ms, rs.total_found, "eq")
}

/// A search reply with the total and its relation (`eq`, or `gte` for a count cut short).
pub fn search_reply_with(rs: &ResultSet, took_ms: u64, total: u64, relation: &str) -> String {
    let id_pos = rs.columns.iter().position(|c| c.name == "id");
    let hits: Vec<String> = rs
        .rows
        .iter()
        .enumerate()
        .map(|(i, row)| {
            let source: Vec<String> = rs
                .columns
                .iter()
                .zip(row)
                .enumerate()
                .filter(|(j, _)| Some(*j) != id_pos)
                .map(|(_, (c, v))| format!("{}:{}", json_str(&c.name), source_value(c.ty, v)))
                .collect();
            let id = id_pos
                .map(|p| raw_cell(&row[p]))
                .unwrap_or_else(|| "0".to_string());
            let score = rs.scores.get(i).copied().unwrap_or(1);
            format!(
                "{{\"_id\":{id},\"_score\":{score},\"_source\":{{{}}}}}",
                source.join(",")
            )
        })
        .collect();
    let mut out = format!(
        "{{\"took\":{took_ms},\"timed_out\":false,\"hits\":{{\"total\":{total},\"total_relation\":\"{relation}\",\"hits\":[{}]}}",
        hits.join(",")
    );
    if let Some(token) = scroll_token(rs) {
        out.push_str(&format!(",\"scroll\":{}", json_str(&token)));
    }
    out.push('}');
    out
}

/// searchd's pagination token: the ORDER BY and the last row's sort values, base64-encoded.
fn scroll_token(rs: &ResultSet) -> Option<String> {
    if rs.order.is_empty() {
        return None;
    }
    let last = rs.rows.last()?;
    let mut keys = Vec::new();
    for (name, desc) in &rs.order {
        let pos = rs.columns.iter().position(|c| &c.name == name)?;
        let (value, ty) = match &last[pos] {
            Cell::Int(v) => (v.to_string(), "int"),
            Cell::Float(v) => (format_float(*v), "float"),
            Cell::Str(s) => (json_str(s), "string"),
            _ => ("null".to_string(), "string"),
        };
        keys.push(format!(
            "{{\"attr\":{},\"desc\":{desc},\"value\":{value},\"type\":\"{ty}\"}}",
            json_str(name)
        ));
    }
    let order_str: Vec<String> = rs
        .order
        .iter()
        .map(|(n, d)| format!("{n} {}", if *d { "DESC" } else { "ASC" }))
        .collect();
    let json = format!(
        "{{\"order_by_str\":{},\"order_by\":[{}]}}",
        json_str(&order_str.join(", ")),
        keys.join(",")
    );
    Some(base64::engine::general_purpose::STANDARD.encode(json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::result::ResultColumn;

    #[test]
    fn raw_layout_matches_searchd() {
        let mut rs = ResultSet::new(&[("Table", ResultType::String), ("Type", ResultType::String)]);
        assert_eq!(
            raw_reply(&[Output::Rows(rs.clone())]),
            "[{\n\"columns\":[{\"Table\":{\"type\":\"string\"}},{\"Type\":{\"type\":\"string\"}}],\n\"data\":[\n\n],\n\"total\":0,\n\"error\":\"\",\n\"warning\":\"\"\n}]"
        );
        rs.rows
            .push(vec![Cell::Str("t".into()), Cell::Str("rt".into())]);
        assert!(raw_reply(&[Output::Rows(rs)])
            .contains("\"data\":[\n{\"Table\":\"t\",\"Type\":\"rt\"}\n],"));
        assert_eq!(
            raw_reply(&[Output::Ok { affected: 2 }]),
            "[{\"total\":2,\"error\":\"\",\"warning\":\"\"}]"
        );
        assert_eq!(
            error_body("no such table 'x'"),
            "{\"error\":\"no such table 'x'\"}"
        );
    }

    #[test]
    fn search_reply_with_scroll() {
        let rs = ResultSet {
            columns: vec![
                ResultColumn {
                    name: "id".into(),
                    ty: ResultType::LongLong,
                },
                ResultColumn {
                    name: "title".into(),
                    ty: ResultType::String,
                },
                ResultColumn {
                    name: "n".into(),
                    ty: ResultType::Long,
                },
            ],
            rows: vec![vec![Cell::Int(3), Cell::Str("three".into()), Cell::Int(3)]],
            scores: vec![],
            order: vec![("id".into(), false)],
            total_found: 4,
        };
        let out = search_reply(&rs, 0);
        assert!(out.starts_with("{\"took\":0,\"timed_out\":false,\"hits\":{\"total\":4,\"total_relation\":\"eq\",\"hits\":[{\"_id\":3,\"_score\":1,\"_source\":{\"title\":\"three\",\"n\":3}}]},\"scroll\":\""));
        let token = out
            .split("\"scroll\":\"")
            .nth(1)
            .unwrap()
            .trim_end_matches("\"}");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(token)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "{\"order_by_str\":\"id ASC\",\"order_by\":[{\"attr\":\"id\",\"desc\":false,\"value\":3,\"type\":\"int\"}]}");
    }
}
