//! Feeds arbitrary bytes to the grammar. The first line is the daemon's
//! error, the rest the statement. Besides "never panics", it checks the
//! properties of `tests/grammar_props.rs`: normalization is stable, `claim`
//! agrees with `parse`, messages are one line, and every accepted statement
//! prints back to itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardbuddy::sql::{claim, normalize_payload, parse};

/// Routes every kind of statement, so `claim` with it must equal `parse`.
const ROUTES_EVERYTHING: &str = "'shards' and 'rf' options require Buddy; \
     P03: syntax error near ':t'; contains system table; requires an existing RT table";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (daemon_error, sql) = text.split_once('\n').unwrap_or(("", &text));

    let normalized = normalize_payload(sql);
    assert_eq!(normalize_payload(&normalized), normalized);

    let parsed = parse(sql);
    match claim(sql, ROUTES_EVERYTHING) {
        None => assert!(matches!(&parsed, Err(err) if err.is_not_claimed())),
        Some(result) => assert_eq!(result, parsed),
    }
    if let Some(result) = claim(sql, daemon_error) {
        assert_eq!(result, parsed);
    }
    match parsed {
        Ok(statement) => assert_eq!(parse(&statement.to_string()), Ok(statement)),
        Err(err) => {
            let message = err.to_string();
            assert!(!message.is_empty() && !message.contains('\n'));
        }
    }
});
