//! Buddy's request-body clean-up (buddy-protocol §2.4 item 6): comments go,
//! quoted text stays as it is, and surrounding whitespace and `;` are trimmed.
//!
//! Differences from Buddy, on purpose:
//! * a `/* … */` comment becomes one space instead of nothing, so that
//!   `create/**/table` stays two words, as MySQL reads it;
//! * `--` starts a comment only when followed by whitespace or a control
//!   character (MySQL's rule), so `1--1` is left alone;
//! * double-quoted and back-ticked text is skipped like single-quoted text.
//!
//! `/*! … */` (MySQL's "executable comment") is kept verbatim. An unterminated
//! quote or block comment runs to the end of the text.

use nom::branch::alt;
use nom::bytes::complete::{tag, take_till, take_until, take_while, take_while1};
use nom::character::complete::{anychar, char, satisfy};
use nom::combinator::{not, peek, recognize, rest, value};
use nom::multi::many0_count;
use nom::sequence::{pair, preceded, terminated};
use nom::{IResult, Parser};

/// Turns a request body into the payload handlers match on: comments removed,
/// surrounding whitespace and `;` trimmed.
pub fn normalize_payload(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut input = body;
    // Every branch of `segment` consumes at least one character, and the last
    // one accepts any character, so this loop ends and never fails.
    while let Ok((remaining, piece)) = segment(input) {
        out.push_str(piece);
        input = remaining;
    }
    // Trimmed in place: a big statement is not copied once more.
    let trim = |c: char| c.is_whitespace() || c == ';';
    out.truncate(out.trim_end_matches(trim).len());
    out.drain(..out.len() - out.trim_start_matches(trim).len());
    out
}

type Res<'a> = IResult<&'a str, &'a str>;

/// One piece of the body, returned as what it contributes to the output.
fn segment(input: &str) -> Res<'_> {
    alt((
        // A run of characters that cannot open a quote or a comment is copied
        // in one piece (a big INSERT is mostly such runs).
        take_while1(|c| !matches!(c, '\'' | '"' | '`' | '/' | '#' | '-')),
        escaped_quoted('\''),
        escaped_quoted('"'),
        backticked,
        recognize(preceded(tag("/*!"), block_end)),
        value(" ", preceded(tag("/*"), block_end)),
        value("", line_comment),
        recognize(anychar),
    ))
    .parse(input)
}

/// The rest of a block comment, closing `*/` included.
fn block_end(input: &str) -> Res<'_> {
    alt((recognize(pair(take_until("*/"), tag("*/"))), rest)).parse(input)
}

/// `# …` or `-- …` up to, not including, the end of the line.
///
/// `--` (and any dashes right after it) needs a whitespace or control
/// character after it (MySQL's rule), or another comment, which would become
/// whitespace. At the very end of the text it is not a comment. These details
/// keep normalization stable: removing a comment never turns a `--` that was
/// kept into a comment on a second pass (`---- c`, `--/**/x`, `--;`).
fn line_comment(input: &str) -> Res<'_> {
    let after_dashes = alt((
        recognize(satisfy(|c| c.is_whitespace() || c.is_control())),
        recognize(pair(tag("/*"), not(char('!')))),
        tag("#"),
    ));
    let dash_dash = terminated(
        tag("--"),
        peek(preceded(take_while(|c| c == '-'), after_dashes)),
    );
    recognize(pair(alt((tag("#"), dash_dash)), take_till(|c| c == '\n'))).parse(input)
}

/// A quoted run in which `\` escapes the next character, kept whole.
fn escaped_quoted(quote: char) -> impl Fn(&str) -> Res<'_> {
    move |input| {
        let body = many0_count(alt((
            recognize(satisfy(move |c| c != quote && c != '\\')),
            recognize(preceded(char('\\'), anychar)),
        )));
        recognize((char(quote), body, alt((recognize(char(quote)), rest)))).parse(input)
    }
}

/// A back-ticked identifier, kept whole.
fn backticked(input: &str) -> Res<'_> {
    let body = take_while(|c| c != '`');
    recognize((char('`'), body, alt((recognize(char('`')), rest)))).parse(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_removed_and_quotes_kept() {
        let cases = [
            (
                "create table t shards='2' rf='1';",
                "create table t shards='2' rf='1'",
            ),
            ("  \n\tSHOW SHARDING STATUS ;; \n", "SHOW SHARDING STATUS"),
            ("/* lead */ drop table c:t", "drop table c:t"),
            ("create/**/table t", "create table t"),
            ("drop table t -- trailing\n", "drop table t"),
            ("drop table t # trailing", "drop table t"),
            ("drop --x\ntable t", "drop --x\ntable t"),
            ("drop -- x\ntable t", "drop \ntable t"),
            (
                "select '-- not a comment' # but this is",
                "select '-- not a comment'",
            ),
            (
                "select 'it\\'s /* kept */' x",
                "select 'it\\'s /* kept */' x",
            ),
            ("select \"# kept\" x", "select \"# kept\" x"),
            ("select `a#b` x", "select `a#b` x"),
            ("select /*!40101 kept */ 1", "select /*!40101 kept */ 1"),
            ("select 1 /* unterminated", "select 1"),
            ("select 'unterminated # x", "select 'unterminated # x"),
            (
                "select 'trailing backslash\\",
                "select 'trailing backslash\\",
            ),
            ("--", "--"),
            ("drop --/**/ x", "drop"),
            ("drop --#x\n y", "drop \n y"),
            ("#", ""),
            ("drop table t #\n;", "drop table t"),
            (";", ""),
            ("", ""),
        ];
        for (body, want) in cases {
            assert_eq!(normalize_payload(body), want, "body: {body:?}");
        }
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        let bodies = [
            "a /* x */ b -- c\n d # e",
            "'x' /*!y*/ `z` \"w\"",
            "--/**/",
            "--;",
            "--/**/x",
            "--#c\nx",
            "---- c\nx",
            "-/**/-- x",
            "---",
        ];
        for body in bodies {
            let once = normalize_payload(body);
            assert_eq!(normalize_payload(&once), once);
        }
    }
}
