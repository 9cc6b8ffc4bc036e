//! CREATE / DROP / ALTER (tables and clusters) and JOIN CLUSTER.

use super::ast::{ClusterStmt, ColumnSpec, CreateTable, Statement};
use super::lexer::Tok;
use super::parser::Parser;
use super::SqlError;

/// Column types searchd's DDL grammar knows.
const COLUMN_TYPES: &[&str] = &[
    "text",
    "string",
    "integer",
    "int",
    "uint",
    "bigint",
    "float",
    "bool",
    "timestamp",
    "multi",
    "multi64",
    "json",
    "float_vector",
];

pub fn parse_ddl(p: &mut Parser) -> Result<Statement, SqlError> {
    let verb = p.ident()?.to_ascii_lowercase();
    match verb.as_str() {
        "create" if p.is_word("cluster") => parse_create_cluster(p),
        "create" if p.is_word("table") => parse_create_table(p),
        "create" => {
            // Neither TABLE nor CLUSTER: the main grammar, which knows only CREATE USER,
            // reports it (`CREATE OR REPLACE TABLE` → `P01: … unexpected OR, expecting USER`).
            p.grammar = super::parser::Grammar::P01;
            Err(p.unexpected(Some("USER")))
        }
        "drop" => parse_drop_table(p),
        _ if p.is_word("cluster") => parse_alter_cluster(p),
        _ => parse_alter_table(p),
    }
}

fn parse_create_table(p: &mut Parser) -> Result<Statement, SqlError> {
    p.expect_word("table")?;
    let if_not_exists = if p.is_word("if") {
        p.advance();
        p.expect_word("not")?;
        p.expect_word("exists")?;
        true
    } else {
        false
    };
    let name = p.ddl_table_name()?;
    if p.eat_word("like") {
        let like = p.ddl_table_name()?;
        if !p.at_end() {
            let near = p.offset();
            return Err(p.error_at("syntax error, unexpected tablename, expecting $end", near));
        }
        return Ok(Statement::CreateTableLike {
            if_not_exists,
            name,
            like,
        });
    }
    reject_cluster_prefix(p)?;
    let columns = if p.eat_punct("(") {
        parse_columns(p)?
    } else {
        Vec::new()
    };
    let options = parse_options(p)?;
    Ok(Statement::CreateTable(CreateTable {
        if_not_exists,
        name,
        columns,
        options,
    }))
}

/// searchd's DDL grammar has no `cluster:` prefix; a `:` after the name is an invalid token.
fn reject_cluster_prefix(p: &Parser) -> Result<(), SqlError> {
    if p.is_punct(":") {
        return Err(p.unexpected(Some("$end")));
    }
    Ok(())
}

fn parse_columns(p: &mut Parser) -> Result<Vec<ColumnSpec>, SqlError> {
    let mut cols = Vec::new();
    if p.eat_punct(")") {
        return Ok(cols);
    }
    loop {
        cols.push(parse_column_spec(p)?);
        if p.eat_punct(")") {
            return Ok(cols);
        }
        p.expect_punct(",")?;
    }
}

fn parse_column_spec(p: &mut Parser) -> Result<ColumnSpec, SqlError> {
    let name = p.ident()?;
    let type_word = match p.peek() {
        Some(Tok::Word(w)) => {
            let w = w.to_ascii_lowercase();
            p.advance();
            if !COLUMN_TYPES.contains(&w.as_str()) {
                let near = p.offset();
                return Err(p.error_at(&format!("unknown column type '{w}'"), near));
            }
            w
        }
        // `(id)`: a column without a type, accepted for `id`
        Some(Tok::Punct(",")) | Some(Tok::Punct(")")) => String::new(),
        _ => return Err(p.unexpected(None)),
    };
    let mut flags = Vec::new();
    let mut props = Vec::new();
    while let Some(Tok::Word(w)) = p.peek() {
        let w = w.to_ascii_lowercase();
        p.advance();
        if p.eat_punct("=") {
            let value = match p.peek().cloned() {
                Some(Tok::Str(s)) => s,
                Some(Tok::Int(v)) => v.to_string(),
                _ => return Err(p.unexpected(Some("string"))),
            };
            p.advance();
            props.push((w, value));
        } else {
            flags.push(w);
        }
    }
    Ok(ColumnSpec {
        name,
        type_word,
        flags,
        props,
    })
}

/// `key='value' …` table options; the value must be a quoted string.
fn parse_options(p: &mut Parser) -> Result<Vec<(String, String)>, SqlError> {
    let mut options = Vec::new();
    while !p.at_end() {
        let key = match p.peek() {
            Some(Tok::Word(w)) => w.to_ascii_lowercase(),
            _ => return Err(p.unexpected(Some("$end"))),
        };
        p.advance();
        p.expect_punct("=")?;
        let value = p.string_lit()?;
        options.push((key, value));
    }
    Ok(options)
}

fn parse_drop_table(p: &mut Parser) -> Result<Statement, SqlError> {
    p.expect_word("table")?;
    let if_exists = if p.is_word("if") {
        p.advance();
        p.expect_word("exists")?;
        true
    } else {
        false
    };
    let name = p.ddl_table_name()?;
    reject_cluster_prefix(p)?;
    let force = p.option_flag("force")?;
    p.expect_end()?;
    Ok(Statement::DropTable {
        if_exists,
        name,
        force,
    })
}

fn parse_alter_table(p: &mut Parser) -> Result<Statement, SqlError> {
    p.expect_word("table")?;
    let name = p.ddl_table_name()?;
    reject_cluster_prefix(p)?;
    if p.at_end() {
        return Ok(Statement::AlterTable { name });
    }
    if p.eat_word("add") {
        p.expect_word("column")?;
        let column = parse_column_spec(p)?;
        p.expect_end()?;
        return Ok(Statement::AddColumn {
            table: name,
            column,
        });
    }
    if p.eat_word("drop") {
        p.expect_word("column")?;
        let column = p.ident()?;
        p.expect_end()?;
        return Ok(Statement::DropColumn {
            table: name,
            column,
        });
    }
    // `ALTER TABLE <t> key='value' …`: a settings change, which only an RT table takes
    // (`ALTER TABLE w type='shard' local='…'` → `table 'w' is not found, or not real-time`,
    // `rebalance.128`–`.135`); searchd applies such settings, the simulator keeps none.
    parse_options(p)?;
    Ok(Statement::AlterTable { name })
}

fn parse_create_cluster(p: &mut Parser) -> Result<Statement, SqlError> {
    p.expect_word("cluster")?;
    if p.is_word("if") {
        return Err(p.unexpected(None));
    }
    let name = p.ident()?;
    let path = parse_cluster_path(p)?;
    p.expect_end()?;
    Ok(Statement::Cluster(ClusterStmt::Create { name, path }))
}

/// Optional `'<value>' as path` clauses (`as nodes` is accepted and ignored).
fn parse_cluster_path(p: &mut Parser) -> Result<Option<String>, SqlError> {
    let mut path = None;
    while let Some(Tok::Str(value)) = p.peek().cloned() {
        p.advance();
        p.expect_word("as")?;
        let what = p.ident()?.to_ascii_lowercase();
        if what == "path" {
            path = Some(value);
        }
    }
    Ok(path)
}

fn parse_alter_cluster(p: &mut Parser) -> Result<Statement, SqlError> {
    p.expect_word("cluster")?;
    let name = p.ident()?;
    let action = p.ident()?.to_ascii_lowercase();
    let stmt = match action.as_str() {
        "add" | "drop" => {
            let mut tables = vec![p.ddl_table_name()?];
            while p.eat_punct(",") {
                tables.push(p.ddl_table_name()?);
            }
            if action == "add" {
                ClusterStmt::AlterAdd { name, tables }
            } else {
                ClusterStmt::AlterDrop { name, tables }
            }
        }
        "update" => {
            p.expect_word("nodes")?;
            ClusterStmt::AlterUpdateNodes { name }
        }
        _ => return Err(p.unexpected(None)),
    };
    p.expect_end()?;
    Ok(Statement::Cluster(stmt))
}

pub fn parse_join_cluster(p: &mut Parser) -> Result<Statement, SqlError> {
    p.advance();
    p.expect_word("cluster")?;
    let name = p.ident()?;
    p.expect_word("at")?;
    let at = p.string_lit()?;
    let path = parse_cluster_path(p)?;
    p.expect_end()?;
    Ok(Statement::Cluster(ClusterStmt::Join { name, at, path }))
}

/// `DELETE CLUSTER <name>`; called by the DELETE parser.
pub fn parse_delete_cluster(p: &mut Parser) -> Result<Statement, SqlError> {
    p.expect_word("cluster")?;
    let name = p.ident()?;
    p.expect_end()?;
    Ok(Statement::Cluster(ClusterStmt::Delete { name }))
}

/// `SET CLUSTER <name> GLOBAL '<var>' = <value>`; called by the SET parser.
pub fn parse_set_cluster(p: &mut Parser) -> Result<Statement, SqlError> {
    p.expect_word("cluster")?;
    let name = p.ident()?;
    p.expect_word("global")?;
    let var = p.string_lit()?;
    p.expect_punct("=")?;
    let value = p.literal()?;
    p.expect_end()?;
    Ok(Statement::Cluster(ClusterStmt::Set { name, var, value }))
}
