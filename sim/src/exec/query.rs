//! SELECT evaluation: matching documents of one or more sources are ranked, aggregated,
//! sorted with searchd's heap sorter, cut by LIMIT and projected.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;

use super::error::{ExecError, ExecResult};
use super::eval::{
    check_columns, ci_cmp, eval_condition, project, resolve, text_fields, unknown_column,
    EvalCache, RowCtx, Scalar,
};
use super::fulltext::Query;
use super::result::{Cell, Meta, ResultColumn, ResultSet};
use super::sorter::TopN;
use crate::sql::ast::{Expr, Path, Select, SelectItem};
use crate::store::catalog::Table;
use crate::store::schema::{ResultType, Schema};
use crate::store::value::Row;

/// searchd's default LIMIT.
pub const DEFAULT_LIMIT: u64 = 20;
/// searchd's default `max_matches`: the sorter keeps at most this many best matches, so a
/// LIMIT beyond it returns `max_matches - offset` rows, and an offset at or beyond it fails.
pub const DEFAULT_MAX_MATCHES: u64 = 1000;

/// A matching document.
#[derive(Debug, Clone)]
pub struct Match<'a> {
    pub row: Cow<'a, Row>,
    pub weight: i64,
    /// Row id inside its segment (the relevance tie-break).
    pub rowid: u32,
}

/// What a query needs to know before scanning.
pub struct Plan<'s> {
    pub select: &'s Select,
    pub full_text: Option<Query>,
}

impl<'s> Plan<'s> {
    pub fn new(select: &'s Select) -> Plan<'s> {
        Plan {
            select,
            full_text: select
                .filter
                .as_ref()
                .and_then(find_match)
                .map(|q| Query::parse(&q)),
        }
    }

    pub fn limit(&self) -> u64 {
        self.select.limit.unwrap_or(DEFAULT_LIMIT)
    }

    /// `OPTION max_matches=N`, or searchd's default.
    pub fn max_matches(&self) -> ExecResult<u64> {
        let Some((_, v)) = self
            .select
            .options
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("max_matches"))
        else {
            return Ok(DEFAULT_MAX_MATCHES);
        };
        match v.trim().parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n as u64),
            Ok(_) => Err(ExecError::new("max_matches can not be less than one")),
            Err(_) => Err(ExecError::new(format!(
                "max_matches: integer expected, got '{v}'"
            ))),
        }
    }

    /// How many of the best matches are kept: `offset + limit`, bounded by `max_matches`.
    /// `Err` is searchd's complaint about an offset past the window.
    pub fn window(&self) -> ExecResult<u64> {
        let max = self.max_matches()?;
        let offset = self.select.offset;
        if offset >= max {
            return Err(ExecError::new(format!(
                "offset out of bounds (offset={offset}, max_matches={max})"
            )));
        }
        Ok((offset + self.limit()).min(max))
    }

    /// Only `COUNT(*)` is selected and nothing is grouped.
    pub fn is_count_only(&self) -> bool {
        self.select.group_by.is_none()
            && !self.select.items.is_empty()
            && self.select.items.iter().all(|i| {
                matches!(
                    i,
                    SelectItem::Expr {
                        expr: Expr::CountStar,
                        ..
                    }
                )
            })
    }

    fn has_count(&self) -> bool {
        self.select.items.iter().any(|i| {
            matches!(
                i,
                SelectItem::Expr {
                    expr: Expr::CountStar,
                    ..
                }
            )
        })
    }
}

fn find_match(e: &Expr) -> Option<String> {
    match e {
        Expr::Match(q) => Some(q.clone()),
        Expr::And(parts) | Expr::Or(parts) => parts.iter().find_map(find_match),
        _ => None,
    }
}

/// Keyword statistics of a full-text query over one table: (documents, hits) per term,
/// counting documents killed since the last merge, as searchd does.
pub fn keyword_stats(q: &Query, schema: &Schema, table: &Table) -> Vec<(u64, u64)> {
    let rows = table
        .data
        .iter()
        .map(|(_, r)| r)
        .chain(table.data.killed().iter());
    let mut stats = vec![(0u64, 0u64); q.terms.len()];
    for row in rows {
        let fields = text_fields(schema, row);
        for (i, term) in q.terms.iter().enumerate() {
            let hits = q.hits(term, &fields);
            if hits > 0 {
                stats[i].0 += 1;
                stats[i].1 += hits;
            }
        }
    }
    stats
}

/// Validates the columns a query names against a schema.
pub fn check_query_columns(select: &Select, schema: &Schema) -> ExecResult<()> {
    for item in &select.items {
        if let SelectItem::Expr {
            expr: Expr::Path(p),
            ..
        } = item
        {
            if !p.column.eq_ignore_ascii_case("id") && schema.position(&p.column).is_none() {
                return Err(unknown_column(&p.column));
            }
        }
    }
    if let Some(f) = &select.filter {
        check_columns(f, schema)?;
    }
    if let Some(g) = &select.group_by {
        if schema.position(&g.column).is_none() && !g.column.eq_ignore_ascii_case("id") {
            return Err(unknown_column(&g.column));
        }
    }
    Ok(())
}

/// Matching documents of one RT table, in storage order.
pub fn scan<'a>(
    plan: &Plan,
    schema: &Schema,
    table: &'a Table,
    stats: &[(u64, u64)],
) -> ExecResult<Vec<Match<'a>>> {
    let mut cache = EvalCache::default();
    let docs: Vec<u64> = stats.iter().map(|s| s.0).collect();
    let total_docs = table.data.len() as u64;
    let mut out = Vec::new();
    // `id = N` / `id IN (…)`: look the documents up instead of scanning, in storage order.
    let candidates: Box<dyn Iterator<Item = ((u64, u32), &Row)>> = match plan
        .select
        .filter
        .as_ref()
        .and_then(super::eval::id_candidates)
    {
        Some(ids) => {
            let mut found: Vec<((u64, u32), &Row)> = ids
                .iter()
                .filter_map(|id| Some((table.data.position(*id)?, table.data.get(*id)?)))
                .collect();
            found.sort_by_key(|(pos, _)| *pos);
            found.dedup_by_key(|(pos, _)| *pos);
            Box::new(found.into_iter())
        }
        None => Box::new(table.data.iter()),
    };
    for ((_, rowid), row) in candidates {
        let (full_text, weight) = match &plan.full_text {
            Some(q) => {
                let fields = text_fields(schema, row);
                if q.matches(&fields) {
                    (true, q.weight(&fields, &docs, total_docs))
                } else {
                    (false, 0)
                }
            }
            None => (false, 1),
        };
        if plan.full_text.is_some() && !full_text {
            continue;
        }
        let ctx = RowCtx {
            schema,
            row,
            weight,
        };
        if let Some(f) = &plan.select.filter {
            if !eval_condition(f, &ctx, &mut cache, full_text)? {
                continue;
            }
        }
        out.push(Match {
            row: Cow::Borrowed(row),
            weight,
            rowid,
        });
    }
    Ok(out)
}

/// Turns matches (plus counts already aggregated elsewhere) into the final result set.
pub fn finish(
    plan: &Plan,
    schema: &Schema,
    matches: Vec<Match>,
    counted_elsewhere: u64,
    meta: &mut Meta,
) -> ExecResult<ResultSet> {
    let select = plan.select;
    let found = matches.len() as u64 + counted_elsewhere;
    let mut rs = if plan.is_count_only() {
        let mut rs = ResultSet::default();
        let mut row = Vec::new();
        for item in &select.items {
            if let SelectItem::Expr { header, .. } = item {
                rs.columns.push(ResultColumn {
                    name: header.clone(),
                    ty: ResultType::LongLong,
                });
                row.push(Cell::Int(found as i64));
            }
        }
        rs.rows.push(row);
        meta.total_found = 1;
        rs
    } else if let Some(key) = &select.group_by {
        let rs = grouped(plan, schema, key, matches)?;
        meta.total_found = rs.total_found;
        rs
    } else if plan.has_count() {
        // COUNT(*) next to plain columns without GROUP BY: one implicit group.
        let mut sorted = sort_matches(plan, schema, matches, 1);
        let first = sorted.drain(..).next();
        let mut rs = ResultSet::default();
        let mut row = Vec::new();
        for item in &select.items {
            if let SelectItem::Expr { expr, header } = item {
                let (ty, cell) = match (expr, &first) {
                    (Expr::CountStar, _) => (ResultType::LongLong, Cell::Int(found as i64)),
                    (e, Some(m)) => project(
                        e,
                        &RowCtx {
                            schema,
                            row: &m.row,
                            weight: m.weight,
                        },
                    ),
                    (_, None) => (ResultType::String, Cell::Null),
                };
                rs.columns.push(ResultColumn {
                    name: header.clone(),
                    ty,
                });
                row.push(cell);
            }
        }
        rs.rows.push(row);
        meta.total_found = 1;
        rs
    } else {
        let want = plan.window()? as usize;
        let sorted = sort_matches(plan, schema, matches, want);
        let page: Vec<Match> = sorted.into_iter().skip(select.offset as usize).collect();
        let mut rs = project_rows(select, schema, &page);
        rs.scores = page.iter().map(|m| m.weight).collect();
        meta.total_found = found;
        rs
    };
    rs.order = select
        .order_by
        .iter()
        .filter_map(|k| match &k.expr {
            Expr::Path(p) => Some((p.column.clone(), k.desc)),
            _ => None,
        })
        .collect();
    rs.total_found = meta.total_found;
    meta.total = rs.rows.len() as u64;
    Ok(rs)
}

/// Columns and cells for `SELECT <items>` over already sorted matches.
fn project_rows(select: &Select, schema: &Schema, page: &[Match]) -> ResultSet {
    let mut rs = ResultSet::default();
    let mut exprs: Vec<(String, Expr)> = Vec::new();
    for item in &select.items {
        match item {
            SelectItem::Star => {
                exprs.push(("id".to_string(), column_expr("id")));
                for c in &schema.columns {
                    exprs.push((c.name.clone(), column_expr(&c.name)));
                }
            }
            SelectItem::Expr { expr, header } => exprs.push((header.clone(), expr.clone())),
        }
    }
    let mut types: Vec<Option<ResultType>> = vec![None; exprs.len()];
    for m in page {
        let ctx = RowCtx {
            schema,
            row: &m.row,
            weight: m.weight,
        };
        let mut row = Vec::with_capacity(exprs.len());
        for (i, (_, e)) in exprs.iter().enumerate() {
            let (ty, cell) = project(e, &ctx);
            types[i].get_or_insert(ty);
            row.push(cell);
        }
        rs.rows.push(row);
    }
    rs.columns = exprs
        .iter()
        .zip(types)
        .map(|((name, e), ty)| ResultColumn {
            name: name.clone(),
            ty: ty.unwrap_or_else(|| static_type(e, schema)),
        })
        .collect();
    rs
}

fn column_expr(name: &str) -> Expr {
    Expr::Path(Path {
        column: name.to_string(),
        steps: Vec::new(),
    })
}

/// Result type of an expression when there is no row to look at.
fn static_type(e: &Expr, schema: &Schema) -> ResultType {
    match e {
        Expr::Path(p) if p.steps.is_empty() => {
            if p.column.eq_ignore_ascii_case("id") {
                ResultType::LongLong
            } else {
                schema
                    .position(&p.column)
                    .map(|i| schema.columns[i].ty.result_type())
                    .unwrap_or(ResultType::String)
            }
        }
        Expr::CountStar | Expr::Weight => ResultType::LongLong,
        _ => ResultType::String,
    }
}

/// Sorts with searchd's heap sorter and returns at most `want` matches, best first.
fn sort_matches<'a>(
    plan: &Plan,
    schema: &Schema,
    matches: Vec<Match<'a>>,
    want: usize,
) -> Vec<Match<'a>> {
    let keys = &plan.select.order_by;
    let cmp = |a: &Match, b: &Match| -> Ordering {
        for k in keys {
            let va = sort_value(&k.expr, schema, a);
            let vb = sort_value(&k.expr, schema, b);
            let ord = scalar_cmp(&va, &vb);
            let ord = if k.desc { ord } else { ord.reverse() };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        if keys.is_empty() && a.weight != b.weight {
            return a.weight.cmp(&b.weight);
        }
        b.rowid.cmp(&a.rowid)
    };
    let mut q = TopN::new(want, cmp);
    for m in matches {
        q.push(m);
    }
    q.into_sorted()
}

fn sort_value(e: &Expr, schema: &Schema, m: &Match) -> Scalar {
    match e {
        Expr::Weight => Scalar::Int(m.weight),
        Expr::Path(p) => resolve(
            p,
            &RowCtx {
                schema,
                row: &m.row,
                weight: m.weight,
            },
        ),
        _ => Scalar::Null,
    }
}

pub fn scalar_cmp(a: &Scalar, b: &Scalar) -> Ordering {
    match (a, b) {
        (Scalar::Int(x), Scalar::Int(y)) => x.cmp(y),
        (Scalar::Int(x), Scalar::Float(y)) => (*x as f64).partial_cmp(y).unwrap_or(Ordering::Equal),
        (Scalar::Float(x), Scalar::Int(y)) => {
            x.partial_cmp(&(*y as f64)).unwrap_or(Ordering::Equal)
        }
        (Scalar::Float(x), Scalar::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        (Scalar::Str(x), Scalar::Str(y)) => ci_cmp(x, y),
        (Scalar::Null, Scalar::Null) => Ordering::Equal,
        (Scalar::Null, _) => Ordering::Less,
        (_, Scalar::Null) => Ordering::Greater,
        (Scalar::Json(x), Scalar::Json(y)) => x.to_string().cmp(&y.to_string()),
        (Scalar::Mva(x), Scalar::Mva(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

/// GROUP BY one column with COUNT(*): groups in key order unless ORDER BY says otherwise.
fn grouped(plan: &Plan, schema: &Schema, key: &Path, matches: Vec<Match>) -> ExecResult<ResultSet> {
    let select = plan.select;
    let mut groups: Vec<(Scalar, u64, Match)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for m in matches {
        let k = resolve(
            key,
            &RowCtx {
                schema,
                row: &m.row,
                weight: m.weight,
            },
        );
        let token = format!("{k:?}");
        match index.get(&token) {
            Some(&i) => groups[i].1 += 1,
            None => {
                index.insert(token, groups.len());
                groups.push((k, 1, m));
            }
        }
    }
    let total_found = groups.len() as u64;
    // Sort keys may name an output alias (`ORDER BY cnt`), the grouped column, or COUNT(*).
    let alias_of_count: Vec<&str> = select
        .items
        .iter()
        .filter_map(|i| match i {
            SelectItem::Expr {
                expr: Expr::CountStar,
                header,
            } => Some(header.as_str()),
            _ => None,
        })
        .collect();
    let order = &select.order_by;
    groups.sort_by(|a, b| {
        for k in order {
            let (va, vb) = match &k.expr {
                Expr::CountStar => (Scalar::Int(a.1 as i64), Scalar::Int(b.1 as i64)),
                Expr::Path(p)
                    if p.steps.is_empty()
                        && alias_of_count
                            .iter()
                            .any(|al| al.eq_ignore_ascii_case(&p.column)) =>
                {
                    (Scalar::Int(a.1 as i64), Scalar::Int(b.1 as i64))
                }
                e => (sort_value(e, schema, &a.2), sort_value(e, schema, &b.2)),
            };
            let ord = scalar_cmp(&va, &vb);
            let ord = if k.desc { ord.reverse() } else { ord };
            if ord != Ordering::Equal {
                return ord;
            }
        }
        if order.is_empty() {
            scalar_cmp(&a.0, &b.0)
        } else {
            Ordering::Equal
        }
    });
    let mut rs = ResultSet::default();
    let mut types: Vec<ResultType> = Vec::new();
    for (_, count, m) in groups
        .iter()
        .skip(select.offset as usize)
        .take(plan.window()?.saturating_sub(select.offset) as usize)
    {
        let ctx = RowCtx {
            schema,
            row: &m.row,
            weight: m.weight,
        };
        let mut row = Vec::new();
        types.clear();
        for item in &select.items {
            let (ty, cell) = match item {
                SelectItem::Expr {
                    expr: Expr::CountStar,
                    ..
                } => (ResultType::LongLong, Cell::Int(*count as i64)),
                SelectItem::Expr { expr, .. } => project(expr, &ctx),
                SelectItem::Star => {
                    return Err(ExecError::new("SELECT * cannot be combined with GROUP BY"))
                }
            };
            types.push(ty);
            row.push(cell);
        }
        rs.rows.push(row);
    }
    rs.columns = select
        .items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| match item {
            SelectItem::Expr { header, expr } => Some(ResultColumn {
                name: header.clone(),
                ty: types
                    .get(i)
                    .copied()
                    .unwrap_or_else(|| static_type(expr, schema)),
            }),
            SelectItem::Star => None,
        })
        .collect();
    rs.total_found = total_found;
    Ok(rs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ast::Statement;

    fn window(sql: &str) -> Result<u64, String> {
        let Ok(Statement::Select(select)) = crate::sql::parse(sql) else {
            panic!("{sql}")
        };
        Plan::new(&select).window().map_err(|e| e.message)
    }

    #[test]
    fn result_window_follows_limit_and_max_matches() {
        for (sql, want) in [
            ("SELECT * FROM t", Ok(20)),
            ("SELECT * FROM t LIMIT 5", Ok(5)),
            ("SELECT * FROM t LIMIT 10, 5", Ok(15)),
            ("SELECT * FROM t LIMIT 1500", Ok(1000)),
            ("SELECT * FROM t LIMIT 990, 20", Ok(1000)),
            ("SELECT * FROM t LIMIT 1500 OPTION max_matches=100", Ok(100)),
            (
                "SELECT * FROM t LIMIT 5000 OPTION max_matches=5000",
                Ok(5000),
            ),
            (
                "SELECT * FROM t LIMIT 1000, 5",
                Err("offset out of bounds (offset=1000, max_matches=1000)".to_string()),
            ),
            (
                "SELECT * FROM t LIMIT 3 OPTION max_matches=0",
                Err("max_matches can not be less than one".to_string()),
            ),
        ] {
            assert_eq!(window(sql), want, "{sql}");
        }
    }
}
