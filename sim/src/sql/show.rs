//! SHOW, DESC, SET and the maintenance statements (TRUNCATE, FLUSH RAMCHUNK, OPTIMIZE).

use super::ast::Statement;
use super::ddl::parse_set_cluster;
use super::lexer::Tok;
use super::parser::Parser;
use super::SqlError;

pub fn parse_show(p: &mut Parser) -> Result<Statement, SqlError> {
    p.advance();
    if p.eat_word("global") || p.eat_word("session") {
        p.expect_word("variables")?;
        return finish(p, |like| Statement::ShowVariables { like });
    }
    let Some(Tok::Word(word)) = p.peek().cloned() else {
        return Err(p.unexpected(Some("VARIABLES")));
    };
    match word.to_ascii_lowercase().as_str() {
        "meta" => {
            p.advance();
            p.expect_end()?;
            Ok(Statement::ShowMeta)
        }
        "settings" => {
            p.advance();
            p.expect_end()?;
            Ok(Statement::ShowSettings)
        }
        "variables" => {
            p.advance();
            finish(p, |like| Statement::ShowVariables { like })
        }
        "status" => {
            p.advance();
            finish(p, |like| Statement::ShowStatus { like })
        }
        "tables" => {
            p.advance();
            let system = if p.eat_word("from") {
                let db = p.ident()?;
                if !db.eq_ignore_ascii_case("system") {
                    return Err(p.plain_error(&format!("unknown database '{db}'")));
                }
                true
            } else {
                false
            };
            finish(p, |like| Statement::ShowTables { system, like })
        }
        "create" => {
            p.advance();
            p.expect_word("table")?;
            let name = p.ident()?;
            let force = p.option_flag("force")?;
            p.expect_end()?;
            Ok(Statement::ShowCreateTable { name, force })
        }
        "table" => {
            p.advance();
            let name = p.table_ref()?.name;
            if p.eat_word("status") {
                p.expect_end()?;
                Ok(Statement::ShowTableStatus { name })
            } else if p.eat_word("settings") {
                p.expect_end()?;
                Ok(Statement::ShowTableSettings { name })
            } else {
                Err(p.unexpected(None))
            }
        }
        _ => Err(p.unexpected(Some("VARIABLES"))),
    }
}

/// Optional `LIKE '<pattern>'`, then end of statement.
fn finish(
    p: &mut Parser,
    make: impl FnOnce(Option<String>) -> Statement,
) -> Result<Statement, SqlError> {
    let like = if p.eat_word("like") {
        Some(p.string_lit()?)
    } else {
        None
    };
    p.expect_end()?;
    Ok(make(like))
}

pub fn parse_describe(p: &mut Parser) -> Result<Statement, SqlError> {
    p.advance();
    let name = p.table_ref()?.name;
    // `force=1` changes nothing a client can see here; `topology=1` lists targets.
    let topology = p.eat_word("option")
        && p.option_list()?
            .iter()
            .any(|(k, v)| k == "topology" && v != "0");
    p.expect_end()?;
    Ok(Statement::Describe { name, topology })
}

pub fn parse_maintenance(p: &mut Parser) -> Result<Statement, SqlError> {
    let verb = p.ident()?.to_ascii_lowercase();
    match verb.as_str() {
        "truncate" => {
            p.expect_word("table")?;
            let table = p.table_ref()?;
            let reconfigure = if p.eat_word("with") {
                p.expect_word("reconfigure")?;
                true
            } else {
                false
            };
            p.expect_end()?;
            Ok(Statement::Truncate { table, reconfigure })
        }
        "flush" => {
            p.expect_word("ramchunk")?;
            let table = p.table_ref()?.name;
            p.expect_end()?;
            Ok(Statement::FlushRamchunk { table })
        }
        _ => {
            p.expect_word("table")?;
            let table = p.table_ref()?.name;
            let sync = p.option_flag("sync")?;
            p.expect_end()?;
            Ok(Statement::Optimize { table, sync })
        }
    }
}

pub fn parse_set(p: &mut Parser) -> Result<Statement, SqlError> {
    p.advance();
    if p.is_word("cluster") {
        return parse_set_cluster(p);
    }
    if p.eat_word("global") {
        let name = match p.advance() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) | Some(Tok::SysVar(w)) => {
                w.to_ascii_lowercase()
            }
            _ => return Err(p.unexpected(None)),
        };
        p.expect_punct("=")?;
        let value = match p.advance() {
            Some(Tok::Word(w)) | Some(Tok::Str(w)) | Some(Tok::Quoted(w)) => w,
            Some(Tok::Int(v)) => v.to_string(),
            Some(Tok::Float(v)) => v.to_string(),
            _ => return Err(p.unexpected(None)),
        };
        p.expect_end()?;
        return Ok(Statement::SetGlobal { name, value });
    }
    // Session variables, `SET NAMES utf8`, `SET autocommit=0`: accepted without effect.
    while p.advance().is_some() {}
    Ok(Statement::SetSession)
}
