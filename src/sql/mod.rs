//! The extended SQL shardbuddy claims: grammar, typed AST, validation.

/// Turns a request body into the payload handlers match on: comments removed,
/// surrounding whitespace and `;` trimmed (spec §2.4).
pub fn normalize_payload(body: &str) -> String {
    body.trim_matches(|c: char| c.is_whitespace() || c == ';')
        .to_string()
}
