//! How daemon errors are quoted in messages shardbuddy writes itself: the
//! daemon's words stay, but not the internal names it may repeat — the
//! 32-hex names of internal replication clusters, and the generated
//! statements a parser error quotes after `near '…'`. Also the master's own
//! texts that several decisions share.

use std::sync::LazyLock;

use regex::Regex;

static INTERNAL_CLUSTER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"'[a-f][0-9a-f]{31}'").expect("regex"));

/// A parser error's quote of the text it stopped at.
static NEAR: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?s) near '.*'$").expect("regex"));

/// `error` as a message of shardbuddy's may quote it.
pub fn daemon_error(error: &str) -> String {
    let text = INTERNAL_CLUSTER.replace_all(error, "(internal)");
    let generated = |quote: &str| {
        quote.contains('\n') || quote.contains("type='shard'") || quote.contains("system.")
    };
    match NEAR.find(&text) {
        Some(near) if generated(near.as_str()) => text[..near.start()].to_string(),
        _ => text.into_owned(),
    }
}

/// Why a statement whose receiving shardbuddy stopped did not take effect
/// (its client had searchd's own error instead of an answer).
pub fn requester_gone(
    kind: crate::sharding::records::OpKind,
    table: &crate::ids::TableName,
    node: &crate::ids::NodeId,
) -> String {
    let verb = match kind {
        crate::sharding::records::OpKind::Create => "CREATE TABLE",
        crate::sharding::records::OpKind::Drop => "DROP TABLE",
    };
    format!(
        "table '{table}': the shardbuddy on node {node} that received {verb} stopped before answering, \
         so it was not carried out; run {verb} again"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_names_and_generated_statements_are_left_out() {
        let cases = [
            (
                "unknown cluster 'e416e54ad10eb1aae09e428f4e9452c2'",
                "unknown cluster (internal)",
            ),
            (
                "P03: unknown column type 'varchar' near ')\n\t\t\ttype='shard' agent='a:1:system.t_s0''",
                "P03: unknown column type 'varchar'",
            ),
            (
                "P01: syntax error, unexpected identifier near 'SELEC 1'",
                "P01: syntax error, unexpected identifier near 'SELEC 1'",
            ),
            ("no such table 'x'", "no such table 'x'"),
        ];
        for (raw, quoted) in cases {
            assert_eq!(daemon_error(raw), quoted);
        }
    }
}
