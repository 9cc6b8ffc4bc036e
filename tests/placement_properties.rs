//! Property tests of the planner over generated topologies (up to 50 nodes,
//! 500 shards, RF 1–5, random failures, additions, drains, weights, sizes).
//!
//! Every run prints its seed; `SHARDBUDDY_SEED=<n>` replays a run and
//! `SHARDBUDDY_PROPTEST_CASES=<n>` changes the number of topologies.

mod placement_support;

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use shardbuddy::placement::document::{plan_document, PlanRequest};
use shardbuddy::placement::{
    plan_rebalance, rebalance_steps, ClusterMap, Model, NodeSpec, NodeState, StepContext, TableDdl,
    TableModel,
};

use placement_support::{check_plan, check_steps, generate, Limits};

fn env_u64(name: &str) -> Option<u64> {
    let raw = std::env::var(name).ok()?;
    Some(
        raw.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got '{raw}'")),
    )
}

/// Runs `property` on `cases` topology seeds drawn from one run seed.
fn run(name: &str, default_cases: u32, property: impl Fn(u64) -> Result<(), String>) {
    let seed =
        env_u64("SHARDBUDDY_SEED").unwrap_or_else(|| RandomState::new().build_hasher().finish());
    let cases = env_u64("SHARDBUDDY_PROPTEST_CASES").map_or(default_cases, |c| c as u32);
    eprintln!("{name}: {cases} cases, seed {seed} (replay with SHARDBUDDY_SEED={seed})");
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let result = runner.run(&any::<u64>(), |topology| {
        property(topology).map_err(|e| TestCaseError::fail(format!("topology {topology}: {e}")))
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(reason, topology)) => {
            panic!("{name} failed for topology {topology}: {reason}\nreplay with SHARDBUDDY_SEED={seed}")
        }
        Err(e) => panic!("{name}: {e}; replay with SHARDBUDDY_SEED={seed}"),
    }
}

/// The same model with the plan's target as the current placement.
fn settled(model: &Model, target: &shardbuddy::placement::Placement) -> Model {
    let nodes: Vec<NodeSpec> = model.nodes().cloned().collect();
    let table = &model.tables()[0];
    let mut next = TableModel::new(
        table.name.clone(),
        table.shards,
        table.rf,
        Some(target.clone()),
    );
    next.sizes = table.sizes.clone();
    Model::new(nodes, vec![next]).expect("a target is a consistent placement")
}

#[test]
fn plans_keep_every_invariant() {
    let limits = Limits {
        max_nodes: 50,
        max_shards: 500,
        max_rf: 5,
    };
    let copies = Cell::new(0u64);
    let above_bound = Cell::new(0u64);
    run("plans_keep_every_invariant", 10_000, |topology| {
        let model = generate(topology, limits);
        let plan = plan_rebalance(&model);
        let table = &plan.tables[0];
        let stats = check_plan(&model, table)?;
        copies.set(copies.get() + stats.copies);
        above_bound.set(above_bound.get() + stats.above_simple_bound);
        if plan_rebalance(&model) != plan {
            return Err("planning twice gave different plans".into());
        }
        let again = plan_rebalance(&settled(&model, &table.target));
        if !again.tables[0].moves.is_empty() || again.tables[0].target != table.target {
            return Err(format!(
                "planning on the target moves again: {:?}",
                again.tables[0].moves
            ));
        }
        Ok(())
    });
    eprintln!(
        "plans_keep_every_invariant: {} copies planned; {} plans needed more than the simple bound and were certified optimal",
        copies.get(),
        above_bound.get()
    );
}

#[test]
fn steps_keep_data_safe() {
    let limits = Limits {
        max_nodes: 12,
        max_shards: 40,
        max_rf: 4,
    };
    run("steps_keep_data_safe", 400, |topology| {
        let model = generate(topology, limits);
        let plan = plan_rebalance(&model);
        let table = &plan.tables[0];
        let ddl = TableDdl {
            table: table.table.clone(),
            columns: Some("id bigint, title text".into()),
            extra: String::new(),
        };
        let states = model.states();
        let clusters = match &table.current {
            Some(current) => ClusterMap::derived([(&table.table, current)]),
            None => ClusterMap::default(),
        };
        let ctx = StepContext {
            nodes: &states,
            clusters: &clusters,
            salt: "g",
        };
        let steps = rebalance_steps(&ddl, table, &ctx);
        check_steps(table, &steps, &states)?;
        // Without moves, the only work is giving new nodes their wrapper.
        if table.moves.is_empty()
            && steps
                .iter()
                .any(|s| states.get(&s.node) != Some(&NodeState::New))
        {
            return Err("steps without moves".into());
        }
        let request = PlanRequest {
            model: model.clone(),
            ddls: vec![ddl],
        };
        let first = serde_json::to_string(&plan_document(&request)).map_err(|e| e.to_string())?;
        let second = serde_json::to_string(&plan_document(&request)).map_err(|e| e.to_string())?;
        if first != second {
            return Err("the same request printed two different documents".into());
        }
        Ok(())
    });
}
