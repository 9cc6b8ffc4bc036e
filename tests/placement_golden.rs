//! Golden layouts and DDL: every placement vector and worked example of the
//! spec (`buddy-protocol-and-internals.md` §7.5, §8.2–§8.5, PHP Buddy's
//! `UtilTest`, `sharding-behaviour.md` §1.2), reproduced byte for byte.

use std::collections::{BTreeMap, BTreeSet};

use shardbuddy::ids::{NodeId, TableName};
use shardbuddy::placement::{
    create_steps, drop_steps, initial_placement, internal_cluster_name, wrapper_ddl, Action,
    ClusterMap, Placement, Step, TableDdl,
};

fn ids(names: &[&str]) -> Vec<NodeId> {
    names.iter().map(|n| NodeId::new(*n)).collect()
}

/// Node → its shards, nodes without shards included.
fn layout(nodes: &[NodeId], placement: &Placement) -> BTreeMap<String, Vec<u32>> {
    nodes
        .iter()
        .map(|n| (n.to_string(), placement.shards_on(n)))
        .collect()
}

fn expect_layout(nodes: &[&str], shards: u32, rf: u32, expected: &[(&str, &[u32])]) {
    let nodes = ids(nodes);
    let placement = initial_placement(&nodes, shards, rf).unwrap();
    let want: BTreeMap<String, Vec<u32>> = expected
        .iter()
        .map(|(n, s)| (n.to_string(), s.to_vec()))
        .collect();
    assert_eq!(
        layout(&nodes, &placement),
        want,
        "{nodes:?} shards={shards} rf={rf}"
    );
}

#[test]
fn spec_8_2_golden_vectors() {
    let all3: &[u32] = &[0, 1, 2, 3];
    // (nodes, shards, rf, node → shards)
    type Case<'a> = (&'a [&'a str], u32, u32, Vec<(&'a str, &'a [u32])>);
    let cases: Vec<Case> = vec![
        (
            &["A", "B", "C"],
            4,
            1,
            vec![("A", &[0, 3]), ("B", &[2]), ("C", &[1])],
        ),
        (
            &["A", "B", "C"],
            2,
            1,
            vec![("A", &[0]), ("B", &[]), ("C", &[1])],
        ),
        (&["A", "B"], 4, 1, vec![("A", &[0, 2]), ("B", &[1, 3])]),
        (
            &["A", "B", "C"],
            4,
            2,
            vec![("A", &[0, 1, 3]), ("B", &[1, 2, 3]), ("C", &[0, 2])],
        ),
        (
            &["A", "B", "C"],
            6,
            2,
            vec![
                ("A", &[0, 1, 3, 5]),
                ("B", &[1, 2, 3, 4]),
                ("C", &[0, 2, 4, 5]),
            ],
        ),
        (&["A", "B"], 4, 2, vec![("A", all3), ("B", all3)]),
        (
            &["A", "B", "C", "D"],
            3,
            2,
            vec![("A", &[0, 2]), ("B", &[1]), ("C", &[0, 2]), ("D", &[1])],
        ),
        (
            &["A", "B", "C", "D", "E"],
            2,
            2,
            vec![
                ("A", &[0]),
                ("B", &[1]),
                ("C", &[0]),
                ("D", &[1]),
                ("E", &[]),
            ],
        ),
        (
            &["A", "B", "C"],
            4,
            3,
            vec![("A", all3), ("B", all3), ("C", all3)],
        ),
    ];
    for (nodes, shards, rf, expected) in cases {
        expect_layout(nodes, shards, rf, &expected);
    }
}

#[test]
fn input_order_does_not_matter() {
    let a = initial_placement(&ids(&["C", "A", "B"]), 6, 2).unwrap();
    let b = initial_placement(&ids(&["A", "B", "C"]), 6, 2).unwrap();
    assert_eq!(a, b);
}

#[test]
fn php_util_test_five_nodes_sixty_shards_rf3() {
    // UtilTest::testCreateShardingSchemaConsistent, nodes '1'..'5'.
    let expected: [(&str, &[u32]); 5] = [
        (
            "1",
            &[
                0, 1, 3, 5, 8, 9, 10, 12, 13, 15, 16, 19, 20, 22, 23, 25, 28, 29, 30, 31, 34, 35,
                38, 39, 40, 42, 43, 45, 46, 49, 50, 52, 54, 55, 58, 59,
            ],
        ),
        (
            "2",
            &[
                1, 2, 4, 6, 7, 9, 10, 11, 14, 15, 17, 19, 21, 23, 24, 25, 26, 28, 31, 32, 34, 35,
                37, 39, 40, 41, 43, 46, 47, 48, 51, 52, 53, 55, 56, 58,
            ],
        ),
        (
            "3",
            &[
                0, 2, 4, 5, 7, 8, 11, 12, 13, 16, 17, 18, 20, 22, 24, 26, 27, 28, 31, 32, 33, 36,
                37, 38, 40, 42, 44, 46, 48, 49, 50, 53, 54, 55, 57, 59,
            ],
        ),
        (
            "4",
            &[
                1, 2, 3, 5, 6, 8, 11, 12, 14, 16, 18, 19, 20, 21, 23, 25, 27, 29, 30, 32, 33, 35,
                36, 39, 41, 42, 44, 45, 47, 49, 51, 52, 53, 56, 57, 59,
            ],
        ),
        (
            "5",
            &[
                0, 3, 4, 6, 7, 9, 10, 13, 14, 15, 17, 18, 21, 22, 24, 26, 27, 29, 30, 33, 34, 36,
                37, 38, 41, 43, 44, 45, 47, 48, 50, 51, 54, 56, 57, 58,
            ],
        ),
    ];
    expect_layout(&["1", "2", "3", "4", "5"], 60, 3, &expected);
    for (_, shards) in expected {
        assert_eq!(shards.len(), 36);
    }
}

fn n(k: u32) -> String {
    format!("127.0.0.1:{k}312")
}

#[test]
fn sharding_behaviour_1_2_layouts() {
    // (nodes, shards, rf, shard → node numbers)
    let cases: Vec<(u32, u32, u32, Vec<Vec<u32>>)> = vec![
        (2, 2, 1, vec![vec![1], vec![2]]),
        (2, 2, 2, vec![vec![1, 2], vec![1, 2]]),
        (3, 2, 1, vec![vec![1], vec![3]]),
        (3, 2, 2, vec![vec![1, 3], vec![1, 2]]),
        (4, 3, 2, vec![vec![1, 3], vec![2, 4], vec![1, 3]]),
        (4, 3, 3, vec![vec![1, 2, 3], vec![2, 3, 4], vec![1, 2, 4]]),
        (
            5,
            5,
            3,
            vec![
                vec![1, 3, 5],
                vec![1, 2, 4],
                vec![2, 3, 4],
                vec![1, 4, 5],
                vec![2, 3, 5],
            ],
        ),
    ];
    for (count, shards, rf, expected) in cases {
        let names: Vec<String> = (1..=count).map(n).collect();
        let nodes: Vec<NodeId> = names.iter().map(NodeId::new).collect();
        let placement = initial_placement(&nodes, shards, rf).unwrap();
        for (shard, want) in expected.iter().enumerate() {
            let want: Vec<NodeId> = want.iter().map(|k| NodeId::new(n(*k))).collect();
            assert_eq!(
                placement.replicas(shard as u32),
                want.as_slice(),
                "{count} nodes, shard {shard}"
            );
        }
    }
}

#[test]
fn sharding_behaviour_1_2_per_node_counts() {
    let cases = [
        (3u32, 6u32, 2u32, 4usize),
        (5, 60, 3, 36),
        (3, 3000, 3, 3000),
    ];
    for (count, shards, rf, per_node) in cases {
        let nodes: Vec<NodeId> = (1..=count).map(|k| NodeId::new(n(k))).collect();
        let placement = initial_placement(&nodes, shards, rf).unwrap();
        for node in &nodes {
            assert_eq!(placement.shards_on(node).len(), per_node);
        }
        let total: usize = placement.shards().map(|(_, r)| r.len()).sum();
        assert_eq!(total, (shards * rf) as usize);
    }
}

fn ddl(columns: Option<&str>) -> TableDdl {
    TableDdl {
        table: TableName::parse("t").unwrap(),
        columns: columns.map(str::to_string),
        extra: String::new(),
    }
}

/// The action a queue text reads back as (typed statements round-trip
/// through the text PHP Buddy writes).
fn sql(s: &str) -> Action {
    Action::from_query_text(s).expect("a non-empty statement")
}

/// (node, query, wait_for, rollback) rows of an expected step list; the
/// query `NOOP` stands for [`Action::Noop`].
fn assert_steps(got: &[Step], want: &[(&str, String, Vec<usize>, Option<String>)]) {
    for (i, (step, (node, query, wait_for, rollback))) in got.iter().zip(want).enumerate() {
        assert_eq!(step.node.as_str(), *node, "step {i} node");
        let action = if query == NOOP {
            Action::Noop
        } else {
            sql(query)
        };
        assert_eq!(step.action, action, "step {i} query");
        assert_eq!(&step.wait_for, wait_for, "step {i} wait_for");
        assert_eq!(
            step.rollback,
            rollback.as_deref().map(sql),
            "step {i} rollback"
        );
    }
    assert_eq!(got.len(), want.len());
}

const WRAPPER_ROLLBACK: &str = "DROP TABLE IF EXISTS t OPTION force=1";
const NOOP: &str = "NOOP";

#[test]
fn worked_example_a_local_table() {
    let node = NodeId::new("127.0.0.1:9312");
    let placement = initial_placement(std::slice::from_ref(&node), 3, 1).unwrap();
    let steps = create_steps(
        &ddl(Some("id bigint, title text")),
        &placement,
        std::slice::from_ref(&node),
    );
    let n = node.as_str();
    let shard = |k: u32| {
        (
            n,
            format!("CREATE TABLE IF NOT EXISTS system.t_s{k} (id bigint, title text) "),
            vec![],
            Some(format!("DROP TABLE IF EXISTS system.t_s{k}")),
        )
    };
    assert_steps(
        &steps,
        &[
            shard(0),
            shard(1),
            shard(2),
            (
                n,
                "CREATE TABLE `t` (id bigint, title text)\n\t\t\ttype='shard' local='system.t_s0' local='system.t_s1' local='system.t_s2'  ".into(),
                vec![],
                Some(WRAPPER_ROLLBACK.into()),
            ),
        ],
    );
}

const A: &str = "10.0.0.1:9312";
const B: &str = "10.0.0.2:9312";
const C: &str = "10.0.0.3:9312";
const H_AC: &str = "ab948c47f2712b5f1e9d26a254f22d05";
const H_AB: &str = "baf03a60ebc5930db9856aa3c82bb1b5";
const H_BC: &str = "cf2306b3d3a42e859dbcd900d51d7258";

fn example_b_placement() -> (Vec<NodeId>, Placement) {
    let nodes = ids(&[A, B, C]);
    let placement = initial_placement(&nodes, 4, 2).unwrap();
    (nodes, placement)
}

#[test]
fn worked_example_b_names() {
    let (nodes, placement) = example_b_placement();
    assert_eq!(
        layout(&nodes, &placement),
        BTreeMap::from([
            (A.to_string(), vec![0, 1, 3]),
            (B.to_string(), vec![1, 2, 3]),
            (C.to_string(), vec![0, 2]),
        ])
    );
    assert_eq!(internal_cluster_name(placement.replicas(0)).as_str(), H_AC);
    assert_eq!(internal_cluster_name(placement.replicas(1)).as_str(), H_AB);
    assert_eq!(internal_cluster_name(placement.replicas(2)).as_str(), H_BC);
}

fn example_b_wrapper() -> String {
    let agent = |nodes: [&str; 2], k: u32| {
        format!(
            "agent='{}:system.t_s{k}|{}:system.t_s{k}[retry_count=2,ha_strategy=noerrors]'",
            nodes[0], nodes[1]
        )
    };
    format!(
        "CREATE TABLE `t` (id bigint)\n\t\t\ttype='shard'  {} {} {} {} ",
        agent([A, C], 0),
        agent([A, B], 1),
        agent([A, B], 3),
        agent([B, C], 2)
    )
}

#[test]
fn worked_example_b_create_steps() {
    let (nodes, placement) = example_b_placement();
    let steps = create_steps(&ddl(Some("id bigint")), &placement, &nodes);
    let create_cluster = |h: &str| format!("CREATE CLUSTER IF NOT EXISTS {h} '{h}' as path");
    let join = |h: &str, at: &str| format!("JOIN CLUSTER {h} at '{at}' '{h}' as path");
    let delete = |h: &str| Some(format!("DELETE CLUSTER {h}"));
    let table = |k: u32| format!("CREATE TABLE IF NOT EXISTS system.t_s{k} (id bigint) ");
    let drop = |k: u32| Some(format!("DROP TABLE IF EXISTS system.t_s{k}"));
    let wrapper = example_b_wrapper();
    // Buddy's 16 items (spec §8.5), plus one step per shipped copy that
    // checks no table of its name is there and whose rollback removes the
    // copy, which the `ADD` waits for. Unlike Buddy
    // (A owns both of its sets, so C joins twice), each node owns one set and
    // joins one, and the steps come in phases across the sets: every node's
    // queue runs one statement at a time.
    let copy = |shard: u32| format!("SHARDBUDDY EXPECT ABSENT system.t_s{shard}");
    let want = vec![
        (A, create_cluster(H_AC), vec![], delete(H_AC)),
        (B, create_cluster(H_AB), vec![], delete(H_AB)),
        (C, create_cluster(H_BC), vec![], delete(H_BC)),
        (C, join(H_AC, A), vec![0], delete(H_AC)),
        (A, join(H_AB, B), vec![1], delete(H_AB)),
        (B, join(H_BC, C), vec![2], delete(H_BC)),
        (A, table(0), vec![], drop(0)),
        (C, copy(0), vec![], drop(0)),
        (B, table(1), vec![], drop(1)),
        (A, copy(1), vec![], drop(1)),
        (B, table(3), vec![], drop(3)),
        (A, copy(3), vec![], drop(3)),
        (C, table(2), vec![], drop(2)),
        (B, copy(2), vec![], drop(2)),
        (
            A,
            format!("ALTER CLUSTER {H_AC} ADD system.t_s0"),
            vec![7],
            Some(format!("ALTER CLUSTER {H_AC} DROP system.t_s0")),
        ),
        (
            B,
            format!("ALTER CLUSTER {H_AB} ADD system.t_s1,system.t_s3"),
            vec![9, 11],
            Some(format!("ALTER CLUSTER {H_AB} DROP system.t_s1,system.t_s3")),
        ),
        (
            C,
            format!("ALTER CLUSTER {H_BC} ADD system.t_s2"),
            vec![13],
            Some(format!("ALTER CLUSTER {H_BC} DROP system.t_s2")),
        ),
        (A, wrapper.clone(), vec![], Some(WRAPPER_ROLLBACK.into())),
        (B, wrapper.clone(), vec![], Some(WRAPPER_ROLLBACK.into())),
        (C, wrapper, vec![], Some(WRAPPER_ROLLBACK.into())),
    ];
    assert_steps(&steps, &want);
}

#[test]
fn worked_example_b_wrapper_is_the_same_on_every_node() {
    let (nodes, placement) = example_b_placement();
    for node in &nodes {
        assert_eq!(
            wrapper_ddl(&ddl(Some("id bigint")), &placement, node).render(),
            example_b_wrapper()
        );
    }
}

#[test]
fn existing_clusters_are_not_created_or_joined_again() {
    let (nodes, placement) = example_b_placement();
    let existing = BTreeSet::from([shardbuddy::ids::ClusterName::parse(H_AB).unwrap()]);
    let steps = shardbuddy::placement::create_steps_with_existing(
        &ddl(Some("id bigint")),
        &placement,
        &nodes,
        &existing,
    );
    let texts: Vec<String> = steps.iter().map(|s| s.action.to_query_text()).collect();
    assert!(!texts
        .iter()
        .any(|t| t.contains(&format!("CLUSTER IF NOT EXISTS {H_AB}"))));
    assert!(!texts
        .iter()
        .any(|t| t.starts_with(&format!("JOIN CLUSTER {H_AB}"))));
    assert!(texts.contains(&format!("ALTER CLUSTER {H_AB} ADD system.t_s1,system.t_s3")));
    // Buddy's 16 items plus 4 copy markers, minus the cluster's CREATE and JOIN.
    assert_eq!(steps.len(), 16 + 4 - 2);
}

#[test]
fn worked_example_c_rf1_wrappers() {
    let nodes = ids(&["A", "B", "C"]);
    let placement = initial_placement(&nodes, 4, 1).unwrap();
    let head = "CREATE TABLE `t` \n\t\t\ttype='shard' ";
    let cases = [
        ("A", "local='system.t_s0' local='system.t_s3' agent='B:system.t_s2' agent='C:system.t_s1' "),
        ("B", "local='system.t_s2' agent='A:system.t_s0' agent='A:system.t_s3' agent='C:system.t_s1' "),
        ("C", "local='system.t_s1' agent='A:system.t_s0' agent='A:system.t_s3' agent='B:system.t_s2' "),
    ];
    for (node, clauses) in cases {
        assert_eq!(
            wrapper_ddl(&ddl(None), &placement, &NodeId::new(node)).render(),
            format!("{head}{clauses}")
        );
    }
    let steps = create_steps(&ddl(None), &placement, &nodes);
    let creates: Vec<(String, String)> = steps
        .iter()
        .take(4)
        .map(|s| (s.node.to_string(), s.action.to_query_text()))
        .collect();
    let shard = |node: &str, k: u32| {
        (
            node.to_string(),
            format!("CREATE TABLE IF NOT EXISTS system.t_s{k}  "),
        )
    };
    assert_eq!(
        creates,
        vec![shard("A", 0), shard("A", 3), shard("B", 2), shard("C", 1)]
    );
    assert_eq!(steps.len(), 7);
}

#[test]
fn zero_shard_nodes_get_a_wrapper() {
    let nodes = ids(&["A", "B", "C"]);
    let placement = initial_placement(&nodes, 2, 1).unwrap();
    assert!(placement.shards_on(&NodeId::new("B")).is_empty());
    let steps = create_steps(&ddl(None), &placement, &nodes);
    let wrapper_nodes: Vec<&str> = steps
        .iter()
        .filter(|s| s.action.to_query_text().starts_with("CREATE TABLE `t`"))
        .map(|s| s.node.as_str())
        .collect();
    assert_eq!(wrapper_nodes, vec!["A", "B", "C"]);
}

#[test]
fn a_drop_deletes_each_replica_sets_cluster_on_another_node() {
    let nodes = ids(&["n1:9312", "n2:9312", "n3:9312"]);
    let placement = initial_placement(&nodes, 3, 2).unwrap();
    let table = TableName::parse("t").unwrap();
    let clusters = ClusterMap::derived([(&table, &placement)]);
    let steps = drop_steps(&table, &placement, &nodes, &clusters, &BTreeSet::new());
    // Per cluster: its owner deletes it, then its other member for itself.
    let mut by_cluster: std::collections::BTreeMap<String, Vec<&str>> = Default::default();
    for s in &steps {
        let query = s.action.to_query_text();
        if let Some(cluster) = query.strip_prefix("DELETE CLUSTER ") {
            by_cluster
                .entry(cluster.to_string())
                .or_default()
                .push(s.node.as_str());
        }
    }
    let owners: BTreeSet<&str> = by_cluster.values().map(|n| n[0]).collect();
    assert_eq!((by_cluster.len(), owners.len()), (3, 3), "{by_cluster:?}");
    assert!(by_cluster.values().all(|n| n.len() == 2), "{by_cluster:?}");
}

#[test]
fn drop_of_example_b() {
    let (nodes, placement) = example_b_placement();
    let elsewhere = BTreeSet::from([shardbuddy::ids::ClusterName::parse(H_BC).unwrap()]);
    let table = TableName::parse("t").unwrap();
    let clusters = ClusterMap::derived([(&table, &placement)]);
    let steps = drop_steps(&table, &placement, &nodes, &clusters, &elsewhere);
    let wrapper = |node| (node, WRAPPER_ROLLBACK.to_string(), vec![], None);
    let detach = |node, h: &str, tables: &str| {
        (
            node,
            format!("ALTER CLUSTER {h} DROP {tables}"),
            vec![],
            None,
        )
    };
    let drop = |node, k: u32, wait: Vec<usize>| {
        (
            node,
            format!("DROP TABLE IF EXISTS system.t_s{k}"),
            wait,
            None,
        )
    };
    let want = vec![
        wrapper(A),
        wrapper(B),
        wrapper(C),
        // One detach per replica set, clusters in name order.
        detach(A, H_AC, "system.t_s0"),             // 3
        detach(A, H_AB, "system.t_s1,system.t_s3"), // 4
        detach(B, H_BC, "system.t_s2"),             // 5
        drop(A, 0, vec![]),
        drop(C, 0, vec![3]),
        drop(A, 1, vec![]),
        drop(B, 1, vec![4]),
        drop(B, 2, vec![]),
        drop(C, 2, vec![5]),
        drop(A, 3, vec![]),
        drop(B, 3, vec![4]),
        // Deletions spread over the members (about 5 s each on searchd),
        // then each other member deletes the cluster for itself.
        (C, format!("DELETE CLUSTER {H_AC}"), vec![3], None), // 14
        (A, format!("DELETE CLUSTER {H_AC}"), vec![14], None),
        (A, format!("DELETE CLUSTER {H_AB}"), vec![], None), // 16
        (B, format!("DELETE CLUSTER {H_AB}"), vec![16], None),
    ];
    assert_steps(&steps, &want);
    assert!(!steps
        .iter()
        .any(|s| s.action.to_query_text().contains("pc.bootstrap")));
}
