//! nom over tokens: the token slice as a nom [`Input`], the primitive
//! parsers every rule is built from, and the bookkeeping that turns a failed
//! parse into "expected …, got …".
//!
//! nom's `opt`, `alt` and friends drop the errors of the branches they give
//! up on, which would lose what the user could have written at the point
//! where parsing got stuck. So every primitive reports a mismatch to a shared
//! [`Tracker`] before failing, and the tracker keeps the alternatives seen at
//! the farthest token reached (the approach of databend's nom-based parser).

use std::cell::RefCell;
use std::iter::{Copied, Enumerate};
use std::slice::Iter;

use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Input, Needed};

use super::error::{Expected, Found, SqlError, SqlErrorKind};
use super::lexer::{Lexed, Token, TokenKind};
use crate::ids::printable;

/// How many characters of an offending token an error message repeats.
const ECHO_LEN: usize = 40;

/// The farthest token any alternative reached, and what it expected there.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    farthest: RefCell<Farthest>,
}

#[derive(Debug, Default, Clone)]
struct Farthest {
    index: usize,
    expected: Vec<&'static str>,
}

impl Tracker {
    fn record(&self, index: usize, label: &'static str) {
        let mut farthest = self.farthest.borrow_mut();
        if index > farthest.index {
            *farthest = Farthest {
                index,
                expected: vec![label],
            };
        } else if index == farthest.index && !farthest.expected.contains(&label) {
            farthest.expected.push(label);
        }
    }

    /// The syntax error at the farthest point reached so far.
    pub fn syntax_error(&self, sql: &str, lexed: &Lexed<'_>) -> SqlError {
        let farthest = self.farthest.borrow().clone();
        let token = lexed.tokens.get(farthest.index);
        if token.is_none() {
            if let Some(err) = unterminated(sql, lexed) {
                return err;
            }
        }
        let (position, found) = match token {
            Some(token) => (
                column(sql, token.start),
                Found::Token(printable(token.text, ECHO_LEN)),
            ),
            None => (column(sql, sql.len()), Found::EndOfStatement),
        };
        SqlErrorKind::Syntax {
            position,
            expected: Expected(farthest.expected),
            found,
        }
        .into()
    }
}

/// The error for an unterminated quote, if the lexer met one.
pub(crate) fn unterminated(sql: &str, lexed: &Lexed<'_>) -> Option<SqlError> {
    lexed.error.map(|err| {
        SqlErrorKind::Unterminated {
            position: column(sql, err.start),
            what: err.what,
        }
        .into()
    })
}

/// The 1-based character column of byte offset `byte` in `sql`.
fn column(sql: &str, byte: usize) -> usize {
    sql.get(..byte).map_or(0, |prefix| prefix.chars().count()) + 1
}

/// The unparsed rest of a statement's tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tokens<'a> {
    toks: &'a [Token<'a>],
    /// Index of `toks[0]` among all tokens of the statement.
    index: usize,
    tracker: &'a Tracker,
}

impl<'a> Tokens<'a> {
    pub fn new(toks: &'a [Token<'a>], tracker: &'a Tracker) -> Self {
        Self {
            toks,
            index: 0,
            tracker,
        }
    }

    pub fn first(&self) -> Option<&'a Token<'a>> {
        self.toks.first()
    }

    /// Notes that `label` would have been accepted here.
    pub fn expect(&self, label: &'static str) {
        self.tracker.record(self.index, label);
    }
}

impl<'a> Input for Tokens<'a> {
    type Item = Token<'a>;
    type Iter = Copied<Iter<'a, Token<'a>>>;
    type IterIndices = Enumerate<Self::Iter>;

    fn input_len(&self) -> usize {
        self.toks.len()
    }

    fn take(&self, index: usize) -> Self {
        Self {
            toks: &self.toks[..index],
            ..*self
        }
    }

    fn take_from(&self, index: usize) -> Self {
        Self {
            toks: &self.toks[index..],
            index: self.index + index,
            tracker: self.tracker,
        }
    }

    fn take_split(&self, index: usize) -> (Self, Self) {
        (self.take_from(index), self.take(index))
    }

    fn position<P>(&self, predicate: P) -> Option<usize>
    where
        P: Fn(Self::Item) -> bool,
    {
        self.toks.iter().position(|t| predicate(*t))
    }

    fn iter_elements(&self) -> Self::Iter {
        self.toks.iter().copied()
    }

    fn iter_indices(&self) -> Self::IterIndices {
        self.iter_elements().enumerate()
    }

    fn slice_index(&self, count: usize) -> Result<usize, Needed> {
        if self.toks.len() >= count {
            Ok(count)
        } else {
            Err(Needed::new(count - self.toks.len()))
        }
    }
}

/// The error nom carries around; the details live in the [`Tracker`].
#[derive(Debug)]
pub(crate) struct Mismatch;

impl<I> ParseError<I> for Mismatch {
    fn from_error_kind(_: I, _: ErrorKind) -> Self {
        Mismatch
    }

    fn append(_: I, _: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, O> = IResult<Tokens<'a>, O, Mismatch>;

fn mismatch<'a, O>() -> PResult<'a, O> {
    Err(nom::Err::Error(Mismatch))
}

/// One token accepted by `accept`, described as `label` in errors.
pub(crate) fn token<'a>(
    label: &'static str,
    accept: impl Fn(&Token<'a>) -> bool,
) -> impl Fn(Tokens<'a>) -> PResult<'a, Token<'a>> {
    move |input| match input.first() {
        Some(t) if accept(t) => Ok((input.take_from(1), *t)),
        _ => {
            input.expect(label);
            mismatch()
        }
    }
}

/// A keyword, matched case-insensitively; `kw` is given in upper case.
pub(crate) fn keyword<'a>(kw: &'static str) -> impl Fn(Tokens<'a>) -> PResult<'a, Token<'a>> {
    token(kw, move |t| t.is_word(kw))
}

/// A punctuation character; `label` is how errors show it, e.g. `'('`.
pub(crate) fn punct<'a>(
    c: char,
    label: &'static str,
) -> impl Fn(Tokens<'a>) -> PResult<'a, Token<'a>> {
    token(label, move |t| t.is_punct(c))
}

/// Succeeds only when every token has been read.
pub(crate) fn end_of_statement(input: Tokens<'_>) -> PResult<'_, ()> {
    if input.toks.is_empty() {
        Ok((input, ()))
    } else {
        input.expect("end of statement");
        mismatch()
    }
}

/// A single-quoted string.
pub(crate) fn quoted_value<'a>(input: Tokens<'a>) -> PResult<'a, Token<'a>> {
    token("a quoted value", |t| t.kind == TokenKind::Quoted)(input)
}

/// A plain identifier as Manticore's lexer reads one:
/// `[A-Za-z_][A-Za-z0-9_]*`.
pub(crate) fn is_identifier(t: &Token<'_>) -> bool {
    t.kind == TokenKind::Word
        && t.text
            .starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && t.text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A name as written: a word or a back-ticked name. Whether it is a valid
/// table or cluster name is checked when the statement is built, so that the
/// error can say what is wrong with it.
pub(crate) fn name<'a>(label: &'static str) -> impl Fn(Tokens<'a>) -> PResult<'a, Token<'a>> {
    token(label, |t| {
        matches!(t.kind, TokenKind::Word | TokenKind::Backticked)
    })
}

/// `[<cluster>:]<name>` as written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawQualifiedName<'a> {
    pub cluster: Option<Token<'a>>,
    pub table: Token<'a>,
}

pub(crate) fn qualified_name(input: Tokens<'_>) -> PResult<'_, RawQualifiedName<'_>> {
    let (rest, first) = table_name_part(input)?;
    // The colon is optional and not worth suggesting in errors.
    if !rest.first().is_some_and(|t| t.is_punct(':')) {
        return Ok((
            rest,
            RawQualifiedName {
                cluster: None,
                table: first,
            },
        ));
    }
    let (rest, table) = table_name_part(rest.take_from(1))?;
    Ok((
        rest,
        RawQualifiedName {
            cluster: Some(first),
            table,
        },
    ))
}

/// A name where a table name belongs. A word followed by `=` is an option
/// (`create table c: shards='2'`), never a table name, in every statement
/// here; refusing it points the error at the missing name.
fn table_name_part(input: Tokens<'_>) -> PResult<'_, Token<'_>> {
    let (rest, part) = name("a table name")(input)?;
    if rest.first().is_some_and(|t| t.is_punct('=')) {
        input.expect("a table name");
        return mismatch();
    }
    Ok((rest, part))
}

/// Runs `parser` over the whole statement. On failure, or when the lexer
/// stopped early, returns the syntax error to show.
pub(crate) fn parse_all<'a, O>(
    sql: &str,
    lexed: &'a Lexed<'a>,
    tracker: &'a Tracker,
    mut parser: impl nom::Parser<Tokens<'a>, Output = O, Error = Mismatch>,
) -> Result<O, SqlError> {
    let input = Tokens::new(&lexed.tokens, tracker);
    match parser.parse(input) {
        Ok((_, out)) => match unterminated(sql, lexed) {
            Some(err) => Err(err),
            None => Ok(out),
        },
        Err(_) => Err(tracker.syntax_error(sql, lexed)),
    }
}

#[cfg(test)]
mod tests {
    use nom::combinator::opt;
    use nom::sequence::terminated;
    use nom::Parser;

    use super::*;
    use crate::sql::lexer::lex;

    /// `EXPLAIN REBALANCE [TABLE] [c:]t` as (TABLE given, cluster, table).
    fn run(sql: &str) -> Result<(bool, Option<String>, String), SqlError> {
        let lexed = lex(sql);
        let tracker = Tracker::default();
        let parser = (
            keyword("EXPLAIN"),
            keyword("REBALANCE"),
            opt(keyword("TABLE")),
            terminated(qualified_name, end_of_statement),
        )
            .map(|(_, _, table_kw, name)| {
                let cluster = name.cluster.map(|t| t.text.to_string());
                (table_kw.is_some(), cluster, name.table.text.to_string())
            });
        parse_all(sql, &lexed, &tracker, parser)
    }

    #[test]
    fn errors_collect_every_alternative_at_the_farthest_token() {
        let err = run("explain rebalance 'x'").unwrap_err();
        assert_eq!(
            err.to_string(),
            "syntax error at position 19: expected TABLE or a table name, got ''x''"
        );
        let err = run("explain rebalance t u").unwrap_err();
        assert_eq!(
            err.to_string(),
            "syntax error at position 21: expected end of statement, got 'u'"
        );
        let err = run("explain   rebalance").unwrap_err();
        assert_eq!(
            err.to_string(),
            "syntax error at position 20: expected TABLE or a table name, got end of statement"
        );
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        let err = run("explain rebalance tëst ü").unwrap_err();
        assert_eq!(
            err.to_string(),
            "syntax error at position 24: expected end of statement, got 'ü'"
        );
    }

    #[test]
    fn an_unterminated_quote_is_reported_where_it_starts() {
        let err = run("explain rebalance `t").unwrap_err();
        assert_eq!(
            err.to_string(),
            "syntax error at position 19: unterminated quoted name"
        );
    }

    #[test]
    fn qualified_names_take_an_optional_cluster() {
        assert_eq!(
            run("EXPLAIN REBALANCE TABLE c:t").unwrap(),
            (true, Some("c".to_string()), "t".to_string())
        );
        assert_eq!(
            run("EXPLAIN REBALANCE t").unwrap(),
            (false, None, "t".to_string())
        );
    }
}
