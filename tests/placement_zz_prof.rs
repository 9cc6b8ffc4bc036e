use shardbuddy::ids::{NodeId, TableName};
use shardbuddy::placement::*;
use std::time::Instant;
#[test]
fn prof() {
    let ids: Vec<NodeId> = (0..110).map(|i| NodeId::new(format!("10.0.{}.{}:9312", i / 250, i % 250 + 1))).collect();
    let placement = initial_placement(&ids[..100], 3000, 3).unwrap();
    let specs: Vec<NodeSpec> = ids.iter().enumerate().map(|(i, id)| NodeSpec::new(id.clone(), if i >= 100 { NodeState::New } else { NodeState::Active })).collect();
    let m = Model::new(specs, vec![TableModel::new(TableName::parse("t").unwrap(), 3000, 3, Some(placement.clone()))]).unwrap();
    for _ in 0..3 { let t = Instant::now(); let p = plan_rebalance(&m); eprintln!("plan {:?} moves {}", t.elapsed(), p.tables[0].moves.len()); }
    let t = Instant::now(); for _ in 0..10 { let _ = placement.clone(); } eprintln!("10 clones {:?}", t.elapsed());
}
