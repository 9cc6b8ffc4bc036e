//! SphinxQL as far as the simulator speaks it: lexer, statement values and parsers.

pub mod ast;
mod ddl;
mod dml;
pub mod lexer;
mod parser;
pub mod render;
mod select;
mod show;

use ast::Statement;
use parser::{Grammar, Parser};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SqlError {
    /// The full searchd text, `Pnn:` prefix included.
    #[error("{0}")]
    Syntax(String),
}

/// Parses one statement (no trailing `;`).
pub fn parse(sql: &str) -> Result<Statement, SqlError> {
    let mut p = Parser::new(sql);
    let Some(first) = p.peek().cloned() else {
        return Err(SqlError::Syntax(
            "P01: syntax error, unexpected $end".to_string(),
        ));
    };
    let word = match first {
        lexer::Tok::Word(w) => w.to_ascii_lowercase(),
        _ => String::new(),
    };
    match word.as_str() {
        "select" => select::parse_select(&mut p).map(Statement::Select),
        "show" => show::parse_show(&mut p),
        "desc" | "describe" => show::parse_describe(&mut p),
        "create" | "drop" | "alter" => {
            p.grammar = Grammar::P03;
            ddl::parse_ddl(&mut p)
        }
        "join" => ddl::parse_join_cluster(&mut p),
        "insert" | "replace" => dml::parse_insert(&mut p),
        "update" => dml::parse_update(&mut p),
        "delete" => dml::parse_delete(&mut p),
        "truncate" | "flush" | "optimize" => show::parse_maintenance(&mut p),
        "set" => show::parse_set(&mut p),
        "begin" | "commit" | "rollback" | "start" => Ok(Statement::Transaction),
        _ => {
            p.grammar = Grammar::P02;
            Err(p.unexpected(None))
        }
    }
}

#[cfg(test)]
mod tests;
