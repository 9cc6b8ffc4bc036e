//! The cost model (`sim { profile = realistic }` / `MANTICORE_SIM_PROFILE`): statements take as
//! long as on searchd with Galera (facts.md §3, §7, §8) under `realistic`, and no time under the
//! default `fast`. These tests measure durations on purpose — the cost model is what they test —
//! with bounds generous enough for a loaded machine.

mod common;

use std::time::{Duration, Instant};

use common::{conn, exec};
use manticore_sim::cost::{self, Op, Profile};
use manticore_sim::testkit::{NodeOptions, SimNode};
use mysql_async::prelude::Queryable;

fn realistic_by_file() -> NodeOptions {
    NodeOptions {
        sim_lines: vec!["profile = realistic".into()],
        ..Default::default()
    }
}

fn realistic_by_env() -> NodeOptions {
    NodeOptions {
        env: vec![(cost::PROFILE_ENV.into(), "realistic".into())],
        ..Default::default()
    }
}

async fn timed(c: &mut mysql_async::Conn, sql: &str) -> Duration {
    let started = Instant::now();
    exec(c, sql).await;
    started.elapsed()
}

fn at_least(took: Duration, op: Op, what: &str) {
    let cost = Profile::Realistic.cost(op);
    assert!(took >= cost, "{what} took {took:?}, cost {cost:?}");
    assert!(
        took < cost * 2 + Duration::from_secs(2),
        "{what} took {took:?}, cost {cost:?}"
    );
}

async fn status(c: &mut mysql_async::Conn, counter: &str) -> String {
    let rows: Vec<(String, String)> = c
        .query(format!("SHOW STATUS LIKE '{counter}'"))
        .await
        .unwrap();
    rows.into_iter().next().map(|(_, v)| v).unwrap_or_default()
}

/// Two members under `realistic` (one chose it in its config, the other from the
/// environment): each cluster statement is charged what facts.md measured, and a dead peer
/// is noticed as late as Galera notices it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn realistic_profile_charges_searchd_timings() {
    let n1 = SimNode::start(1, realistic_by_file()).unwrap();
    let mut n2 = SimNode::start(2, realistic_by_env()).unwrap();
    std::fs::create_dir_all(n1.data_dir().join("g")).unwrap();
    std::fs::create_dir_all(n2.data_dir().join("g")).unwrap();
    let mut c1 = conn(&n1).await;
    let mut c2 = conn(&n2).await;
    at_least(
        timed(&mut c1, "CREATE TABLE t (title text)").await,
        Op::CreateTable,
        "CREATE TABLE",
    );
    at_least(
        timed(&mut c1, "CREATE CLUSTER c").await,
        Op::CreateCluster,
        "CREATE CLUSTER",
    );
    at_least(
        timed(&mut c1, "ALTER CLUSTER c ADD t").await,
        Op::AlterAdd { tables: 1 },
        "ALTER CLUSTER ADD",
    );
    let join = format!("JOIN CLUSTER c AT '{}'", n1.node_id());
    at_least(
        timed(&mut c2, &join).await,
        Op::StateTransfer { tables: 1, rows: 0 },
        "JOIN CLUSTER",
    );
    at_least(
        timed(&mut c1, "ALTER CLUSTER c DROP t").await,
        Op::AlterDrop,
        "ALTER CLUSTER DROP",
    );
    // Issued on the member that does not sequence the cluster: it waits for the leader's cost.
    at_least(
        timed(&mut c2, "DELETE CLUSTER c").await,
        Op::DeleteShared,
        "DELETE CLUSTER of two members",
    );

    // A second cluster of the two; then n2 dies and n1 loses its primary component only
    // after Galera's failure detection (4.6–6.5 s in the facts).
    exec(&mut c1, "CREATE CLUSTER g 'g' as path").await;
    exec(
        &mut c2,
        &format!("JOIN CLUSTER g AT '{}' 'g' as path", n1.node_id()),
    )
    .await;
    assert_eq!(status(&mut c1, "cluster_g_size").await, "2");
    drop(c2);
    let killed = Instant::now();
    n2.kill();
    loop {
        let s = status(&mut c1, "cluster_g_status").await;
        if s == "non-primary" {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(20),
            "still {s} after the peer died"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let detected = killed.elapsed();
    assert!(
        (Duration::from_millis(4600)..Duration::from_secs(9)).contains(&detected),
        "non-primary after {detected:?}, searchd: 5.8–6.5 s"
    );
    at_least(
        timed(&mut c1, "DELETE CLUSTER g").await,
        Op::DeleteLocal,
        "DELETE CLUSTER on a non-primary member",
    );
}

/// The default profile charges nothing: the same statements are quick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_profile_charges_nothing() {
    let n1 = SimNode::start(1, NodeOptions::default()).unwrap();
    let n2 = SimNode::start(2, NodeOptions::default()).unwrap();
    let mut c1 = conn(&n1).await;
    let mut c2 = conn(&n2).await;
    let started = Instant::now();
    exec(&mut c1, "CREATE TABLE t (title text)").await;
    exec(&mut c1, "CREATE CLUSTER c").await;
    exec(&mut c1, "ALTER CLUSTER c ADD t").await;
    exec(&mut c2, &format!("JOIN CLUSTER c AT '{}'", n1.node_id())).await;
    exec(&mut c1, "ALTER CLUSTER c DROP t").await;
    let delete = timed(&mut c1, "DELETE CLUSTER c").await;
    let all = started.elapsed();
    assert!(
        delete < Duration::from_millis(1000),
        "DELETE took {delete:?}"
    );
    assert!(all < Duration::from_secs(3), "the sequence took {all:?}");
}

/// Cluster-changing statements of one cluster are serialised (Galera's TOI); statements on
/// different clusters are charged in parallel.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_changes_are_serialised_per_cluster() {
    const TABLES: usize = 100;
    let node = SimNode::start(1, realistic_by_file()).unwrap();
    for dir in ["a", "b"] {
        std::fs::create_dir_all(node.data_dir().join(dir)).unwrap();
    }
    let mut c = conn(&node).await;
    let create: Vec<String> = (0..TABLES * 4)
        .map(|i| format!("CREATE TABLE t{i} (title text)"))
        .collect();
    c.query_drop(create.join("; ")).await.unwrap();
    exec(&mut c, "CREATE CLUSTER a 'a' as path").await;
    exec(&mut c, "CREATE CLUSTER b 'b' as path").await;
    let add = |cluster: &str, batch: usize| {
        let tables: Vec<String> = (batch * TABLES..(batch + 1) * TABLES)
            .map(|i| format!("t{i}"))
            .collect();
        format!("ALTER CLUSTER {cluster} ADD {}", tables.join(","))
    };
    let one = Profile::Realistic.cost(Op::AlterAdd { tables: TABLES });
    let concurrently = |first: String, second: String| {
        let node = &node;
        async move {
            let mut x = conn(node).await;
            let mut y = conn(node).await;
            let started = Instant::now();
            tokio::join!(exec(&mut x, &first), exec(&mut y, &second));
            started.elapsed()
        }
    };
    let same = concurrently(add("a", 0), add("a", 1)).await;
    assert!(same >= one * 2, "two ADDs to one cluster took {same:?}");
    let different = concurrently(add("a", 2), add("b", 3)).await;
    assert!(different >= one, "{different:?}");
    assert!(
        different < one * 2 - Duration::from_millis(200),
        "two ADDs to different clusters took {different:?} (one: {one:?})"
    );
}
