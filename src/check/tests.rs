use super::*;
use crate::sharding::daemon::ClusterReport;
use crate::sharding::holdings::routes_of;

fn node(n: u32) -> NodeId {
    NodeId::new(format!("127.0.0.1:{n}"))
}

fn table(name: &str) -> TableName {
    TableName::parse(name).unwrap()
}

fn shard(t: &str, n: u32) -> ShardTable {
    ShardTable::new(&table(t), n)
}

fn nodes(ids: &[u32]) -> BTreeSet<NodeId> {
    ids.iter().map(|n| node(*n)).collect()
}

/// Table `t`, two shards, RF 2 on nodes 1 and 2 (shard 0 on both, shard 1
/// on both), as CREATE leaves it.
fn placed() -> Placed {
    BTreeMap::from([(
        table("t"),
        BTreeMap::from([(node(1), [0, 1].into()), (node(2), [0, 1].into())]),
    )])
}

fn holdings(n: u32) -> Holdings {
    let ddl = "CREATE TABLE t (id bigint, title text)\n\t\t\ttype='shard'  \
               agent='127.0.0.1:1:system.t_s0|127.0.0.1:2:system.t_s0[retry_count=2,ha_strategy=noerrors]' \
               agent='127.0.0.1:1:system.t_s1|127.0.0.1:2:system.t_s1[retry_count=2,ha_strategy=noerrors]' ";
    Holdings {
        shards: [shard("t", 0), shard("t", 1)].into(),
        wrappers: BTreeMap::from([(table("t"), routes_of(ddl, &node(n)))]),
        clusters: vec![ClusterReport {
            name: ClusterName::parse("a1b2").unwrap(),
            status: "primary".into(),
            nodes_set: nodes(&[1, 2]),
            tables: vec!["system.t_s0".into(), "system.t_s1".into()],
        }],
    }
}

fn found(held: BTreeMap<NodeId, Holdings>) -> Vec<String> {
    let mut report = Report::default();
    compare(&placed(), &held, None, &mut report);
    report.discrepancies.sort();
    report
        .discrepancies
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn routes_are_read_from_locals_and_agent_mirrors() {
    let ddl = "CREATE TABLE t (id bigint)\n\t\t\ttype='shard' local='system.t_s0' \
               agent='127.0.0.1:2:system.t_s1' agent='127.0.0.1:2:system.t_s2|127.0.0.1:3:system.t_s2[retry_count=2]' comment='local=''x'''";
    let routes = routes_of(ddl, &node(1));
    assert_eq!(
        routes,
        BTreeMap::from([
            (shard("t", 0), nodes(&[1])),
            (shard("t", 1), nodes(&[2])),
            (shard("t", 2), nodes(&[2, 3])),
        ])
    );
}

#[test]
fn a_settled_table_is_consistent() {
    assert_eq!(
        found(BTreeMap::from([
            (node(1), holdings(1)),
            (node(2), holdings(2))
        ])),
        Vec::<String>::new()
    );
}

#[test]
fn each_planted_fault_is_one_line() {
    let mut one = holdings(1);
    one.shards.remove(&shard("t", 1));
    one.shards.insert(shard("u", 0));
    let mut two = holdings(2);
    two.wrappers
        .get_mut(&table("t"))
        .unwrap()
        .insert(shard("t", 0), nodes(&[2, 3]));
    two.clusters.push(ClusterReport {
        name: ClusterName::parse("e5").unwrap(),
        status: "primary".into(),
        nodes_set: nodes(&[2]),
        tables: vec![],
    });
    let mut three = Holdings::default();
    three.wrappers.insert(
        table("v"),
        routes_of(
            "CREATE TABLE v (id bigint) type='shard' agent='127.0.0.1:1:system.v_s0'",
            &node(3),
        ),
    );
    assert_eq!(
        found(BTreeMap::from([(node(1), one), (node(2), two), (node(3), three)])),
        [
            "missing copy: shard 1 of table 't' is placed on 127.0.0.1:1, which has no system.t_s1",
            "orphan shard table: 127.0.0.1:1 holds system.u_s0, which the placement does not put there",
            "stale wrapper: table 't' on 127.0.0.1:2 sends shard 0 to 127.0.0.1:2, 127.0.0.1:3 but it is held by 127.0.0.1:1, 127.0.0.1:2",
            "stray wrapper: 127.0.0.1:3 has a type='shard' table 'v' over shard tables, and the placement of 'v' does not name 127.0.0.1:3",
            "replication cluster e5 on 127.0.0.1:2 holds no table",
        ]
    );
}

#[test]
fn a_node_without_the_wrapper_or_the_cluster_is_reported() {
    let mut two = holdings(2);
    two.wrappers.clear();
    two.clusters.clear();
    assert_eq!(
        found(BTreeMap::from([(node(1), holdings(1)), (node(2), two)])),
        [
            "missing wrapper: table 't' is placed on 127.0.0.1:2, which has no type='shard' table 't'",
            "shard 0 of table 't' has several copies but is in no replication cluster on 127.0.0.1:2",
            "shard 1 of table 't' has several copies but is in no replication cluster on 127.0.0.1:2",
        ]
    );
}
