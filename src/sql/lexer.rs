//! Splits a normalized statement into tokens with their byte offsets.
//!
//! The token shapes follow Manticore's DDL lexer (`src/ddl.l`): whitespace is
//! exactly space, tab, CR and LF; strings are single-quoted with `\` escapes;
//! names may be back-ticked. Anything else is a one-character token, so every
//! character of the input belongs to some token and the grammar decides
//! whether it fits. The only lexing failure is an unterminated quote.

use nom::branch::alt;
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::{anychar, char, none_of, satisfy};
use nom::combinator::{map, recognize};
use nom::multi::many0_count;
use nom::sequence::preceded;
use nom::{IResult, Parser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// Letters (any script), digits and `_`: keywords, names, numbers.
    Word,
    /// `` `name` ``
    Backticked,
    /// `'text'`, the only string form Manticore's DDL accepts.
    Quoted,
    /// `"text"`: never valid in these statements, kept whole so that errors
    /// can show it.
    DoubleQuoted,
    /// Any other single character.
    Punct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token<'a> {
    pub kind: TokenKind,
    /// The token exactly as written, quotes included.
    pub text: &'a str,
    /// Byte offset of the token in the statement.
    pub start: usize,
}

impl<'a> Token<'a> {
    pub fn end(&self) -> usize {
        self.start + self.text.len()
    }

    pub fn is_word(&self, keyword: &str) -> bool {
        self.kind == TokenKind::Word && self.text.eq_ignore_ascii_case(keyword)
    }

    pub fn is_punct(&self, c: char) -> bool {
        self.kind == TokenKind::Punct && self.text.starts_with(c)
    }

    /// The value of a quoted string or the name inside backticks.
    pub fn unquoted(&self) -> String {
        match self.kind {
            TokenKind::Quoted | TokenKind::DoubleQuoted => sql_unescape(inner(self.text)),
            TokenKind::Backticked => inner(self.text).to_string(),
            TokenKind::Word | TokenKind::Punct => self.text.to_string(),
        }
    }
}

/// `text` without its first and last character (the quotes).
fn inner(text: &str) -> &str {
    let mut chars = text.chars();
    chars.next();
    chars.next_back();
    chars.as_str()
}

/// Manticore's `SqlUnescape`: `\b \n \r \t` are control characters, `\0` is a
/// space, and `\` before anything else yields that character.
fn sql_unescape(escaped: &str) -> String {
    let mut out = String::with_capacity(escaped.len());
    let mut chars = escaped.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('b') => out.push('\u{8}'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('0') => out.push(' '),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

/// A quote that is never closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LexError {
    /// Byte offset of the opening quote.
    pub start: usize,
    pub what: &'static str,
}

/// The tokens of a statement. When lexing stops at an unterminated quote,
/// `tokens` holds everything before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Lexed<'a> {
    pub tokens: Vec<Token<'a>>,
    pub error: Option<LexError>,
}

pub(crate) fn lex(sql: &str) -> Lexed<'_> {
    let mut tokens = Vec::new();
    let mut input = sql;
    loop {
        input = input.trim_start_matches(is_space);
        if input.is_empty() {
            return Lexed {
                tokens,
                error: None,
            };
        }
        let start = sql.len() - input.len();
        match token(input) {
            Ok((rest, (kind, text))) => {
                tokens.push(Token { kind, text, start });
                input = rest;
            }
            Err(_) => {
                let what = if input.starts_with('`') {
                    "quoted name"
                } else {
                    "string"
                };
                return Lexed {
                    tokens,
                    error: Some(LexError { start, what }),
                };
            }
        }
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

type Res<'a, O> = IResult<&'a str, O>;

fn token(input: &str) -> Res<'_, (TokenKind, &str)> {
    alt((
        map(take_while1(is_word_char), |t| (TokenKind::Word, t)),
        map(quoted('\''), |t| (TokenKind::Quoted, t)),
        map(quoted('"'), |t| (TokenKind::DoubleQuoted, t)),
        map(backticked, |t| (TokenKind::Backticked, t)),
        // Opening quotes reach this branch only when unterminated.
        map(recognize(none_of("'\"`")), |t| (TokenKind::Punct, t)),
    ))
    .parse(input)
}

fn quoted(quote: char) -> impl Fn(&str) -> Res<'_, &str> {
    move |input| {
        let body = many0_count(alt((
            recognize(satisfy(move |c| c != quote && c != '\\')),
            recognize(preceded(char('\\'), anychar)),
        )));
        recognize((char(quote), body, char(quote))).parse(input)
    }
}

fn backticked(input: &str) -> Res<'_, &str> {
    recognize((char('`'), take_while(|c| c != '`'), char('`'))).parse(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<(TokenKind, &str)> {
        lex(sql).tokens.iter().map(|t| (t.kind, t.text)).collect()
    }

    #[test]
    fn tokens_follow_manticore_shapes() {
        use TokenKind::*;
        assert_eq!(
            kinds("CREATE TABLE c:t(id bigint) shards = '4'"),
            vec![
                (Word, "CREATE"),
                (Word, "TABLE"),
                (Word, "c"),
                (Punct, ":"),
                (Word, "t"),
                (Punct, "("),
                (Word, "id"),
                (Word, "bigint"),
                (Punct, ")"),
                (Word, "shards"),
                (Punct, "="),
                (Quoted, "'4'"),
            ]
        );
        assert_eq!(
            kinds("`T` \"3\" 'a\\'b' tëst\u{a0}?"),
            vec![
                (Backticked, "`T`"),
                (DoubleQuoted, "\"3\""),
                (Quoted, "'a\\'b'"),
                (Word, "tëst"),
                (Punct, "\u{a0}"),
                (Punct, "?"),
            ]
        );
    }

    #[test]
    fn offsets_are_byte_positions() {
        let lexed = lex("ab  'ë' c");
        let starts: Vec<usize> = lexed.tokens.iter().map(|t| t.start).collect();
        assert_eq!(starts, vec![0, 4, 9]);
    }

    #[test]
    fn unterminated_quotes_stop_the_lexer() {
        let lexed = lex("create table t shards='3");
        assert_eq!(lexed.tokens.len(), 5);
        assert_eq!(
            lexed.error,
            Some(LexError {
                start: 22,
                what: "string"
            })
        );
        assert_eq!(
            lex("drop `t").error,
            Some(LexError {
                start: 5,
                what: "quoted name"
            })
        );
    }

    #[test]
    fn unescaping_matches_manticore() {
        let cases = [
            ("'plain'", "plain"),
            ("'it\\'s'", "it's"),
            ("'a\\\\b'", "a\\b"),
            ("'\\d+'", "d+"),
            ("'x\\ty\\nz\\0'", "x\ty\nz "),
            ("''", ""),
        ];
        for (raw, want) in cases {
            let lexed = lex(raw);
            assert_eq!(lexed.tokens[0].unquoted(), want, "{raw}");
        }
        assert_eq!(lex("`Name`").tokens[0].unquoted(), "Name");
    }
}
