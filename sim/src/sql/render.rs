//! Renders statement values back to SphinxQL, for queries sent to agents (other nodes).

use std::fmt::{self, Display, Formatter, Write};

use super::ast::{Expr, Literal, Path, PathStep};

/// Quotes a string literal the way the lexer reads it back.
pub fn quote_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Back-quotes an identifier (always safe, also for reserved words such as `key`).
pub fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', ""))
}

/// A table name for generated SQL: `` `t` `` or ``system.`t` ``.
pub fn quote_table(name: &str) -> String {
    match name.strip_prefix("system.") {
        Some(rest) => format!("system.{}", quote_ident(rest)),
        None => quote_ident(name),
    }
}

impl Display for Literal {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Int(v) => write!(f, "{v}"),
            Literal::UInt(v) => write!(f, "{v}"),
            Literal::Float(v) => write!(f, "{v}"),
            Literal::Str(s) => f.write_str(&quote_str(s)),
            Literal::Null => f.write_str("NULL"),
            Literal::Mva(values) => {
                f.write_char('(')?;
                for (i, v) in values.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(')')
            }
        }
    }
}

impl Display for Path {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        f.write_str(&quote_ident(&self.column))?;
        for step in &self.steps {
            match step {
                PathStep::Key(k) => write!(f, ".{k}")?,
                PathStep::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Path(p) => write!(f, "{p}"),
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::CountStar => f.write_str("COUNT(*)"),
            Expr::Weight => f.write_str("WEIGHT()"),
            Expr::SysVar(name) => write!(f, "@@{name}"),
            Expr::Cmp { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.sql()),
            Expr::In {
                expr,
                list,
                negated,
            } => {
                write!(f, "{expr} {}IN (", if *negated { "NOT " } else { "" })?;
                for (i, v) in list.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(')')
            }
            Expr::And(parts) => join(f, parts, " AND "),
            Expr::Or(parts) => join(f, parts, " OR "),
            Expr::Not(inner) => write!(f, "NOT ({inner})"),
            Expr::Regex { expr, pattern } => write!(f, "REGEX({expr}, {})", quote_str(pattern)),
            Expr::Match(q) => write!(f, "MATCH({})", quote_str(q)),
        }
    }
}

fn join(f: &mut Formatter<'_>, parts: &[Expr], sep: &str) -> fmt::Result {
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            f.write_str(sep)?;
        }
        write!(f, "({p})")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ast::Statement;

    #[test]
    fn rendered_conditions_parse_back_to_the_same_value() {
        for cond in [
            "`s` = 'it\\'s \\\\ ok'",
            "(`id` > 5) AND (`n` IN (1, 2, 3))",
            "(`f` < 0.25) OR (NOT (`m` = 7))",
            "REGEX(`k`, '^node:') AND MATCH('@title x*')",
            "`j`.a[2] != -4",
        ] {
            let parse =
                |text: &str| match crate::sql::parse(&format!("SELECT * FROM t WHERE {text}"))
                    .unwrap()
                {
                    Statement::Select(s) => s.filter.unwrap(),
                    _ => unreachable!(),
                };
            let first = parse(cond);
            assert_eq!(parse(&first.to_string()), first, "{cond} → {first}");
        }
        assert_eq!(quote_table("system.t_s0"), "system.`t_s0`");
        assert_eq!(quote_str("a'b\\c"), "'a\\'b\\\\c'");
    }
}
