//! SELECT and the condition grammar shared with UPDATE/DELETE.

use super::ast::{CmpOp, Expr, Literal, OrderKey, Path, PathStep, Select, SelectItem};
use super::lexer::Tok;
use super::parser::Parser;
use super::SqlError;

pub fn parse_select(p: &mut Parser) -> Result<Select, SqlError> {
    p.advance();
    let mut items = Vec::new();
    loop {
        items.push(parse_item(p)?);
        if !p.eat_punct(",") {
            break;
        }
    }
    let mut select = Select {
        items,
        from: None,
        filter: None,
        group_by: None,
        order_by: Vec::new(),
        offset: 0,
        limit: None,
        options: Vec::new(),
    };
    if p.eat_word("from") {
        select.from = Some(p.table_ref()?);
        select.filter = parse_where(p)?;
        if p.eat_word("group") {
            p.expect_word("by")?;
            select.group_by = Some(parse_path(p)?);
        }
        if p.eat_word("order") {
            p.expect_word("by")?;
            loop {
                let expr = parse_operand(p)?;
                let desc = if p.eat_word("desc") {
                    true
                } else {
                    p.eat_word("asc");
                    false
                };
                select.order_by.push(OrderKey { expr, desc });
                if !p.eat_punct(",") {
                    break;
                }
            }
        }
    }
    if p.eat_word("limit") {
        let first = parse_count(p)?;
        if p.eat_punct(",") {
            select.offset = first;
            select.limit = Some(parse_count(p)?);
        } else if p.eat_word("offset") {
            select.limit = Some(first);
            select.offset = parse_count(p)?;
        } else {
            select.limit = Some(first);
        }
    }
    if p.eat_word("option") {
        select.options = p.option_list()?;
    }
    p.expect_end()?;
    Ok(select)
}

fn parse_count(p: &mut Parser) -> Result<u64, SqlError> {
    match p.peek() {
        Some(Tok::Int(v)) if *v >= 0 => {
            let v = *v as u64;
            p.advance();
            Ok(v)
        }
        _ => Err(p.unexpected(None)),
    }
}

fn parse_item(p: &mut Parser) -> Result<SelectItem, SqlError> {
    if p.eat_punct("*") {
        return Ok(SelectItem::Star);
    }
    let start = p.offset();
    let expr = parse_operand(p)?;
    // searchd names a column after the expression as written, without identifier quotes.
    let text = p.sql[start..p.prev_end()].trim().replace('`', "");
    let header = if p.eat_word("as") {
        p.ident()?
    } else {
        match &expr {
            Expr::CountStar => "count(*)".to_string(),
            Expr::Weight => "weight()".to_string(),
            _ => text,
        }
    };
    Ok(SelectItem::Expr { expr, header })
}

pub fn parse_where(p: &mut Parser) -> Result<Option<Expr>, SqlError> {
    if p.eat_word("where") {
        Ok(Some(parse_or(p)?))
    } else {
        Ok(None)
    }
}

fn parse_or(p: &mut Parser) -> Result<Expr, SqlError> {
    let mut parts = vec![parse_and(p)?];
    while p.eat_word("or") {
        parts.push(parse_and(p)?);
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        Expr::Or(parts)
    })
}

fn parse_and(p: &mut Parser) -> Result<Expr, SqlError> {
    let mut parts = vec![parse_not(p)?];
    while p.eat_word("and") {
        parts.push(parse_not(p)?);
    }
    Ok(if parts.len() == 1 {
        parts.remove(0)
    } else {
        Expr::And(parts)
    })
}

fn parse_not(p: &mut Parser) -> Result<Expr, SqlError> {
    if p.eat_word("not") {
        return Ok(Expr::Not(Box::new(parse_not(p)?)));
    }
    if p.eat_punct("(") {
        let inner = parse_or(p)?;
        p.expect_punct(")")?;
        return Ok(inner);
    }
    parse_predicate(p)
}

fn parse_predicate(p: &mut Parser) -> Result<Expr, SqlError> {
    if p.is_word("match") && matches!(p.peek_at(1), Some(Tok::Punct("("))) {
        p.advance();
        p.advance();
        let query = p.string_lit()?;
        p.expect_punct(")")?;
        return Ok(Expr::Match(query));
    }
    if p.is_word("regex") && matches!(p.peek_at(1), Some(Tok::Punct("("))) {
        p.advance();
        p.advance();
        let expr = parse_operand(p)?;
        p.expect_punct(",")?;
        let pattern = p.string_lit()?;
        p.expect_punct(")")?;
        return Ok(Expr::Regex {
            expr: Box::new(expr),
            pattern,
        });
    }
    let lhs = parse_operand(p)?;
    let negated = p.eat_word("not");
    if p.eat_word("in") {
        p.expect_punct("(")?;
        let mut list = Vec::new();
        if !p.eat_punct(")") {
            loop {
                list.push(p.literal()?);
                if p.eat_punct(")") {
                    break;
                }
                p.expect_punct(",")?;
            }
        }
        return Ok(Expr::In {
            expr: Box::new(lhs),
            list,
            negated,
        });
    }
    if negated {
        return Err(p.unexpected(Some("IN")));
    }
    let op = match p.peek() {
        Some(Tok::Punct("=")) => CmpOp::Eq,
        Some(Tok::Punct("!=")) | Some(Tok::Punct("<>")) => CmpOp::Ne,
        Some(Tok::Punct("<")) => CmpOp::Lt,
        Some(Tok::Punct("<=")) => CmpOp::Le,
        Some(Tok::Punct(">")) => CmpOp::Gt,
        Some(Tok::Punct(">=")) => CmpOp::Ge,
        _ => return Err(p.unexpected(None)),
    };
    p.advance();
    let rhs = parse_operand(p)?;
    Ok(Expr::Cmp {
        op,
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    })
}

/// A value-producing expression: path, literal, `COUNT(*)`, `WEIGHT()`, `@@var`.
fn parse_operand(p: &mut Parser) -> Result<Expr, SqlError> {
    if p.is_word("count") && matches!(p.peek_at(1), Some(Tok::Punct("("))) {
        p.advance();
        p.advance();
        p.expect_punct("*")?;
        p.expect_punct(")")?;
        return Ok(Expr::CountStar);
    }
    if p.is_word("weight") && matches!(p.peek_at(1), Some(Tok::Punct("("))) {
        p.advance();
        p.advance();
        p.expect_punct(")")?;
        return Ok(Expr::Weight);
    }
    match p.peek().cloned() {
        Some(Tok::SysVar(name)) => {
            p.advance();
            Ok(Expr::SysVar(name))
        }
        Some(Tok::Word(w)) if !w.eq_ignore_ascii_case("null") => Ok(Expr::Path(parse_path(p)?)),
        Some(Tok::Quoted(_)) => Ok(Expr::Path(parse_path(p)?)),
        _ => Ok(Expr::Literal(p.literal()?)),
    }
}

fn parse_path(p: &mut Parser) -> Result<Path, SqlError> {
    let column = p.ident()?;
    let mut steps = Vec::new();
    loop {
        if p.eat_punct(".") {
            steps.push(PathStep::Key(p.ident()?));
        } else if p.eat_punct("[") {
            match p.literal()? {
                Literal::Int(i) if i >= 0 => steps.push(PathStep::Index(i as usize)),
                Literal::Str(key) => steps.push(PathStep::Key(key)),
                _ => return Err(p.unexpected(None)),
            }
            p.expect_punct("]")?;
        } else {
            return Ok(Path { column, steps });
        }
    }
}
