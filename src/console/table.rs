//! Result sets as the text the `mysql` client prints: boxed tables, `Empty
//! set`, `Query OK` and the timing footer. This is what `/cli` users read.

use std::time::Duration;

use serde_json::Value;

use crate::protocol::ResultSet;

/// Renders every result set of one statement, each with its footer.
pub fn render(sets: &[ResultSet], elapsed: Duration) -> String {
    let footer_time = format!("({:.3} sec)", elapsed.as_secs_f64());
    let mut out = String::new();
    for set in sets {
        if set.columns.is_empty() {
            let rows = plural(set.total, "row");
            out.push_str(&format!("Query OK, {rows} affected {footer_time}\n"));
        } else if set.rows.is_empty() {
            out.push_str(&format!("Empty set {footer_time}\n"));
        } else {
            out.push_str(&boxed(set));
            let rows = plural(set.rows.len() as u64, "row");
            out.push_str(&format!("{rows} in set {footer_time}\n"));
        }
        if !set.warning.is_empty() {
            out.push_str(&format!("Warning: {}\n", set.warning));
        }
        out.push('\n');
    }
    out
}

fn plural(count: u64, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}

/// The mysql client's box: every column at least 4 wide (room for `NULL`;
/// searchd declares every column nullable), headers left-aligned, cells of
/// numeric columns right-aligned and all others left-aligned.
fn boxed(set: &ResultSet) -> String {
    let header: Vec<String> = set.columns.iter().map(|c| c.name.clone()).collect();
    let numeric: Vec<bool> = set.columns.iter().map(|c| c.ty.is_numeric()).collect();
    let rows: Vec<Vec<String>> = set
        .rows
        .iter()
        .map(|row| row.iter().map(cell_text).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count().max(4)).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let rule = widths
        .iter()
        .fold(String::from("+"), |acc, w| acc + &"-".repeat(w + 2) + "+");
    let line = |cells: &[String], align_numbers: bool| {
        widths.iter().zip(cells).zip(&numeric).fold(
            String::from("|"),
            |acc, ((w, cell), &number)| {
                let pad = " ".repeat(w - cell.chars().count());
                if align_numbers && number {
                    acc + " " + &pad + cell + " |"
                } else {
                    acc + " " + cell + &pad + " |"
                }
            },
        )
    };
    let mut out = format!("{rule}\n{}\n{rule}\n", line(&header, false));
    for row in &rows {
        out.push_str(&line(row, true));
        out.push('\n');
    }
    out.push_str(&rule);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Column, ColumnType};
    use serde_json::json;

    fn table(columns: &[&str], rows: Vec<Vec<Value>>) -> ResultSet {
        let mut set = ResultSet::with_columns(
            columns
                .iter()
                .map(|c| match c.strip_prefix('#') {
                    Some(name) => Column::new(name, ColumnType::LongLong),
                    None => Column::new(*c, ColumnType::String),
                })
                .collect(),
        );
        for row in rows {
            set.push_row(row);
        }
        set
    }

    #[test]
    fn renders_like_the_mysql_client() {
        let ms = Duration::from_millis(3);
        let cases: Vec<(&str, Vec<ResultSet>, &str)> = vec![
            (
                "rows",
                vec![table(
                    &["#id", "title", "#n"],
                    vec![
                        vec![json!(1), json!("héllo"), Value::Null],
                        vec![json!(22), Value::Null, json!(123456)],
                    ],
                )],
                "+------+-------+--------+\n\
                 | id   | title | n      |\n\
                 +------+-------+--------+\n\
                 |    1 | héllo |   NULL |\n\
                 |   22 | NULL  | 123456 |\n\
                 +------+-------+--------+\n\
                 2 rows in set (0.003 sec)\n\n",
            ),
            (
                "empty",
                vec![table(&["Table", "Type"], vec![])],
                "Empty set (0.003 sec)\n\n",
            ),
            (
                "ok",
                vec![ResultSet::ok()],
                "Query OK, 0 rows affected (0.003 sec)\n\n",
            ),
            (
                "one affected, with a warning",
                vec![ResultSet {
                    total: 1,
                    warning: "careful".into(),
                    ..ResultSet::ok()
                }],
                "Query OK, 1 row affected (0.003 sec)\nWarning: careful\n\n",
            ),
        ];
        for (name, sets, want) in cases {
            assert_eq!(render(&sets, ms), want, "{name}");
        }
    }

    #[test]
    fn one_row_is_singular_and_json_values_are_printed() {
        let set = table(&["j"], vec![vec![json!({"a": [1, 2]})]]);
        let text = render(&[set], Duration::ZERO);
        assert!(text.contains(r#"| {"a":[1,2]} |"#), "{text}");
        assert!(text.ends_with("1 row in set (0.000 sec)\n\n"), "{text}");
    }
}
