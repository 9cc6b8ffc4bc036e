//! The extended SQL shardbuddy claims: grammar, typed AST, validation.
//!
//! The grammar is written down in `grammar/sharding.ebnf`; `grammar/README.md`
//! explains the decisions and the test corpus in `grammar/cases/`.
//!
//! A request is handled in four steps, each in its own module:
//! 1. [`normalize_payload`] removes comments and trims (`normalize`);
//! 2. the statement is split into tokens (`lexer`);
//! 3. its leading keywords say which statement it means to be, and the
//!    daemon's error must be one that routes that statement here
//!    (`classify`);
//! 4. nom rules over the tokens (`cursor`, `create`, `statements`) build the
//!    typed [`Statement`], applying Buddy's checks in Buddy's order.
//!
//! Nothing here does I/O, and no input makes it panic.

mod ast;
mod classify;
mod create;
mod cursor;
mod error;
mod lexer;
mod names;
mod normalize;
mod statements;

pub use ast::{CreateSharded, DropSharded, QualifiedName, Statement, StopMode, TableOption};
pub use error::{Expected, Found, NameRole, ShardingParam, SqlError, SqlErrorKind};
pub use normalize::normalize_payload;

use classify::{classify, Kind};
use lexer::{lex, Lexed};

/// The claim rule of spec §5.2–5.3: `None` = not ours (the daemon's error goes
/// back untouched); `Some(Err)` = ours, but invalid (reply with
/// `err.to_string()`, the exact user-facing text); `Some(Ok)` = ours and
/// syntactically/locally valid.
///
/// A request is ours only when the payload is one of the statements of
/// `grammar/sharding.ebnf` *and* the daemon failed on it with an error that
/// routes that statement (for example `… require Buddy` for a local sharded
/// `CREATE TABLE`, or a syntax error `near ':…` for a cluster-prefixed one).
/// `payload` may be the raw request body; it is normalized here.
pub fn claim(payload: &str, daemon_error: &str) -> Option<Result<Statement, SqlError>> {
    // Cheap exit for everything else: a failed 10 MB INSERT is neither
    // normalized again nor lexed.
    if !starts_with_a_verb_of_ours(payload) {
        return None;
    }
    let sql = normalize_payload(payload);
    let lexed = lex(&sql);
    let kind = classify(&lexed.tokens)?;
    if !kind.routed_by(daemon_error) {
        return None;
    }
    judge(kind, &sql, &lexed)
}

/// Parse without the daemon-error gate (used by `shardbuddy parse` and tests):
/// the statement is judged as if the daemon had failed with the error that
/// routes it. A statement shardbuddy never claims gives an error for which
/// [`SqlError::is_not_claimed`] is true.
pub fn parse(payload: &str) -> Result<Statement, SqlError> {
    if !starts_with_a_verb_of_ours(payload) {
        return Err(SqlErrorKind::NotClaimed.into());
    }
    let sql = normalize_payload(payload);
    let lexed = lex(&sql);
    classify(&lexed.tokens)
        .and_then(|kind| judge(kind, &sql, &lexed))
        .unwrap_or_else(|| Err(SqlErrorKind::NotClaimed.into()))
}

fn judge(kind: Kind, sql: &str, lexed: &Lexed<'_>) -> Option<Result<Statement, SqlError>> {
    let result = statements::parse_statement(kind, sql, lexed);
    if result.is_err() && kind.leaves_invalid_to_daemon() {
        return None;
    }
    Some(result)
}

/// The first words `classify` can accept; anything else is not ours.
const VERBS: &[&str] = &[
    "CREATE",
    "DROP",
    "SHOW",
    "TRUNCATE",
    "FLUSH",
    "OPTIMIZE",
    "REBALANCE",
    "EXPLAIN",
    "STOP",
    "PAUSE",
    "RESUME",
    "ALTER",
];

/// Whether the first word, after leading whitespace and comments, is one of
/// [`VERBS`]. Looks only at the start of the text.
fn starts_with_a_verb_of_ours(text: &str) -> bool {
    let head = normalize_payload(leading_part(text));
    let end = head
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(head.len());
    VERBS.iter().any(|v| v.eq_ignore_ascii_case(&head[..end]))
}

/// The text up to the first word that follows any leading whitespace and
/// comments (plus that word), without scanning further.
fn leading_part(text: &str) -> &str {
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ';');
        let skip = if rest.starts_with("/*") && !rest.starts_with("/*!") {
            rest.find("*/").map_or(rest.len(), |i| i + 2)
        } else if rest.starts_with('#') || rest.starts_with("--") {
            rest.find('\n').map_or(rest.len(), |i| i + 1)
        } else {
            break;
        };
        rest = &rest[skip..];
    }
    let word_end = rest
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(rest.len());
    &text[..text.len() - rest.len() + word_end]
}
