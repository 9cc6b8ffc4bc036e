//! `CREATE TABLE [IF NOT EXISTS] [<cluster>:]<name> [(<columns>)] <options>`
//! with `shards`/`rf`/`timeout`, validated in Buddy's order.
//!
//! The statement is read in two parts. The head (keywords, name, column
//! list) must be well-formed, or nothing after it can be trusted. The table
//! options are then read one by one; a malformed one is remembered and
//! skipped, so that Buddy's option checks still run first: Buddy validates
//! options by pattern before anything else and Manticore's tests rely on that
//! order (`shards='3001' rf='3'?` answers with the shard limit, not with the
//! stray `?`). The full order is:
//!
//! 1. head syntax, then the table and cluster names;
//! 2. each of `shards`/`rf`/`timeout` in order of appearance: duplicate,
//!    empty, not all digits;
//! 3. more than 3000 shards;
//! 4. the first malformed table option, or an unterminated quote;
//! 5. `rf` missing;
//! 6. `rf` above 1 without a cluster;
//! 7. `timeout` below 1;
//! 8. `shards` missing (where Buddy's handler fails on it with an internal
//!    error; the message is shardbuddy's);
//! 9. `rf` or `shards` below 1.

use nom::combinator::{cut, opt};
use nom::multi::many0;
use nom::sequence::preceded;
use nom::{Input, Parser};

use super::ast::{CreateSharded, TableOption};
use super::cursor::{
    is_identifier, keyword, punct, qualified_name, quoted_value, token, unterminated, Mismatch,
    PResult, RawQualifiedName, Tokens, Tracker,
};
use super::error::{ShardingParam, SqlError, SqlErrorKind};
use super::lexer::{Lexed, Token, TokenKind};
use super::names;

/// Buddy's upper bound on `shards`.
const MAX_SHARDS: u64 = 3000;

pub(crate) fn parse_create(sql: &str, lexed: &Lexed<'_>) -> Result<CreateSharded, SqlError> {
    let tracker = Tracker::default();
    let input = Tokens::new(&lexed.tokens, &tracker);
    let (rest, head) = head(input).map_err(|_| tracker.syntax_error(sql, lexed))?;
    let name = names::qualified(&head.name)?;
    let (options, malformed) = table_options(rest, sql, lexed, &tracker);
    let (sharding, options) = split_options(&options)?;
    if sharding.shards.is_some_and(|shards| shards > MAX_SHARDS) {
        return Err(SqlErrorKind::TooManyShards.into());
    }
    if let Some(err) = malformed.or_else(|| unterminated(sql, lexed)) {
        return Err(err);
    }
    let rf = sharding.rf.ok_or(SqlErrorKind::RfRequired)?;
    if rf > 1 && name.cluster.is_none() {
        return Err(SqlErrorKind::RfOnSingleNode.into());
    }
    if sharding.timeout == Some(0) {
        return Err(SqlErrorKind::TimeoutTooSmall.into());
    }
    let shards = sharding.shards.ok_or(SqlErrorKind::ShardsRequired)?;
    if rf < 1 || shards < 1 {
        return Err(SqlErrorKind::InvalidShardsOrRf.into());
    }
    Ok(CreateSharded {
        if_not_exists: head.if_not_exists,
        cluster: name.cluster,
        table: name.table,
        columns: head.columns.map(|(start, end)| sql[start..end].to_string()),
        options,
        shards: saturate(shards),
        rf: saturate(rf),
        timeout: sharding.timeout.map(saturate),
    })
}

fn saturate(value: u64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

struct Head<'a> {
    if_not_exists: bool,
    name: RawQualifiedName<'a>,
    /// Byte range of the column list's contents.
    columns: Option<(usize, usize)>,
}

fn head(input: Tokens<'_>) -> PResult<'_, Head<'_>> {
    let (input, _) = (keyword("CREATE"), keyword("TABLE")).parse(input)?;
    let if_not_exists = (keyword("IF"), keyword("NOT"), keyword("EXISTS"));
    let (input, if_not_exists) = opt(if_not_exists).parse(input)?;
    let (input, name) = qualified_name(input)?;
    // Once a `(` is seen the column list must be complete: `cut` stops nom
    // from trying to read it as table options instead.
    let (input, columns) = opt(preceded(punct('(', "'('"), cut(column_list))).parse(input)?;
    let head = Head {
        if_not_exists: if_not_exists.is_some(),
        name,
        columns,
    };
    Ok((input, head))
}

const COLUMN_PART: &str = "a column type or property";

/// `<column> {, <column>} )`, returning the byte range of the columns.
fn column_list(input: Tokens<'_>) -> PResult<'_, (usize, usize)> {
    let (input, first) = column(input)?;
    let (input, more) = many0(preceded(punct(',', "','"), column)).parse(input)?;
    let (input, _) = punct(')', "')'")(input)?;
    let end = more.last().map_or(first.1, |last| last.1);
    Ok((input, (first.0, end)))
}

/// One column definition: a name, then any run of type words, properties,
/// `key='value'` pairs and parenthesised groups such as `bit(8)`. Manticore
/// checks the details when the shards are created; this keeps out what could
/// never be part of a column definition.
fn column(input: Tokens<'_>) -> PResult<'_, (usize, usize)> {
    let column_name = |t: &Token<'_>| is_identifier(t) || t.kind == TokenKind::Backticked;
    let (input, name) = token("a column name", column_name)(input)?;
    let (input, parts) = many0(column_part).parse(input)?;
    let end = parts.last().copied().unwrap_or(name.end());
    Ok((input, (name.start, end)))
}

fn is_simple_column_part(t: &Token<'_>) -> bool {
    match t.kind {
        TokenKind::Word => t
            .text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_'),
        TokenKind::Backticked | TokenKind::Quoted => true,
        TokenKind::Punct => t.is_punct('='),
        TokenKind::DoubleQuoted => false,
    }
}

/// One part of a column definition, returning the byte offset of its end.
/// A parenthesised group is read with a depth counter rather than by
/// recursion, so no input can exhaust the stack.
fn column_part(input: Tokens<'_>) -> PResult<'_, usize> {
    let opens_group = |t: &Token<'_>| t.is_punct('(');
    let (mut input, first) =
        token(COLUMN_PART, |t| is_simple_column_part(t) || opens_group(t))(input)?;
    if !opens_group(&first) {
        return Ok((input, first.end()));
    }
    let mut depth = 1usize;
    loop {
        let inside = input.first().filter(|t| {
            is_simple_column_part(t) || t.is_punct('(') || t.is_punct(')') || t.is_punct(',')
        });
        let Some(t) = inside else {
            input.expect(COLUMN_PART);
            input.expect("')'");
            return Err(nom::Err::Error(Mismatch));
        };
        input = input.take_from(1);
        if t.is_punct('(') {
            depth += 1;
        } else if t.is_punct(')') {
            depth -= 1;
            if depth == 0 {
                return Ok((input, t.end()));
            }
        }
    }
}

/// A table option as written: `name = 'value'`.
struct RawOption<'a> {
    name: Token<'a>,
    value: Token<'a>,
}

fn table_option(input: Tokens<'_>) -> PResult<'_, RawOption<'_>> {
    let (input, name) = token("a table option", is_identifier)(input)?;
    let (input, _) = punct('=', "'='")(input)?;
    let (input, value) = quoted_value(input)?;
    Ok((input, RawOption { name, value }))
}

/// Reads every well-formed option after the head; also returns the syntax
/// error of the first malformed stretch, if any.
fn table_options<'a>(
    mut input: Tokens<'a>,
    sql: &str,
    lexed: &Lexed<'_>,
    tracker: &Tracker,
) -> (Vec<RawOption<'a>>, Option<SqlError>) {
    let mut options = Vec::new();
    let mut malformed = None;
    while input.input_len() > 0 {
        match table_option(input) {
            Ok((rest, option)) => {
                options.push(option);
                input = rest;
            }
            Err(_) => {
                input.expect("end of statement");
                malformed.get_or_insert_with(|| tracker.syntax_error(sql, lexed));
                input = input.take_from(1);
            }
        }
    }
    (options, malformed)
}

/// The values of `shards`, `rf` and `timeout`, digits read with saturation.
#[derive(Default)]
struct ShardingValues {
    shards: Option<u64>,
    rf: Option<u64>,
    timeout: Option<u64>,
}

impl ShardingValues {
    fn slot(&mut self, param: ShardingParam) -> &mut Option<u64> {
        match param {
            ShardingParam::Shards => &mut self.shards,
            ShardingParam::Rf => &mut self.rf,
            ShardingParam::Timeout => &mut self.timeout,
        }
    }
}

/// Separates the sharding options, checked in order of appearance as Buddy
/// does, from the other table options, which are kept in order.
fn split_options(raw: &[RawOption<'_>]) -> Result<(ShardingValues, Vec<TableOption>), SqlError> {
    let mut sharding = ShardingValues::default();
    let mut others = Vec::new();
    for option in raw {
        let value = option.value.unquoted();
        let Some(param) = ShardingParam::from_option_name(option.name.text) else {
            let name = option.name.text.to_ascii_lowercase();
            others.push(TableOption { name, value });
            continue;
        };
        let slot = sharding.slot(param);
        if slot.is_some() {
            return Err(SqlErrorKind::DuplicateParameter(param).into());
        }
        if value.is_empty() {
            return Err(SqlErrorKind::EmptyParameter(param).into());
        }
        if !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SqlErrorKind::NonNumericParameter(param).into());
        }
        *slot = Some(value.bytes().fold(0u64, |acc, digit| {
            acc.saturating_mul(10)
                .saturating_add(u64::from(digit - b'0'))
        }));
    }
    Ok((sharding, others))
}
