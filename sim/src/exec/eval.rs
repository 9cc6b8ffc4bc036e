//! Evaluation of select expressions and WHERE conditions against one document.

use std::cmp::Ordering;
use std::collections::HashMap;

use regex::Regex;

use super::error::{ExecError, ExecResult};
use super::result::Cell;
use crate::sql::ast::{CmpOp, Expr, Literal, Path, PathStep};
use crate::store::schema::{ColumnType, ResultType, Schema};
use crate::store::value::{Row, Value};

/// A value as expressions see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Int(i64),
    Float(f64),
    Str(String),
    Mva(Vec<i64>),
    Json(serde_json::Value),
}

/// One document under evaluation.
pub struct RowCtx<'a> {
    pub schema: &'a Schema,
    pub row: &'a Row,
    pub weight: i64,
}

/// Compiled per-query state (regexes are compiled once).
#[derive(Default)]
pub struct EvalCache {
    regexes: HashMap<String, Regex>,
}

impl EvalCache {
    fn regex(&mut self, pattern: &str) -> ExecResult<&Regex> {
        if !self.regexes.contains_key(pattern) {
            let re = Regex::new(pattern).map_err(|e| ExecError::new(format!("REGEX: {e}")))?;
            self.regexes.insert(pattern.to_string(), re);
        }
        Ok(&self.regexes[pattern])
    }
}

pub fn unknown_column(name: &str) -> ExecError {
    ExecError::new(format!("unknown column: '{name}'"))
}

/// Checks that every column a condition or expression names exists.
pub fn check_columns(expr: &Expr, schema: &Schema) -> ExecResult<()> {
    match expr {
        Expr::Path(p) => {
            if p.column.eq_ignore_ascii_case("id") || schema.position(&p.column).is_some() {
                Ok(())
            } else {
                Err(unknown_column(&p.column))
            }
        }
        Expr::Cmp { lhs, rhs, .. } => check_columns(lhs, schema).and(check_columns(rhs, schema)),
        Expr::In { expr, .. } | Expr::Regex { expr, .. } | Expr::Not(expr) => {
            check_columns(expr, schema)
        }
        Expr::And(parts) | Expr::Or(parts) => {
            parts.iter().try_for_each(|p| check_columns(p, schema))
        }
        _ => Ok(()),
    }
}

pub fn resolve(path: &Path, ctx: &RowCtx) -> Scalar {
    let base = if path.column.eq_ignore_ascii_case("id") {
        Scalar::Int(ctx.row.id)
    } else {
        match ctx
            .schema
            .position(&path.column)
            .and_then(|i| ctx.row.values.get(i))
        {
            Some(v) => scalar_of(v),
            None => Scalar::Null,
        }
    };
    if path.steps.is_empty() {
        return base;
    }
    let Scalar::Json(mut json) = base else {
        return Scalar::Null;
    };
    for step in &path.steps {
        let next = match (step, &json) {
            (PathStep::Key(k), serde_json::Value::Object(map)) => map.get(k).cloned(),
            (PathStep::Index(i), serde_json::Value::Array(items)) => items.get(*i).cloned(),
            _ => None,
        };
        match next {
            Some(v) => json = v,
            None => return Scalar::Null,
        }
    }
    Scalar::Json(json)
}

fn scalar_of(v: &Value) -> Scalar {
    match v {
        Value::Int(i) => Scalar::Int(*i),
        Value::Float(f) => Scalar::Float(f64::from(*f)),
        Value::Str(s) => Scalar::Str(s.clone()),
        Value::Mva(m) => Scalar::Mva(m.clone()),
        Value::Json(Some(j)) => Scalar::Json(j.clone()),
        Value::Json(None) => Scalar::Null,
    }
}

/// A stored value as a result cell.
pub fn cell_of(v: &Value) -> Cell {
    match v {
        Value::Int(i) => Cell::Int(*i),
        Value::Float(f) => Cell::Float(*f),
        Value::Str(s) => Cell::Str(s.clone()),
        Value::Mva(m) => Cell::Str(m.iter().map(i64::to_string).collect::<Vec<_>>().join(",")),
        Value::Json(Some(j)) => Cell::Str(j.to_string()),
        Value::Json(None) => Cell::EmptyJson,
    }
}

/// A JSON element as searchd prints it in a result column (strings unquoted, `true` as 1).
pub fn json_element_cell(v: &serde_json::Value) -> Cell {
    match v {
        serde_json::Value::Null => Cell::Null,
        serde_json::Value::String(s) => Cell::Str(s.clone()),
        serde_json::Value::Bool(b) => Cell::Str(if *b { "1" } else { "0" }.to_string()),
        other => Cell::Str(other.to_string()),
    }
}

/// The result column type and cell of a projected expression.
pub fn project(expr: &Expr, ctx: &RowCtx) -> (ResultType, Cell) {
    match expr {
        Expr::Path(p) if p.steps.is_empty() => {
            if p.column.eq_ignore_ascii_case("id") {
                return (ResultType::LongLong, Cell::Int(ctx.row.id));
            }
            match ctx.schema.position(&p.column) {
                Some(i) => (
                    ctx.schema.columns[i].ty.result_type(),
                    ctx.row.values.get(i).map(cell_of).unwrap_or(Cell::Null),
                ),
                None => (ResultType::String, Cell::Null),
            }
        }
        Expr::Path(p) => match resolve(p, ctx) {
            Scalar::Json(j) => (ResultType::String, json_element_cell(&j)),
            _ => (ResultType::String, Cell::Null),
        },
        Expr::Weight => (ResultType::LongLong, Cell::Int(ctx.weight)),
        Expr::Literal(l) => literal_cell(l),
        _ => (ResultType::String, Cell::Null),
    }
}

pub fn literal_cell(l: &Literal) -> (ResultType, Cell) {
    match l {
        Literal::Int(v) => (ResultType::LongLong, Cell::Int(*v)),
        Literal::UInt(v) => (ResultType::LongLong, Cell::Int(*v as i64)),
        Literal::Float(v) => (ResultType::Float, Cell::Float(*v as f32)),
        Literal::Str(s) => (ResultType::String, Cell::Str(s.clone())),
        Literal::Mva(m) => (
            ResultType::String,
            Cell::Str(m.iter().map(i64::to_string).collect::<Vec<_>>().join(",")),
        ),
        Literal::Null => (ResultType::String, Cell::Null),
    }
}

/// Evaluates a WHERE condition; `MATCH` is decided by the caller (`full_text`).
pub fn eval_condition(
    expr: &Expr,
    ctx: &RowCtx,
    cache: &mut EvalCache,
    full_text: bool,
) -> ExecResult<bool> {
    Ok(match expr {
        Expr::And(parts) => {
            for p in parts {
                if !eval_condition(p, ctx, cache, full_text)? {
                    return Ok(false);
                }
            }
            true
        }
        Expr::Or(parts) => {
            for p in parts {
                if eval_condition(p, ctx, cache, full_text)? {
                    return Ok(true);
                }
            }
            false
        }
        Expr::Not(inner) => !eval_condition(inner, ctx, cache, full_text)?,
        Expr::Match(_) => full_text,
        Expr::Regex { expr, pattern } => {
            let text = match operand(expr, ctx) {
                Scalar::Str(s) => s,
                Scalar::Json(serde_json::Value::String(s)) => s,
                _ => return Ok(false),
            };
            cache.regex(pattern)?.is_match(&text)
        }
        Expr::In {
            expr,
            list,
            negated,
        } => {
            let v = operand(expr, ctx);
            list.iter().any(|l| compare(&v, l, CmpOp::Eq)) != *negated
        }
        Expr::Cmp { op, lhs, rhs } => match (lhs.as_ref(), rhs.as_ref()) {
            (l, Expr::Literal(lit)) => compare(&operand(l, ctx), lit, *op),
            (Expr::Literal(lit), r) => compare(&operand(r, ctx), lit, flip(*op)),
            (l, r) => {
                let rv = operand(r, ctx);
                match scalar_literal(&rv) {
                    Some(lit) => compare(&operand(l, ctx), &lit, *op),
                    None => false,
                }
            }
        },
        Expr::Path(_) => truthy(&operand(expr, ctx)),
        Expr::Literal(l) => matches!(l, Literal::Int(v) if *v != 0),
        Expr::CountStar | Expr::Weight | Expr::SysVar(_) => true,
    })
}

fn operand(expr: &Expr, ctx: &RowCtx) -> Scalar {
    match expr {
        Expr::Path(p) => resolve(p, ctx),
        Expr::Weight => Scalar::Int(ctx.weight),
        Expr::Literal(l) => match l {
            Literal::Int(v) => Scalar::Int(*v),
            Literal::UInt(v) => Scalar::Int(*v as i64),
            Literal::Float(v) => Scalar::Float(*v),
            Literal::Str(s) => Scalar::Str(s.clone()),
            Literal::Mva(m) => Scalar::Mva(m.clone()),
            Literal::Null => Scalar::Null,
        },
        _ => Scalar::Null,
    }
}

fn scalar_literal(s: &Scalar) -> Option<Literal> {
    match s {
        Scalar::Int(v) => Some(Literal::Int(*v)),
        Scalar::Float(v) => Some(Literal::Float(*v)),
        Scalar::Str(v) => Some(Literal::Str(v.clone())),
        _ => None,
    }
}

fn truthy(s: &Scalar) -> bool {
    match s {
        Scalar::Int(v) => *v != 0,
        Scalar::Float(v) => *v != 0.0,
        Scalar::Str(v) => !v.is_empty(),
        Scalar::Mva(m) => !m.is_empty(),
        Scalar::Json(j) => !j.is_null(),
        Scalar::Null => false,
    }
}

fn flip(op: CmpOp) -> CmpOp {
    match op {
        CmpOp::Lt => CmpOp::Gt,
        CmpOp::Le => CmpOp::Ge,
        CmpOp::Gt => CmpOp::Lt,
        CmpOp::Ge => CmpOp::Le,
        other => other,
    }
}

fn holds(ord: Ordering, op: CmpOp) -> bool {
    match op {
        CmpOp::Eq => ord == Ordering::Equal,
        CmpOp::Ne => ord != Ordering::Equal,
        CmpOp::Lt => ord == Ordering::Less,
        CmpOp::Le => ord != Ordering::Greater,
        CmpOp::Gt => ord == Ordering::Greater,
        CmpOp::Ge => ord != Ordering::Less,
    }
}

/// Compares a value with a literal. Strings compare case-insensitively (searchd's default
/// `libc_ci` collation); an MVA satisfies the comparison when any element does.
pub fn compare(v: &Scalar, lit: &Literal, op: CmpOp) -> bool {
    match v {
        Scalar::Null => false,
        Scalar::Int(i) => match lit {
            Literal::Int(l) => holds(i.cmp(l), op),
            Literal::UInt(l) => holds((*i as u64).cmp(l), op),
            Literal::Float(l) => holds_f(*i as f64, *l, op),
            _ => false,
        },
        Scalar::Float(f) => match lit {
            Literal::Int(l) => holds_f(*f, *l as f64, op),
            Literal::UInt(l) => holds_f(*f, *l as f64, op),
            Literal::Float(l) => holds_f(*f, *l, op),
            _ => false,
        },
        Scalar::Str(s) => match lit {
            Literal::Str(l) => holds(ci_cmp(s, l), op),
            _ => false,
        },
        Scalar::Mva(items) => {
            let hit = items.iter().any(|i| {
                compare(
                    &Scalar::Int(*i),
                    lit,
                    if op == CmpOp::Ne { CmpOp::Eq } else { op },
                )
            });
            if op == CmpOp::Ne {
                !hit
            } else {
                hit
            }
        }
        Scalar::Json(j) => match j {
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => compare(&Scalar::Int(i), lit, op),
                None => n
                    .as_f64()
                    .is_some_and(|f| compare(&Scalar::Float(f), lit, op)),
            },
            serde_json::Value::String(s) => compare(&Scalar::Str(s.clone()), lit, op),
            serde_json::Value::Bool(b) => compare(&Scalar::Int(i64::from(*b)), lit, op),
            _ => false,
        },
    }
}

fn holds_f(a: f64, b: f64, op: CmpOp) -> bool {
    a.partial_cmp(&b).is_some_and(|o| holds(o, op))
}

pub fn ci_cmp(a: &str, b: &str) -> Ordering {
    a.bytes()
        .map(|c| c.to_ascii_lowercase())
        .cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

/// Document ids a condition is limited to (`id = N`, `id IN (…)`, possibly inside AND), so a
/// lookup can replace a scan. `None`: any document may match.
pub fn id_candidates(filter: &Expr) -> Option<Vec<i64>> {
    let is_id = |e: &Expr| matches!(e, Expr::Path(p) if p.steps.is_empty() && p.column.eq_ignore_ascii_case("id"));
    let as_id = |l: &Literal| match l {
        Literal::Int(v) => Some(*v),
        Literal::UInt(v) => Some(*v as i64),
        _ => None,
    };
    match filter {
        Expr::Cmp {
            op: CmpOp::Eq,
            lhs,
            rhs,
        } if is_id(lhs) => match rhs.as_ref() {
            Expr::Literal(l) => Some(as_id(l).into_iter().collect()),
            _ => None,
        },
        Expr::In {
            expr,
            list,
            negated: false,
        } if is_id(expr) => Some(list.iter().filter_map(as_id).collect()),
        Expr::And(parts) => parts.iter().find_map(id_candidates),
        _ => None,
    }
}

/// Full-text fields of a document as `(name, text)` pairs.
pub fn text_fields<'a>(schema: &'a Schema, row: &'a Row) -> Vec<(&'a str, &'a str)> {
    schema
        .columns
        .iter()
        .zip(&row.values)
        .filter_map(|(c, v)| match (c.ty, v) {
            (ColumnType::Text { indexed: true, .. }, Value::Str(s)) => {
                Some((c.name.as_str(), s.as_str()))
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ast::Statement;
    use crate::store::schema::Column;

    fn ctx_parts() -> (Schema, Row) {
        let schema = Schema {
            columns: vec![
                Column {
                    name: "s".into(),
                    ty: ColumnType::String,
                },
                Column {
                    name: "m".into(),
                    ty: ColumnType::Multi,
                },
                Column {
                    name: "j".into(),
                    ty: ColumnType::Json,
                },
                Column {
                    name: "f".into(),
                    ty: ColumnType::Float,
                },
            ],
        };
        let row = Row {
            id: 5,
            values: vec![
                Value::Str("Alpha".into()),
                Value::Mva(vec![7, 8]),
                Value::Json(Some(
                    serde_json::json!({"a": 1, "arr": [1, 2], "list": [{"k": "v"}]}),
                )),
                Value::Float(1.5),
            ],
        };
        (schema, row)
    }

    fn where_of(cond: &str) -> Expr {
        match crate::sql::parse(&format!("SELECT * FROM t WHERE {cond}")).unwrap() {
            Statement::Select(s) => s.filter.unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn conditions() {
        let (schema, row) = ctx_parts();
        let ctx = RowCtx {
            schema: &schema,
            row: &row,
            weight: 1,
        };
        let mut cache = EvalCache::default();
        let cases = [
            ("s = 'alpha'", true),
            ("s != 'alpha'", false),
            ("s IN ('x', 'ALPHA')", true),
            ("id > 4 AND id <= 5", true),
            ("id IN (1, 2, 99)", false),
            ("m IN (7)", true),
            ("m = 9", false),
            ("j.a = 1", true),
            ("j.arr[1] = 2", true),
            ("f < 2.0", true),
            ("REGEX(s, '^Al')", true),
            ("id = 1 OR s = 'alpha'", true),
            ("NOT s = 'alpha'", false),
        ];
        for (cond, want) in cases {
            assert_eq!(
                eval_condition(&where_of(cond), &ctx, &mut cache, false).unwrap(),
                want,
                "{cond}"
            );
        }
    }

    #[test]
    fn projections() {
        let (schema, row) = ctx_parts();
        let ctx = RowCtx {
            schema: &schema,
            row: &row,
            weight: 1,
        };
        let path = |column: &str, steps: Vec<PathStep>| {
            Expr::Path(Path {
                column: column.into(),
                steps,
            })
        };
        assert_eq!(
            project(&path("m", vec![]), &ctx),
            (ResultType::Multi, Cell::Str("7,8".into()))
        );
        assert_eq!(
            project(&path("j", vec![PathStep::Key("a".into())]), &ctx),
            (ResultType::String, Cell::Str("1".into()))
        );
        assert_eq!(
            project(
                &path("j", vec![PathStep::Key("list".into()), PathStep::Index(0)]),
                &ctx
            ),
            (ResultType::String, Cell::Str("{\"k\":\"v\"}".into()))
        );
        assert_eq!(
            project(&path("j", vec![PathStep::Key("nope".into())]), &ctx),
            (ResultType::String, Cell::Null)
        );
        assert_eq!(
            json_element_cell(&serde_json::json!(true)),
            Cell::Str("1".into())
        );
    }
}
