//! Tokens with byte offsets, so syntax errors can quote the rest of the statement
//! (`… near '<text>'`) exactly like searchd's bison parsers do.

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// Bare word (keywords are words too; the parser compares case-insensitively).
    Word(String),
    /// `` `name` ``: never a keyword.
    Quoted(String),
    Int(i64),
    /// Digits too large for `i64` are kept as text (ids are unsigned 64-bit in searchd).
    BigInt(String),
    Float(f64),
    Str(String),
    /// `"…"`: searchd's DDL lexer has no double-quoted strings.
    DoubleQuoted(String),
    /// `@@name`
    SysVar(String),
    Punct(&'static str),
    /// A character the lexer does not know, or an unterminated string (bison's `$undefined`).
    Undefined,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

const PUNCTS: &[&str] = &[
    "<=", ">=", "<>", "!=", "(", ")", ",", ";", "=", "<", ">", "*", ".", ":", "[", "]", "|", "-",
    "+", "/", "@",
];

pub fn tokenize(sql: &str) -> Vec<Token> {
    let bytes = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        let tok = if c == b'\'' || c == b'"' {
            match read_quoted(sql, i, c) {
                Some((text, end)) => {
                    i = end;
                    if c == b'\'' {
                        Tok::Str(text)
                    } else {
                        Tok::DoubleQuoted(text)
                    }
                }
                None => {
                    i = bytes.len();
                    Tok::Undefined
                }
            }
        } else if c == b'`' {
            match sql[i + 1..].find('`') {
                Some(rel) => {
                    let text = sql[i + 1..i + 1 + rel].to_string();
                    i += rel + 2;
                    Tok::Quoted(text)
                }
                None => {
                    i = bytes.len();
                    Tok::Undefined
                }
            }
        } else if c.is_ascii_digit() {
            let (tok, end) = read_number(sql, i);
            i = end;
            tok
        } else if c == b'@' && bytes.get(i + 1) == Some(&b'@') {
            let end = word_end(bytes, i + 2);
            let name = sql[i + 2..end].to_string();
            i = end;
            Tok::SysVar(name)
        } else if is_word_start(c) {
            let end = word_end(bytes, i);
            let text = sql[i..end].to_string();
            i = end;
            Tok::Word(text)
        } else if let Some(p) = PUNCTS.iter().find(|p| sql[i..].starts_with(**p)) {
            i += p.len();
            Tok::Punct(p)
        } else {
            i += sql[i..].chars().next().map(char::len_utf8).unwrap_or(1);
            Tok::Undefined
        };
        out.push(Token { tok, start, end: i });
    }
    out
}

fn is_word_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_' || c >= 0x80
}

fn word_end(bytes: &[u8], mut i: usize) -> usize {
    while i < bytes.len()
        && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_' || bytes[i] >= 0x80)
    {
        i += 1;
    }
    i
}

fn read_number(sql: &str, start: usize) -> (Tok, usize) {
    let bytes = sql.as_bytes();
    let mut i = start;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    // `1.5` is a float; `127.0.0.1`-like text never appears unquoted in SQL.
    if i + 1 < bytes.len() && bytes[i] == b'.' && bytes[i + 1].is_ascii_digit() {
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let v = sql[start..i].parse::<f64>().unwrap_or(0.0);
        return (Tok::Float(v), i);
    }
    // Digits glued to letters form a word (e.g. a table named `1abc` is not valid anyway).
    if i < bytes.len() && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
        let end = word_end(bytes, i);
        return (Tok::Word(sql[start..end].to_string()), end);
    }
    let text = &sql[start..i];
    match text.parse::<i64>() {
        Ok(v) => (Tok::Int(v), i),
        Err(_) => (Tok::BigInt(text.to_string()), i),
    }
}

/// Reads a quoted literal starting at `start` (the quote). Backslash escapes as in searchd's SphinxQL.
fn read_quoted(sql: &str, start: usize, quote: u8) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = sql[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        if c as u32 == quote as u32 {
            return Some((out, start + 1 + off + 1));
        }
        if c == '\\' {
            let (_, next) = chars.next()?;
            out.push(match next {
                'n' => '\n',
                't' => '\t',
                'r' => '\r',
                '0' => '\0',
                other => other,
            });
        } else {
            out.push(c);
        }
    }
    None
}

/// Splits a multi-statement text on `;` outside quotes. Empty pieces are dropped.
pub fn split_statements(sql: &str) -> Vec<&str> {
    let bytes = sql.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == b'\\' && q != b'`' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                b'\'' | b'"' | b'`' => quote = Some(c),
                b';' => {
                    pieces.push(&sql[start..i]);
                    start = i + 1;
                }
                _ => {}
            },
        }
        i += 1;
    }
    pieces.push(&sql[start..]);
    pieces
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(sql: &str) -> Vec<Tok> {
        tokenize(sql).into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn lexes_statement_pieces() {
        assert_eq!(
            toks("SELECT `key`, value[0] FROM t WHERE id>=10 AND f<1.5"),
            vec![
                Tok::Word("SELECT".into()),
                Tok::Quoted("key".into()),
                Tok::Punct(","),
                Tok::Word("value".into()),
                Tok::Punct("["),
                Tok::Int(0),
                Tok::Punct("]"),
                Tok::Word("FROM".into()),
                Tok::Word("t".into()),
                Tok::Word("WHERE".into()),
                Tok::Word("id".into()),
                Tok::Punct(">="),
                Tok::Int(10),
                Tok::Word("AND".into()),
                Tok::Word("f".into()),
                Tok::Punct("<"),
                Tok::Float(1.5),
            ]
        );
    }

    #[test]
    fn strings_and_escapes() {
        assert_eq!(toks(r"'it\'s \\ ok'"), vec![Tok::Str(r"it's \ ok".into())]);
        assert_eq!(toks("'3"), vec![Tok::Undefined]);
        assert_eq!(toks("\"3\""), vec![Tok::DoubleQuoted("3".into())]);
        assert_eq!(
            toks("@@version_comment"),
            vec![Tok::SysVar("version_comment".into())]
        );
        assert_eq!(
            toks("18446744073709551615"),
            vec![Tok::BigInt("18446744073709551615".into())]
        );
    }

    #[test]
    fn offsets_point_into_the_text() {
        let sql = "DROP TABLE c:t";
        let t = tokenize(sql);
        assert_eq!(&sql[t[3].start..], ":t");
    }

    #[test]
    fn splits_outside_quotes() {
        assert_eq!(
            split_statements("SELECT 'a;b'; SHOW META;"),
            vec!["SELECT 'a;b'", " SHOW META"]
        );
        assert_eq!(
            split_statements(r"INSERT INTO t VALUES ('x\';y')"),
            vec![r"INSERT INTO t VALUES ('x\';y')"]
        );
    }
}
