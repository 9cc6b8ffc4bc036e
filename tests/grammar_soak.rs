//! The long robustness run: the properties of `grammar_props.rs` over
//! millions of generated inputs. Ignored by default; run it with
//!
//! ```text
//! cargo test --release --test grammar_soak -- --ignored --nocapture
//! ```
//!
//! It stops after `SHARDBUDDY_SOAK_CASES` inputs (default 10 000 000) or
//! `SHARDBUDDY_SOAK_SECONDS` seconds (default 600), whichever comes first,
//! and prints how many inputs it checked. `SHARDBUDDY_SEED` repeats a run.
//! (With a nightly toolchain, `fuzz/` has the coverage-guided equivalent.)

mod grammar_checks;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use grammar_checks::{any_text, check_any_input, check_round_trip, near_miss, statement};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// One generated input and the property it is checked against.
#[derive(Debug, Clone)]
enum Input {
    Text { sql: String, daemon_error: String },
    Printed(shardbuddy::sql::Statement),
}

fn input() -> impl Strategy<Value = Input> {
    let text = prop_oneof![any_text(), near_miss()];
    prop_oneof![
        4 => (text, any_text()).prop_map(|(sql, daemon_error)| Input::Text { sql, daemon_error }),
        1 => statement().prop_map(Input::Printed),
    ]
}

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
#[ignore = "long run; see the file's doc comment"]
fn millions_of_inputs_keep_every_property() {
    let max_cases = setting("SHARDBUDDY_SOAK_CASES", 10_000_000);
    let max_time = Duration::from_secs(setting("SHARDBUDDY_SOAK_SECONDS", 600));
    let clock_seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let seed = setting("SHARDBUDDY_SEED", clock_seed as u64);
    println!("grammar soak: seed {seed} (repeat with SHARDBUDDY_SEED={seed})");

    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let strategy = input();
    let started = Instant::now();
    let mut checked = 0u64;
    while checked < max_cases && started.elapsed() < max_time {
        let value = strategy
            .new_tree(&mut runner)
            .expect("inputs can be generated")
            .current();
        let verdict = match &value {
            Input::Text { sql, daemon_error } => check_any_input(sql, daemon_error),
            Input::Printed(statement) => check_round_trip(statement),
        };
        if let Err(failure) = verdict {
            panic!("after {checked} inputs (seed {seed}): {failure}\ninput: {value:?}");
        }
        checked += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("grammar soak: {checked} inputs in {elapsed:.1} s, every property held");
}
