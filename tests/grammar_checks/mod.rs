//! The grammar's robustness properties and the proptest generators they run
//! on: arbitrary text, near-miss statements assembled from the grammar's own
//! vocabulary, and valid statements built as ASTs. Used by
//! `grammar_props.rs` (a few thousand cases per test) and `grammar_soak.rs`
//! (millions).

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;
use shardbuddy::ids::{ClusterName, TableName};
use shardbuddy::sql::{
    claim, normalize_payload, parse, CreateSharded, DropSharded, QualifiedName, SqlError,
    Statement, StopMode, TableOption,
};
use shardbuddy::sqltext::quote_literal;

/// A daemon error that routes every kind of statement, so that `claim` with
/// it must agree with the gate-less `parse`.
pub const ROUTES_EVERYTHING: &str = "'shards' and 'rf' options require Buddy; \
     P03: syntax error near ':t'; contains system table; requires an existing RT table";

/// Everything that must hold for any input at all: normalization is stable,
/// `claim` agrees with `parse`, errors are one-line messages and accepted
/// statements print back to themselves.
pub fn check_any_input(sql: &str, daemon_error: &str) -> Result<(), TestCaseError> {
    let normalized = normalize_payload(sql);
    prop_assert_eq!(normalize_payload(&normalized), normalized.clone());

    let parsed = parse(sql);
    let routed = claim(sql, ROUTES_EVERYTHING);
    let unclaimed = matches!(&parsed, Err(err) if err.is_not_claimed());
    match &routed {
        None => prop_assert!(unclaimed, "claim: None, parse: {:?}", parsed),
        Some(result) => prop_assert_eq!(result, &parsed),
    }
    // Whatever the daemon said, a claim is either nothing or the same verdict.
    if let Some(result) = claim(sql, daemon_error) {
        prop_assert_eq!(&result, &parsed);
    }
    match parsed {
        Ok(statement) => check_round_trip(&statement)?,
        Err(err) => check_message(&err)?,
    }
    Ok(())
}

fn check_message(err: &SqlError) -> Result<(), TestCaseError> {
    let message = err.to_string();
    prop_assert!(!message.is_empty());
    prop_assert!(!message.contains('\n'), "one-line messages: {:?}", message);
    Ok(())
}

/// Printing a statement and parsing it again gives the same statement.
pub fn check_round_trip(statement: &Statement) -> Result<(), TestCaseError> {
    let printed = statement.to_string();
    prop_assert_eq!(
        parse(&printed),
        Ok(statement.clone()),
        "printed as {:?}",
        printed
    );
    Ok(())
}

/// Words that are keywords somewhere in the grammar; as names they test
/// that keywords never capture a name where a name is expected.
const KEYWORDS: &[&str] = &[
    "if",
    "not",
    "exists",
    "table",
    "shards",
    "rf",
    "timeout",
    "status",
    "master",
    "graceful",
    "immediate",
    "option",
    "rebalance",
    "like",
    "create",
    "drop",
    "sharding",
    "index",
];

/// Fragments the near-miss generator strings together.
const VOCABULARY: &[&str] = &[
    "CREATE",
    "create",
    "TABLE",
    "table",
    "IF",
    "NOT",
    "EXISTS",
    "DROP",
    "SHOW",
    "SHARDING",
    "STATUS",
    "MASTER",
    "TRUNCATE",
    "RTINDEX",
    "FLUSH",
    "RAMCHUNK",
    "OPTIMIZE",
    "INDEX",
    "OPTION",
    "REBALANCE",
    "REBALANSE",
    "EXPLAIN",
    "STOP",
    "PAUSE",
    "RESUME",
    "GRACEFUL",
    "IMMEDIATE",
    "LIKE",
    "shards",
    "SHARDS",
    "rf",
    "RF",
    "timeout",
    "engine",
    "min_infix_len",
    "t",
    "c",
    "T1",
    "_x",
    "`t`",
    "`1x`",
    "``",
    "tëst",
    "товары",
    "1t",
    "(",
    ")",
    ",",
    "=",
    ":",
    ";",
    ".",
    "?",
    "'",
    "\"",
    "`",
    "\\",
    "/*",
    "*/",
    "/*!",
    "--",
    "#",
    "'2'",
    "'0'",
    "''",
    "'3001'",
    "'9999999999999999999999'",
    "'a'",
    "'\\''",
    "'\\\\'",
    "'-1'",
    "\"3\"",
    "2",
    "bigint",
    "text",
    "bit(8)",
    "float_vector",
    "knn_dims='4'",
    "id",
    "(((((",
    ")))))",
];

const SEPARATORS: &[&str] = &[
    " ", " ", " ", "", "\n", "\t", "\r\n", "/**/", "-- c\n", "#c\n",
];

/// Statements assembled from the grammar's words, mostly wrong in some way.
pub fn near_miss() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        8 => select(VOCABULARY).prop_map(str::to_string),
        1 => "[a-zA-Z_][a-zA-Z0-9_]{0,6}",
        1 => "'[^']{0,6}'",
        1 => any::<char>().prop_map(String::from),
    ];
    vec((piece, select(SEPARATORS)), 0..24).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(piece, sep)| format!("{piece}{sep}"))
            .collect()
    })
}

/// Any text, including what arbitrary bytes decode to.
pub fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        vec(any::<u8>(), 0..200).prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn identifier() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z_][A-Za-z0-9_]{0,12}",
        1 => select(KEYWORDS).prop_map(str::to_string),
    ]
}

fn table() -> impl Strategy<Value = TableName> {
    identifier().prop_map(|name| TableName::parse(&name).expect("valid identifier"))
}

fn cluster() -> impl Strategy<Value = ClusterName> {
    identifier().prop_map(|name| ClusterName::parse(&name).expect("valid identifier"))
}

fn qualified() -> impl Strategy<Value = QualifiedName> {
    (option::of(cluster()), table()).prop_map(|(cluster, table)| QualifiedName { cluster, table })
}

fn columns() -> impl Strategy<Value = String> {
    let column = select(
        &[
            "id bigint",
            "title text indexed stored",
            "s string attribute",
            "flags bit(8)",
            "v float_vector knn_type='hnsw' knn_dims='4' hnsw_similarity='l2'",
            "c int engine='columnar'",
            "m model_name='a)b'",
            "id",
        ][..],
    );
    vec(column, 1..5).prop_map(|columns| columns.join(", "))
}

fn table_option() -> impl Strategy<Value = TableOption> {
    let name = identifier().prop_filter("not a sharding option", |name| {
        !["shards", "rf", "timeout"].contains(&name.to_ascii_lowercase().as_str())
    });
    (name, any::<String>()).prop_map(|(name, value)| TableOption {
        name: name.to_ascii_lowercase(),
        value,
    })
}

fn create() -> impl Strategy<Value = CreateSharded> {
    (
        any::<bool>(),
        option::of(cluster()),
        table(),
        option::of(columns()),
        vec(table_option(), 0..4),
        1u32..=3000,
        1u32..,
        option::of(1u32..),
    )
        .prop_map(
            |(if_not_exists, cluster, table, columns, options, shards, rf, timeout)| {
                // Without a cluster only rf 1 is valid.
                let rf = if cluster.is_some() { rf } else { 1 };
                CreateSharded {
                    if_not_exists,
                    cluster,
                    table,
                    columns,
                    options,
                    shards,
                    rf,
                    timeout,
                }
            },
        )
}

fn optimize_option() -> impl Strategy<Value = (String, String)> {
    let value = prop_oneof![
        "[0-9]{1,5}",
        "[a-z_][a-z0-9_]{0,5}",
        any::<String>().prop_map(|v| quote_literal(&v)),
    ];
    (identifier().prop_map(|k| k.to_ascii_lowercase()), value)
}

/// Every kind of valid statement.
pub fn statement() -> impl Strategy<Value = Statement> {
    let mode = prop_oneof![Just(StopMode::Graceful), Just(StopMode::Immediate)];
    prop_oneof![
        create().prop_map(Statement::CreateSharded),
        (any::<bool>(), option::of(cluster()), table()).prop_map(|(if_exists, cluster, table)| {
            Statement::DropSharded(DropSharded {
                if_exists,
                cluster,
                table,
            })
        }),
        option::of(qualified()).prop_map(|target| Statement::ShowShardingStatus { target }),
        Just(Statement::ShowShardingMaster),
        Just(Statement::ShowShardingHealth),
        table().prop_map(|table| Statement::Truncate { table }),
        table().prop_map(|table| Statement::FlushRamchunk { table }),
        (table(), vec(optimize_option(), 0..3))
            .prop_map(|(table, options)| Statement::Optimize { table, options }),
        qualified().prop_map(|target| Statement::Rebalance { target }),
        option::of(qualified()).prop_map(|target| Statement::ExplainRebalance { target }),
        (qualified(), 0u32..3000)
            .prop_map(|(target, shard)| Statement::ExplainShard { target, shard }),
        (qualified(), mode).prop_map(|(target, mode)| Statement::StopRebalance { target, mode }),
        qualified().prop_map(|target| Statement::PauseRebalance { target }),
        qualified().prop_map(|target| Statement::ResumeRebalance { target }),
        option::of(qualified()).prop_map(|target| Statement::ShowRebalanceStatus { target }),
        (cluster(), "[a-z0-9.:'_-]{0,20}", any::<bool>()).prop_map(|(cluster, node, drain)| {
            Statement::DrainNode {
                cluster,
                node,
                drain,
            }
        }),
    ]
}
