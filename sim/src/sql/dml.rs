//! INSERT / REPLACE / UPDATE / DELETE.

use super::ast::{Delete, Insert, Statement, Update};
use super::parser::Parser;
use super::select::parse_where;
use super::SqlError;

pub fn parse_insert(p: &mut Parser) -> Result<Statement, SqlError> {
    let replace = p.ident()?.eq_ignore_ascii_case("replace");
    p.expect_word("into")?;
    let table = p.table_ref()?;
    let mut columns = Vec::new();
    if p.eat_punct("(") {
        loop {
            columns.push(p.ident()?);
            if p.eat_punct(")") {
                break;
            }
            p.expect_punct(",")?;
        }
    }
    p.expect_word("values")?;
    let mut rows = Vec::new();
    loop {
        p.expect_punct("(")?;
        let mut row = Vec::new();
        if !p.eat_punct(")") {
            loop {
                row.push(p.literal()?);
                if p.eat_punct(")") {
                    break;
                }
                p.expect_punct(",")?;
            }
        }
        rows.push(row);
        if !p.eat_punct(",") {
            break;
        }
    }
    p.expect_end()?;
    Ok(Statement::Insert(Insert {
        replace,
        table,
        columns,
        rows,
    }))
}

pub fn parse_update(p: &mut Parser) -> Result<Statement, SqlError> {
    p.advance();
    let table = p.table_ref()?;
    p.expect_word("set")?;
    let mut sets = Vec::new();
    loop {
        let col = p.ident()?;
        p.expect_punct("=")?;
        sets.push((col, p.literal()?));
        if !p.eat_punct(",") {
            break;
        }
    }
    let filter = parse_where(p)?;
    p.expect_end()?;
    Ok(Statement::Update(Update {
        table,
        sets,
        filter,
    }))
}

pub fn parse_delete(p: &mut Parser) -> Result<Statement, SqlError> {
    p.advance();
    if p.is_word("cluster") {
        return super::ddl::parse_delete_cluster(p);
    }
    p.expect_word("from")?;
    let table = p.table_ref()?;
    let filter = parse_where(p)?;
    p.expect_end()?;
    Ok(Statement::Delete(Delete { table, filter }))
}
