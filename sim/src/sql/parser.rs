//! Token cursor and searchd-style syntax errors.
//!
//! A hand-written recursive-descent parser is used instead of nom or sqlparser because the error
//! texts must match searchd's bison parsers token for token (`P03: syntax error, unexpected
//! string, expecting '=' near ''5' rf '1''`), which needs the offending token's kind and offset.

use super::ast::{Literal, TableRef};
use super::lexer::{tokenize, Tok, Token};
use super::SqlError;

/// Which of searchd's parsers the statement belongs to (the `Pnn:` prefix of its errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grammar {
    /// The main SphinxQL grammar.
    P01,
    /// The fallback grammar that reports unknown statements.
    P02,
    /// The DDL grammar (CREATE/DROP/ALTER TABLE, CREATE CLUSTER).
    P03,
}

impl Grammar {
    fn prefix(self) -> &'static str {
        match self {
            Grammar::P01 => "P01",
            Grammar::P02 => "P02",
            Grammar::P03 => "P03",
        }
    }
}

pub struct Parser<'a> {
    pub sql: &'a str,
    toks: Vec<Token>,
    pos: usize,
    pub grammar: Grammar,
}

impl<'a> Parser<'a> {
    pub fn new(sql: &'a str) -> Parser<'a> {
        Parser {
            sql,
            toks: tokenize(sql),
            pos: 0,
            grammar: Grammar::P01,
        }
    }

    pub fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }

    pub fn peek_at(&self, ahead: usize) -> Option<&Tok> {
        self.toks.get(self.pos + ahead).map(|t| &t.tok)
    }

    pub fn at_end(&self) -> bool {
        self.pos >= self.toks.len()
    }

    pub fn advance(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).map(|t| t.tok.clone());
        if t.is_some() {
            self.pos += 1;
        }
        t
    }

    /// Byte offset of the current token (or the end of the text).
    pub fn offset(&self) -> usize {
        self.toks
            .get(self.pos)
            .map(|t| t.start)
            .unwrap_or(self.sql.len())
    }

    /// Byte offset where the previous token ended.
    pub fn prev_end(&self) -> usize {
        if self.pos == 0 {
            0
        } else {
            self.toks[self.pos - 1].end
        }
    }

    pub fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    pub fn eat_word(&mut self, word: &str) -> bool {
        if self.is_word(word) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Tok::Punct(q)) if *q == p)
    }

    pub fn eat_punct(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect_word(&mut self, word: &str) -> Result<(), SqlError> {
        if self.eat_word(word) {
            Ok(())
        } else {
            Err(self.unexpected(Some(&word.to_ascii_uppercase())))
        }
    }

    pub fn expect_punct(&mut self, p: &str) -> Result<(), SqlError> {
        if self.eat_punct(p) {
            Ok(())
        } else {
            Err(self.unexpected(Some(&format!("'{p}'"))))
        }
    }

    pub fn expect_end(&mut self) -> Result<(), SqlError> {
        if self.at_end() {
            Ok(())
        } else {
            Err(self.unexpected(Some("$end")))
        }
    }

    /// An identifier: a bare word or a back-quoted name.
    pub fn ident(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Tok::Word(w)) | Some(Tok::Quoted(w)) => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            _ => Err(self.unexpected(None)),
        }
    }

    /// A table name for DDL: `name` or `system.name` (the only database searchd allows).
    pub fn ddl_table_name(&mut self) -> Result<String, SqlError> {
        let first = self.ident()?;
        if !self.is_punct(".") {
            return Ok(first);
        }
        self.pos += 1;
        let near_from = self.offset();
        if !first.eq_ignore_ascii_case("system") {
            return Err(self.error_at(
                &format!("unexpected db '{first}', only 'system' allowed"),
                near_from,
            ));
        }
        let rest = self.ident()?;
        Ok(format!("system.{rest}"))
    }

    /// `[cluster:]name` or `[cluster:]system.name`, as the DML grammar accepts it.
    pub fn table_ref(&mut self) -> Result<TableRef, SqlError> {
        let first = self.ident()?;
        let (cluster, name) = if self.eat_punct(":") {
            (Some(first), self.ident()?)
        } else {
            (None, first)
        };
        let name = if self.is_punct(".") && name.eq_ignore_ascii_case("system") {
            self.pos += 1;
            format!("system.{}", self.ident()?)
        } else {
            name
        };
        Ok(TableRef { cluster, name })
    }

    pub fn string_lit(&mut self) -> Result<String, SqlError> {
        match self.peek() {
            Some(Tok::Str(s)) => {
                let s = s.clone();
                self.pos += 1;
                Ok(s)
            }
            _ => Err(self.unexpected(Some("string"))),
        }
    }

    /// A literal value: number (with optional sign), string, `NULL`, or an MVA list `(1,2)`.
    pub fn literal(&mut self) -> Result<Literal, SqlError> {
        let negative = self.eat_punct("-");
        if !negative {
            self.eat_punct("+");
        }
        let lit = match self.peek().cloned() {
            Some(Tok::Int(v)) => Literal::Int(if negative { -v } else { v }),
            Some(Tok::BigInt(text)) if !negative => match text.parse::<u64>() {
                Ok(v) => Literal::UInt(v),
                Err(_) => return Err(self.unexpected(None)),
            },
            Some(Tok::Float(v)) => Literal::Float(if negative { -v } else { v }),
            Some(Tok::Str(s)) if !negative => Literal::Str(s),
            Some(Tok::Word(w)) if !negative && w.eq_ignore_ascii_case("null") => Literal::Null,
            Some(Tok::Punct("(")) if !negative => {
                self.pos += 1;
                let mut values = Vec::new();
                if !self.eat_punct(")") {
                    loop {
                        match self.literal()? {
                            Literal::Int(v) => values.push(v),
                            Literal::UInt(v) => values.push(v as i64),
                            _ => return Err(self.unexpected(None)),
                        }
                        if self.eat_punct(")") {
                            break;
                        }
                        self.expect_punct(",")?;
                    }
                }
                return Ok(Literal::Mva(values));
            }
            _ => return Err(self.unexpected(None)),
        };
        self.pos += 1;
        Ok(lit)
    }

    /// `key = value [, …]` after `OPTION`; values as written (numbers, words or strings).
    pub fn option_list(&mut self) -> Result<Vec<(String, String)>, SqlError> {
        let mut options = Vec::new();
        loop {
            let key = self.ident()?.to_ascii_lowercase();
            self.expect_punct("=")?;
            let value = match self.advance() {
                Some(Tok::Word(w)) | Some(Tok::Str(w)) | Some(Tok::Quoted(w)) => w,
                Some(Tok::Int(v)) => v.to_string(),
                Some(Tok::Float(v)) => v.to_string(),
                _ => return Err(self.unexpected(None)),
            };
            options.push((key, value));
            if !self.eat_punct(",") {
                return Ok(options);
            }
        }
    }

    /// Whether an optional `OPTION …` clause sets `key` to a non-zero value.
    pub fn option_flag(&mut self, key: &str) -> Result<bool, SqlError> {
        if !self.eat_word("option") {
            return Ok(false);
        }
        Ok(self
            .option_list()?
            .iter()
            .any(|(k, v)| k == key && v != "0"))
    }

    /// bison's name for the current token, as searchd prints it after `unexpected`.
    pub fn token_name(&self) -> String {
        match self.peek() {
            None => "$end".to_string(),
            Some(Tok::Word(w)) => keyword_name(self.grammar, w),
            Some(Tok::Quoted(_)) => "identifier".to_string(),
            Some(Tok::Int(_)) | Some(Tok::BigInt(_)) => "integer".to_string(),
            Some(Tok::Float(_)) => "float".to_string(),
            Some(Tok::Str(_)) => "string".to_string(),
            Some(Tok::DoubleQuoted(_)) | Some(Tok::Undefined) => "$undefined".to_string(),
            Some(Tok::SysVar(_)) => "SYSVAR".to_string(),
            Some(Tok::Punct(".")) if self.grammar == Grammar::P01 => "SUBKEY".to_string(),
            Some(Tok::Punct(":")) => "invalid token".to_string(),
            Some(Tok::Punct(p)) => format!("'{p}'"),
        }
    }

    /// `syntax error, unexpected <tok>[, expecting <what>] near '<rest>'`.
    pub fn unexpected(&self, expecting: Option<&str>) -> SqlError {
        let mut msg = format!("syntax error, unexpected {}", self.token_name());
        if let Some(e) = expecting {
            msg.push_str(", expecting ");
            msg.push_str(e);
        }
        self.error_at(&msg, self.near_offset())
    }

    /// Where `near '…'` starts: the current token, or the last one when the input is exhausted.
    fn near_offset(&self) -> usize {
        if self.at_end() {
            self.toks.last().map(|t| t.start).unwrap_or(0)
        } else {
            self.offset()
        }
    }

    pub fn error_at(&self, message: &str, near_from: usize) -> SqlError {
        let near = self.sql.get(near_from..).unwrap_or("");
        SqlError::Syntax(format!(
            "{}: {} near '{}'",
            self.grammar.prefix(),
            message,
            near
        ))
    }

    /// Error text without the `near` part (used for semantic errors found while parsing).
    pub fn plain_error(&self, message: &str) -> SqlError {
        SqlError::Syntax(format!("{}: {}", self.grammar.prefix(), message))
    }
}

/// Words a grammar knows as tokens print in upper case; any other word is an `identifier`
/// (P01, P02) or a `tablename` (the DDL grammar P03: `unexpected tablename, expecting COLUMN
/// near 'local=…'`, `rebalance.131`).
fn keyword_name(grammar: Grammar, word: &str) -> String {
    const DDL_KEYWORDS: &[&str] = &[
        "IF", "NOT", "EXISTS", "TABLE", "CLUSTER", "LIKE", "ADD", "DROP", "COLUMN",
    ];
    /// Main-grammar tokens the recordings show (`unexpected CLUSTER`, `unexpected OR`) and the
    /// other boolean operators of its WHERE clause.
    const MAIN_KEYWORDS: &[&str] = &["CLUSTER", "OR", "AND", "NOT"];
    let upper = word.to_ascii_uppercase();
    match grammar {
        Grammar::P03 if DDL_KEYWORDS.contains(&upper.as_str()) => upper,
        Grammar::P03 => "tablename".to_string(),
        Grammar::P01 if MAIN_KEYWORDS.contains(&upper.as_str()) => upper,
        _ => "identifier".to_string(),
    }
}
