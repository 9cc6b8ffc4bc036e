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

#[test]
fn a_replication_cluster_that_is_not_primary_is_reported_with_its_status() {
    let mut two = holdings(2);
    two.clusters[0].status = "non-primary".into();
    let mut one = holdings(1);
    one.clusters[0].status = String::new();
    assert_eq!(
        found(BTreeMap::from([(node(1), one), (node(2), two)])),
        [
            "replication cluster a1b2 is in no known state on 127.0.0.1:1",
            "replication cluster a1b2 is non-primary on 127.0.0.1:2",
        ]
    );
}

mod through_a_node {
    use std::sync::Arc;

    use super::*;
    use crate::sharding::records::{GroupKind, GroupName, GroupRecord, OpKind, TableState};
    use crate::sharding::testing::{
        counters, identity, kv_node, local_request, lost, put_key, table as reply, FakeNode, Keys,
    };

    type Reply = Result<Vec<crate::protocol::ResultSet>, ClientError>;

    fn me() -> NodeId {
        NodeId::new("127.0.0.1:9312")
    }

    /// Local sharding metadata, with nothing in it yet.
    fn local_keys() -> Keys {
        let keys = Keys::default();
        put_key(&keys, "cluster", &"");
        keys
    }

    /// The placement reply: `rows` of (node, shards).
    fn placement(rows: &[(&str, &str)]) -> Reply {
        let rows: Vec<[&str; 4]> = rows.iter().map(|(n, s)| ["", *n, "t", *s]).collect();
        let rows: Vec<&[&str]> = rows.iter().map(|r| &r[..]).collect();
        reply(&["cluster", "node", "table", "shards"], &rows)
    }

    fn is_placement(sql: &str) -> bool {
        sql.starts_with("SELECT `cluster`, `node`, `table`, `shards` FROM system.sharding_table")
    }

    fn lines(report: &Report) -> Vec<String> {
        report
            .discrepancies
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[tokio::test]
    async fn operations_still_under_way_are_reported() {
        let keys = local_keys();
        let group = GroupName::new(GroupKind::Rebalance, &table("t"), 1_000);
        put_key(
            &keys,
            &format!("group:{group}"),
            &GroupRecord::committed(GroupKind::Rebalance, &table("t"), 1, &me(), 0),
        );
        let request = local_request("r", me().as_str());
        put_key(
            &keys,
            "table:u",
            &TableState::requested(OpKind::Create, request, "id bigint".into(), String::new()),
        );
        // Nothing is placed; this node's holdings cannot be read (it holds
        // nothing, so that is no discrepancy).
        let node = kv_node(keys, |sql, _| {
            if is_placement(sql) {
                Some(placement(&[]))
            } else {
                sql.starts_with("SHOW ").then(lost)
            }
        });
        let report = check(Arc::new(node)).await.unwrap();
        assert_eq!(
            lines(&report),
            [
                format!("operation {group} (rebalance of table 't') is still committed"),
                "the request for table 'u' is still requested".to_string(),
            ]
        );
        assert_eq!(report.unread.keys().collect::<Vec<_>>(), [&me()]);
    }

    #[tokio::test]
    async fn a_holder_that_cannot_be_read_is_reported() {
        let node = kv_node(local_keys(), |sql, _| {
            if is_placement(sql) {
                Some(placement(&[("127.0.0.1:9312", "0,1")]))
            } else {
                sql.starts_with("SHOW ").then(lost)
            }
        });
        let report = check(Arc::new(node)).await.unwrap();
        assert_eq!(
            lines(&report),
            [
                "node 127.0.0.1:9312 holds copies but cannot be read: connection to \
              http://fake/sql?mode=raw lost before the reply: connection reset"
            ]
        );
    }

    #[tokio::test]
    async fn copies_holding_different_row_counts_are_reported() {
        // Both holders hold system.t_s0; the first copy counted has 10 rows,
        // the second 12.
        let counted = Arc::new(std::sync::atomic::AtomicU64::new(10));
        let node = kv_node(local_keys(), move |sql, _| {
            Some(if is_placement(sql) {
                placement(&[("127.0.0.1:9312", "0"), ("127.0.0.1:9412", "0")])
            } else if sql == "SHOW TABLES FROM system" {
                reply(&["Table"], &[&["system.t_s0"]])
            } else if sql == "SHOW TABLES" {
                reply(&["Table", "Type"], &[])
            } else if sql == "SHOW STATUS LIKE 'cluster%'" {
                counters(&[])
            } else if sql == "SELECT COUNT(*) FROM system.t_s0" {
                let n = counted.fetch_add(2, std::sync::atomic::Ordering::SeqCst);
                reply(&["count(*)"], &[&[&n.to_string()]])
            } else {
                return None;
            })
        });
        let report = check(Arc::new(node)).await.unwrap();
        assert!(
            lines(&report).contains(
                &"the copies of shard 0 of table 't' hold different row counts \
                  (127.0.0.1:9312: 10, 127.0.0.1:9412: 12)"
                    .to_string()
            ),
            "{:?}",
            lines(&report)
        );
    }

    #[tokio::test]
    async fn a_check_that_cannot_start_says_what_it_could_not_read() {
        let node = FakeNode::new(|_, _| lost());
        let err = check(Arc::new(node)).await.err().unwrap();
        assert_eq!(
            err.to_string(),
            "cannot read node the entry node: connection to http://fake/sql?mode=raw lost before \
             the reply: connection reset"
        );
        let node = FakeNode::new(|sql, _| identity(sql).unwrap_or_else(lost));
        let err = check(Arc::new(node)).await.err().unwrap();
        assert_eq!(
            err.to_string(),
            "cannot read the sharding metadata through 127.0.0.1:9312: connection to \
             http://fake/sql?mode=raw lost before the reply: connection reset"
        );
    }
}
