//! Runs every statement of the corpus (`grammar/cases/`) through
//! `sql::claim` with the daemon error it arrives with, and checks that every
//! accepted statement prints back to itself.

mod grammar_support;

use grammar_support::{assert_outcomes, load, Case, Expect};
use shardbuddy::sql::{claim, parse};

/// The corpus must cover at least this many statements.
const MIN_CASES: usize = 150;

fn outcome_of(case: &Case) -> Expect {
    match claim(&case.sql, &case.daemon_error) {
        None => Expect::NotClaimed,
        Some(Err(err)) => Expect::Error(err.to_string()),
        Some(Ok(statement)) => {
            Expect::Ok(serde_json::to_value(&statement).expect("statements serialize"))
        }
    }
}

#[test]
fn every_corpus_case_has_its_expected_outcome() {
    let cases = load();
    assert!(
        cases.len() >= MIN_CASES,
        "only {} cases in the corpus",
        cases.len()
    );
    assert_outcomes(&cases, |case| Ok(outcome_of(case)));
}

#[test]
fn every_accepted_corpus_statement_prints_back_to_itself() {
    for case in load() {
        if let Some(Ok(statement)) = claim(&case.sql, &case.daemon_error) {
            let printed = statement.to_string();
            assert_eq!(
                parse(&printed),
                Ok(statement),
                "{case}\n    printed as {printed:?}"
            );
        }
    }
}

#[test]
fn the_corpus_covers_all_three_outcomes_and_both_gates() {
    let cases = load();
    let count = |f: fn(&Expect) -> bool| cases.iter().filter(|c| f(&c.expect)).count();
    assert!(count(|e| matches!(e, Expect::Ok(_))) >= 40);
    assert!(count(|e| matches!(e, Expect::Error(_))) >= 40);
    assert!(count(|e| matches!(e, Expect::NotClaimed)) >= 25);
    assert!(cases.iter().filter(|c| c.own_daemon_error).count() >= 10);
}
