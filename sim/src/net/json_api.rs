//! The two JSON endpoints the golden transcripts exercise (`/insert`, `/search`, case `http`),
//! translated to SQL, with searchd's reply shapes; and searchd's JSON parse errors.
//!
//! searchd parses JSON bodies with cJSON 1.7 and reports `unable to parse: <the body from the
//! point where cJSON gave up>` (`{not json` → `unable to parse: ot json`, record `http.16`), so
//! [`cjson_error_offset`] follows cJSON's parser step by step, including where it leaves its
//! error pointer.

use serde_json::Value;

use super::rawjson::error_body;

/// cJSON's nesting limit (`CJSON_NESTING_LIMIT`).
const NESTING_LIMIT: usize = 1000;

/// Where cJSON 1.7 (`cJSON_Parse`) would report an error in `text`, or `None` if it parses.
pub fn cjson_error_offset(text: &[u8]) -> Option<usize> {
    // cJSON sees a C string: it ends at the first NUL.
    let len = text.iter().position(|&b| b == 0).unwrap_or(text.len());
    let mut p = Parser {
        s: &text[..len],
        offset: 0,
        depth: 0,
    };
    if p.s.starts_with(b"\xEF\xBB\xBF") {
        p.offset = 3;
    }
    p.skip_whitespace();
    if p.value() {
        return None;
    }
    Some(if p.offset < p.s.len() {
        p.offset
    } else {
        p.s.len().saturating_sub(1)
    })
}

/// searchd's complaint about a body cJSON cannot parse.
pub fn parse_error_text(body: &[u8]) -> Option<String> {
    let at = cjson_error_offset(body)?;
    let rest = body.get(at..).unwrap_or_default();
    let rest = &rest[..rest.iter().position(|&b| b == 0).unwrap_or(rest.len())];
    Some(format!(
        "unable to parse: {}",
        String::from_utf8_lossy(rest)
    ))
}

struct Parser<'a> {
    s: &'a [u8],
    offset: usize,
    depth: usize,
}

impl Parser<'_> {
    fn at(&self, i: usize) -> Option<u8> {
        self.s.get(self.offset + i).copied()
    }

    /// `buffer_skip_whitespace`: skips bytes up to space, stepping back one when that reached
    /// the end (nothing happens at the end already).
    fn skip_whitespace(&mut self) {
        if self.at(0).is_none() {
            return;
        }
        while self.at(0).is_some_and(|c| c <= 32) {
            self.offset += 1;
        }
        if self.offset == self.s.len() {
            self.offset -= 1;
        }
    }

    fn starts(&self, word: &[u8]) -> bool {
        self.s
            .get(self.offset..self.offset + word.len())
            .is_some_and(|w| w == word)
    }

    fn value(&mut self) -> bool {
        for word in [&b"null"[..], b"false", b"true"] {
            if self.starts(word) {
                self.offset += word.len();
                return true;
            }
        }
        match self.at(0) {
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(b'[') => self.array(),
            Some(b'{') => self.object(),
            _ => false,
        }
    }

    /// `parse_number`: the longest run of number characters that `strtod` accepts.
    fn number(&mut self) -> bool {
        let run = self.s[self.offset..]
            .iter()
            .take(63)
            .take_while(|c| matches!(c, b'0'..=b'9' | b'+' | b'-' | b'e' | b'E' | b'.'))
            .count();
        let used = strtod_len(&self.s[self.offset..self.offset + run]);
        if used == 0 {
            return false;
        }
        self.offset += used;
        true
    }

    /// `parse_string`: on failure the error points one past the quote, or at a bad escape.
    fn string(&mut self) -> bool {
        let start = self.offset;
        if self.at(0) != Some(b'"') {
            self.offset = start + 1;
            return false;
        }
        let mut end = start + 1;
        while end < self.s.len() && self.s[end] != b'"' {
            if self.s[end] == b'\\' {
                if end + 1 >= self.s.len() {
                    self.offset = start + 1;
                    return false;
                }
                end += 1;
            }
            end += 1;
        }
        if end >= self.s.len() {
            self.offset = start + 1;
            return false;
        }
        let mut p = start + 1;
        while p < end {
            if self.s[p] != b'\\' {
                p += 1;
                continue;
            }
            let len = match self.s.get(p + 1) {
                Some(b'b' | b'f' | b'n' | b'r' | b't' | b'"' | b'\\' | b'/') => 2,
                Some(b'u') => utf16_literal_len(&self.s[p..end]),
                _ => 0,
            };
            if len == 0 {
                self.offset = p;
                return false;
            }
            p += len;
        }
        self.offset = end + 1;
        true
    }

    fn array(&mut self) -> bool {
        if self.depth >= NESTING_LIMIT {
            return false;
        }
        self.depth += 1;
        self.offset += 1;
        self.skip_whitespace();
        if self.at(0) == Some(b']') {
            self.depth -= 1;
            self.offset += 1;
            return true;
        }
        if self.at(0).is_none() {
            self.offset -= 1;
            return false;
        }
        self.offset -= 1;
        loop {
            self.offset += 1;
            self.skip_whitespace();
            if !self.value() {
                return false;
            }
            self.skip_whitespace();
            if self.at(0) != Some(b',') {
                break;
            }
        }
        if self.at(0) != Some(b']') {
            return false;
        }
        self.depth -= 1;
        self.offset += 1;
        true
    }

    fn object(&mut self) -> bool {
        if self.depth >= NESTING_LIMIT {
            return false;
        }
        self.depth += 1;
        self.offset += 1;
        self.skip_whitespace();
        if self.at(0) == Some(b'}') {
            self.depth -= 1;
            self.offset += 1;
            return true;
        }
        if self.at(0).is_none() {
            self.offset -= 1;
            return false;
        }
        self.offset -= 1;
        loop {
            self.offset += 1;
            self.skip_whitespace();
            if !self.string() {
                return false;
            }
            self.skip_whitespace();
            if self.at(0) != Some(b':') {
                return false;
            }
            self.offset += 1;
            self.skip_whitespace();
            if !self.value() {
                return false;
            }
            self.skip_whitespace();
            if self.at(0) != Some(b',') {
                break;
            }
        }
        if self.at(0) != Some(b'}') {
            return false;
        }
        self.depth -= 1;
        self.offset += 1;
        true
    }
}

/// How many bytes of `s` C's `strtod` consumes (a decimal number with optional exponent).
fn strtod_len(s: &[u8]) -> usize {
    let mut i = 0;
    if matches!(s.first(), Some(b'+' | b'-')) {
        i += 1;
    }
    let int_digits = s[i..].iter().take_while(|c| c.is_ascii_digit()).count();
    i += int_digits;
    let mut frac_digits = 0;
    if s.get(i) == Some(&b'.') {
        frac_digits = s[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if int_digits + frac_digits > 0 {
            i += 1 + frac_digits;
        }
    }
    if int_digits + frac_digits == 0 {
        return 0;
    }
    if matches!(s.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(s.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let exp = s[j..].iter().take_while(|c| c.is_ascii_digit()).count();
        if exp > 0 {
            i = j + exp;
        }
    }
    i
}

/// Length of a `\uXXXX` (or surrogate pair) escape as cJSON accepts it; 0 when invalid.
fn utf16_literal_len(s: &[u8]) -> usize {
    // cJSON's parse_hex4 reads a non-hex digit as a code of 0 (accepted).
    let hex = |at: usize| -> u32 {
        s.get(at..at + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u32::from_str_radix(d, 16).ok())
            .unwrap_or(0)
    };
    if s.len() < 6 {
        return 0;
    }
    let first = hex(2);
    if (0xDC00..=0xDFFF).contains(&first) {
        return 0;
    }
    if (0xD800..=0xDBFF).contains(&first) {
        if s.len() < 12 || s[6] != b'\\' || s[7] != b'u' {
            return 0;
        }
        return if (0xDC00..=0xDFFF).contains(&hex(8)) {
            12
        } else {
            0
        };
    }
    6
}

/// `/insert` as SQL: the statement, the target table as named, and the id if given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsertRequest {
    pub sql: String,
    pub table: String,
    pub id: Option<i64>,
}

/// `/search` as SQL: the SELECT and the cut-off (`offset + limit`) searchd stops counting at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    pub sql: String,
    pub cutoff: u64,
}

/// Why a JSON body cannot be served: HTTP status and reply body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

fn refuse(status: u16, message: impl Into<String>) -> Refusal {
    Refusal {
        status,
        message: message.into(),
    }
}

/// Parses a body as searchd would: cJSON's verdict first (its error text), then the fields.
fn parse_body(body: &[u8]) -> Result<serde_json::Map<String, Value>, Refusal> {
    if let Some(text) = parse_error_text(body) {
        return Err(refuse(400, text));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        // Valid for cJSON but not an object (or beyond serde_json, e.g. trailing bytes).
        _ => Err(refuse(400, "request body must be a JSON object")),
    }
}

fn table_of(map: &serde_json::Map<String, Value>) -> Result<String, Refusal> {
    map.get("table")
        .or_else(|| map.get("index"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| refuse(400, "'table' property missing"))
}

/// A SQL literal for a JSON value (strings quoted, arrays as MVA, objects as JSON text).
fn sql_literal(v: &Value) -> String {
    match v {
        Value::Null => "NULL".to_string(),
        Value::Bool(b) => if *b { "1" } else { "0" }.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => quote(s),
        Value::Array(items) if items.iter().all(Value::is_i64) => format!(
            "({})",
            items
                .iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => quote(&other.to_string()),
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', ""))
}

/// `/insert`: `{"table":…, ["cluster":…,] ["id":…,] "doc":{…}}`.
pub fn insert(body: &[u8]) -> Result<InsertRequest, Refusal> {
    let map = parse_body(body)?;
    let table = table_of(&map)?;
    let id = match map.get("id") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| refuse(400, "'id' must be an integer"))?,
        ),
    };
    let doc = match map.get("doc") {
        Some(Value::Object(d)) => d.clone(),
        None => serde_json::Map::new(),
        Some(_) => return Err(refuse(400, "'doc' must be an object")),
    };
    let quoted = crate::sql::render::quote_table(&table);
    let target = match map.get("cluster").and_then(Value::as_str) {
        Some(c) if !c.is_empty() => format!("{}:{quoted}", ident(c).trim_matches('`')),
        _ => quoted,
    };
    let mut columns = Vec::new();
    let mut values = Vec::new();
    if let Some(id) = id {
        columns.push("id".to_string());
        values.push(id.to_string());
    }
    for (k, v) in &doc {
        columns.push(ident(k));
        values.push(sql_literal(v));
    }
    let sql = format!(
        "INSERT INTO {target} ({}) VALUES ({})",
        columns.join(", "),
        values.join(", ")
    );
    Ok(InsertRequest { sql, table, id })
}

/// `/search`: `{"table":…, "query":{match_all|query_string|match}, ["limit":…,] ["offset":…]}`.
pub fn search(body: &[u8]) -> Result<SearchRequest, Refusal> {
    let map = parse_body(body)?;
    let table = table_of(&map)?;
    let number = |key: &str, default: u64| -> Result<u64, Refusal> {
        match map.get(key).or_else(|| match key {
            "limit" => map.get("size"),
            "offset" => map.get("from"),
            _ => None,
        }) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| refuse(400, format!("'{key}' must be a non-negative integer"))),
        }
    };
    let limit = number("limit", crate::exec::query::DEFAULT_LIMIT)?;
    let offset = number("offset", 0)?;
    let filter = match map.get("query") {
        None => None,
        Some(Value::Object(q)) => query_filter(q)?,
        Some(_) => return Err(refuse(400, "'query' must be an object")),
    };
    let cutoff = offset.saturating_add(limit).max(1);
    let mut sql = format!("SELECT * FROM {}", crate::sql::render::quote_table(&table));
    if let Some(f) = filter {
        sql.push_str(&format!(" WHERE {f}"));
    }
    sql.push_str(&format!(" LIMIT {offset},{limit}"));
    Ok(SearchRequest { sql, cutoff })
}

fn query_filter(q: &serde_json::Map<String, Value>) -> Result<Option<String>, Refusal> {
    let Some((kind, arg)) = q.iter().next() else {
        return Ok(None);
    };
    let text = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("query").and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    };
    match kind.as_str() {
        "match_all" => Ok(None),
        "query_string" => text(arg)
            .map(|s| Some(format!("MATCH({})", quote(&s))))
            .ok_or_else(|| refuse(400, "query_string: a string is expected")),
        "match" => {
            let Some((field, v)) = arg.as_object().and_then(|o| o.iter().next()) else {
                return Err(refuse(400, "match: a field is expected"));
            };
            let words = text(v).ok_or_else(|| refuse(400, "match: a query text is expected"))?;
            let expr = if field == "*" || field == "_all" {
                words
            } else {
                format!("@{field} {words}")
            };
            Ok(Some(format!("MATCH({})", quote(&expr))))
        }
        other => Err(refuse(
            400,
            format!("unsupported query '{other}' (the simulator knows match_all, query_string and match)"),
        )),
    }
}

/// `/insert`'s reply once the document is stored.
pub fn insert_reply(table: &str, id: i64) -> String {
    serde_json::json!({
        "table": table,
        "id": id,
        "created": true,
        "result": "created",
        "status": 201
    })
    .to_string()
}

/// `/insert`'s error reply (status 409): `{"error":{"type":…,"reason":…,"table":…},"status":409}`.
pub fn insert_error(table: &str, reason: &str) -> String {
    format!(
        "{{\"error\":{{\"type\":\"action_request_validation_exception\",\"reason\":{},\"table\":{}}},\"status\":409}}",
        serde_json::to_string(reason).unwrap_or_default(),
        serde_json::to_string(table).unwrap_or_default()
    )
}

/// A path searchd's Elasticsearch layer takes for a table name: 404 `index_not_found_exception`.
pub fn no_such_index(name: &str) -> String {
    format!(
        "{{\"error\":{{\"type\":\"index_not_found_exception\",\"reason\":\"no such index [{name}]\",\"table\":{}}},\"status\":404}}",
        serde_json::to_string(name).unwrap_or_default()
    )
}

/// `GET /`: searchd's Elasticsearch-style banner (keys sorted, as nlohmann::json dumps them;
/// record `http.18` shows its first 400 bytes and its length, 449).
pub fn root_banner() -> String {
    concat!(
        r#"{"cluster_name":"docker-cluster","cluster_uuid":"Z7igA6xDRDKCVwnMuyXCOQ","name":"4e9d933ebde2","#,
        r#""tagline":"You Know, for Search","version":{"build_date":"2019-10-22T17:16:35.176724Z","#,
        r#""build_flavor":"default","build_hash":"fc0eeb6e2c25915d63d871d344e3d0b45ea0ea1e","#,
        r#""build_snapshot":false,"build_type":"docker","lucene_version":"10.3.1","#,
        r#""minimum_index_compatibility_version":"6.0.0-beta1","#,
        r#""minimum_wire_compatibility_version":"6.8.0","number":"7.4.1"}}"#
    )
    .to_string()
}

/// `{"error":"…"}` for a refusal.
pub fn refusal_body(r: &Refusal) -> String {
    error_body(&r.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjson_error_positions() {
        // Golden records http.16 and http.25.
        assert_eq!(
            parse_error_text(b"{not json").as_deref(),
            Some("unable to parse: ot json")
        );
        let pipelined = b"t-Type: application/json\r\nContent-Length: 48\r\n\r\n{\"table\":\"t\"}";
        assert_eq!(cjson_error_offset(pipelined), Some(0));
        for ok in [
            &b"{}"[..],
            b" {\"a\": [1, 2.5e3, -0, \"x\\u00e9\", null, true, {}]} ",
            b"[]",
            b"\"s\"",
            b"12 trailing",
        ] {
            assert_eq!(
                cjson_error_offset(ok),
                None,
                "{}",
                String::from_utf8_lossy(ok)
            );
        }
        assert_eq!(cjson_error_offset(b""), Some(0));
        assert_eq!(cjson_error_offset(b"{\"a\":}"), Some(5));
        assert_eq!(cjson_error_offset(b"{\"a\" 1}"), Some(5));
        assert_eq!(cjson_error_offset(b"{\"a\":1"), Some(5));
        assert_eq!(cjson_error_offset(b"[1,]"), Some(3));
        assert_eq!(cjson_error_offset(b"\"bad \\q\""), Some(5));
    }

    #[test]
    fn insert_and_search_become_sql() {
        let req = insert(br#"{"table":"t","id":100,"doc":{"title":"ins","n":5}}"#).unwrap();
        assert_eq!(
            req,
            InsertRequest {
                sql: "INSERT INTO `t` (id, `title`, `n`) VALUES (100, 'ins', 5)".into(),
                table: "t".into(),
                id: Some(100),
            }
        );
        assert_eq!(
            insert_reply("t", 100),
            r#"{"table":"t","id":100,"created":true,"result":"created","status":201}"#
        );
        assert_eq!(
            insert_error("nosuch", "table 'nosuch' absent"),
            r#"{"error":{"type":"action_request_validation_exception","reason":"table 'nosuch' absent","table":"nosuch"},"status":409}"#
        );
        let req = search(br#"{"table":"t","query":{"match_all":{}},"limit":1}"#).unwrap();
        assert_eq!(
            req,
            SearchRequest {
                sql: "SELECT * FROM `t` LIMIT 0,1".into(),
                cutoff: 1
            }
        );
        assert_eq!(
            search(br#"{"table":"t","query":{"match":{"title":"hello"}}}"#)
                .unwrap()
                .sql,
            "SELECT * FROM `t` WHERE MATCH('@title hello') LIMIT 0,20"
        );
        assert_eq!(
            search(b"{not json").unwrap_err(),
            Refusal {
                status: 400,
                message: "unable to parse: ot json".into()
            }
        );
        assert_eq!(root_banner().len(), 449);
    }
}
