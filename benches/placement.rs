//! Planner timings at production sizes. Goal: each under 10 ms.
//!
//! `cargo bench --bench placement`

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use shardbuddy::ids::{NodeId, TableName};
use shardbuddy::placement::{
    initial_placement, plan_rebalance, Model, NodeSpec, NodeState, Placement, TableModel,
};

fn nodes(count: usize) -> Vec<NodeId> {
    (0..count)
        .map(|i| NodeId::new(format!("10.0.{}.{}:9312", i / 250, i % 250 + 1)))
        .collect()
}

fn model(ids: &[NodeId], states: impl Fn(usize) -> NodeState, placement: &Placement) -> Model {
    let specs = ids
        .iter()
        .enumerate()
        .map(|(i, id)| NodeSpec::new(id.clone(), states(i)))
        .collect();
    let table = TableModel::new(
        TableName::parse("t").unwrap(),
        3000,
        3,
        Some(placement.clone()),
    );
    Model::new(specs, vec![table]).unwrap()
}

fn benches(c: &mut Criterion) {
    let thousand = nodes(1000);
    c.bench_function("initial placement: 3000 shards x rf 3 on 1000 nodes", |b| {
        b.iter(|| initial_placement(black_box(&thousand), 3000, 3).unwrap())
    });

    let hundred = nodes(100);
    let placement = initial_placement(&hundred, 3000, 3).unwrap();
    let lost_one = model(
        &hundred,
        |i| {
            if i == 42 {
                NodeState::Inactive
            } else {
                NodeState::Active
            }
        },
        &placement,
    );
    c.bench_function("rebalance: 1 of 100 nodes lost, 3000 shards x rf 3", |b| {
        b.iter(|| plan_rebalance(black_box(&lost_one)))
    });

    let hundred_and_ten = nodes(110);
    let added_ten = model(
        &hundred_and_ten,
        |i| {
            if i >= 100 {
                NodeState::New
            } else {
                NodeState::Active
            }
        },
        &placement,
    );
    c.bench_function(
        "rebalance: 10 nodes added to 100, 3000 shards x rf 3",
        |b| b.iter(|| plan_rebalance(black_box(&added_ten))),
    );
}

criterion_group!(placement, benches);
criterion_main!(placement);
