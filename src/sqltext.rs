//! The one place where values are turned into SQL text. Everything shardbuddy
//! sends to a daemon that embeds a user- or metadata-derived value goes
//! through these helpers.

/// Quotes a string literal the way Manticore's SQL lexer reads it back:
/// single quotes, with `\` and `'` escaped by a backslash.
pub fn quote_literal(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('\'');
    for c in value.chars() {
        if c == '\\' || c == '\'' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_escape_quotes_and_backslashes() {
        assert_eq!(quote_literal("plain"), "'plain'");
        assert_eq!(quote_literal("it's"), r"'it\'s'");
        assert_eq!(quote_literal(r"a\b"), r"'a\\b'");
    }
}
