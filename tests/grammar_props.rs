//! Property tests of the grammar: it is total (no input panics it), `claim`
//! and `parse` agree, normalization is stable, and printing a statement and
//! parsing it again gives the same statement.
//!
//! `tests/grammar_soak.rs` runs the same properties over millions of inputs.

mod grammar_checks;

use grammar_checks::{any_text, check_any_input, check_round_trip, near_miss, statement};
use proptest::prelude::*;
use shardbuddy::sql::{parse, Statement};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_text_never_panics(sql in any_text(), daemon_error in any_text()) {
        check_any_input(&sql, &daemon_error)?;
    }

    #[test]
    fn near_miss_statements_are_judged_consistently(sql in near_miss(), daemon_error in any_text()) {
        check_any_input(&sql, &daemon_error)?;
    }

    #[test]
    fn printed_statements_parse_back_to_themselves(statement in statement()) {
        check_round_trip(&statement)?;
    }

    #[test]
    fn printed_statements_survive_case_and_spacing_changes(
        statement in statement(),
        upper in any::<bool>(),
    ) {
        // Keywords are case-insensitive and any whitespace separates words;
        // only quoted text and the cluster name keep their case.
        let printed = statement.to_string();
        let respaced = printed.replace(" TABLE ", "\n\tTABLE  ");
        let recased = if upper { respaced } else { lower_keywords(&respaced) };
        prop_assert_eq!(parse(&recased), Ok(statement), "rewritten as {:?}", recased);
    }
}

/// Lower-cases the leading keywords of a printed statement (up to the first
/// name), which must not change its meaning.
fn lower_keywords(printed: &str) -> String {
    const LEADING: &[&str] = &[
        "CREATE",
        "DROP",
        "SHOW",
        "SHARDING",
        "STATUS",
        "MASTER",
        "TRUNCATE",
        "FLUSH",
        "RAMCHUNK",
        "OPTIMIZE",
        "REBALANCE",
        "EXPLAIN",
        "STOP",
        "PAUSE",
        "RESUME",
        "TABLE",
    ];
    let mut words = printed.split(' ').peekable();
    let mut out = Vec::new();
    while let Some(word) = words.next_if(|w| LEADING.contains(&w.trim())) {
        out.push(word.to_ascii_lowercase());
    }
    out.extend(words.map(str::to_string));
    out.join(" ")
}

#[test]
fn deep_nesting_does_not_exhaust_the_stack() {
    let deep = format!(
        "create table c:t (a bit{}{}) shards='2' rf='2'",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    assert!(parse(&deep).is_ok());
    let unbalanced = format!(
        "create table c:t (a bit{}) shards='2' rf='2'",
        "(".repeat(100_000)
    );
    assert!(parse(&unbalanced).is_err());
}

#[test]
fn huge_statements_are_judged() {
    let options = "min_infix_len='2' ".repeat(20_000);
    let sql = format!("create table c:t (id bigint) {options} shards='2' rf='2'");
    let Ok(Statement::CreateSharded(create)) = parse(&sql) else {
        panic!("a long but valid statement is accepted");
    };
    assert_eq!(create.options.len(), 20_000);
}
