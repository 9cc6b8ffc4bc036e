//! Which statement a payload means to be, judged from its first words, and
//! which daemon errors route that kind of statement to shardbuddy
//! (buddy-protocol §5.2–5.3).
//!
//! Recognition needs only the leading keywords, so a statement that is
//! clearly meant for shardbuddy but malformed (`SHOW SHARDING STAUTS`) is
//! still recognised and gets a precise error, while a misspelled leading
//! keyword (`REBALANSE TABLE t`) is not recognised and goes back to the daemon.

use super::lexer::{Token, TokenKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `CREATE TABLE` with a `shards=` or `rf=` option.
    CreateSharded,
    /// `DROP TABLE`.
    Drop,
    /// `SHOW SHARDING …`.
    ShowSharding,
    /// `TRUNCATE …`, `FLUSH RAMCHUNK …`, `OPTIMIZE …`: statements the daemon
    /// runs itself on real-time tables; shardbuddy fans them out to shards.
    FanOut(FanOut),
    /// The rebalance operator statements.
    Operator(Operator),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FanOut {
    Truncate,
    Flush,
    Optimize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    Rebalance,
    Explain,
    /// `EXPLAIN SHARD …`: why a shard's copies are where they are.
    ExplainShard,
    Stop,
    Pause,
    Resume,
    ShowStatus,
    /// `ALTER CLUSTER <c> DRAIN|UNDRAIN NODE …`.
    Drain,
}

pub(crate) fn classify(tokens: &[Token<'_>]) -> Option<Kind> {
    let word = |i: usize, kw: &str| tokens.get(i).is_some_and(|t| t.is_word(kw));
    let then_rebalance = |kind| word(1, "REBALANCE").then_some(kind);
    if word(0, "CREATE") {
        return (word(1, "TABLE") && has_sharding_option(tokens)).then_some(Kind::CreateSharded);
    }
    if word(0, "DROP") {
        return word(1, "TABLE").then_some(Kind::Drop);
    }
    if word(0, "SHOW") {
        if word(1, "SHARDING") {
            return Some(Kind::ShowSharding);
        }
        return then_rebalance(Kind::Operator(Operator::ShowStatus));
    }
    if word(0, "TRUNCATE") {
        return Some(Kind::FanOut(FanOut::Truncate));
    }
    if word(0, "FLUSH") {
        return word(1, "RAMCHUNK").then_some(Kind::FanOut(FanOut::Flush));
    }
    if word(0, "OPTIMIZE") {
        return Some(Kind::FanOut(FanOut::Optimize));
    }
    if word(0, "REBALANCE") {
        return Some(Kind::Operator(Operator::Rebalance));
    }
    if word(0, "EXPLAIN") && word(1, "SHARD") {
        return Some(Kind::Operator(Operator::ExplainShard));
    }
    // The daemon's own `ALTER CLUSTER <c> ADD|DROP|UPDATE …` stay its own.
    if word(0, "ALTER") && word(1, "CLUSTER") {
        return (word(3, "DRAIN") || word(3, "UNDRAIN")).then_some(Kind::Operator(Operator::Drain));
    }
    let operator = [
        ("EXPLAIN", Operator::Explain),
        ("STOP", Operator::Stop),
        ("PAUSE", Operator::Pause),
        ("RESUME", Operator::Resume),
    ]
    .into_iter()
    .find(|(kw, _)| word(0, kw))?
    .1;
    then_rebalance(Kind::Operator(operator))
}

/// A `shards` or `rf` word followed by `=` or by a quoted value anywhere in
/// the statement: the mark of a sharded `CREATE TABLE`, however malformed
/// the rest may be.
fn has_sharding_option(tokens: &[Token<'_>]) -> bool {
    tokens.windows(2).any(|w| {
        let option = w[0].is_word("shards") || w[0].is_word("rf");
        let value_follows =
            w[1].is_punct('=') || matches!(w[1].kind, TokenKind::Quoted | TokenKind::DoubleQuoted);
        option && value_follows
    })
}

impl Kind {
    /// Whether the daemon's error is one that sends this kind of statement
    /// to the helper (matched case-insensitively, as Buddy does).
    pub fn routed_by(self, daemon_error: &str) -> bool {
        let error = daemon_error.to_ascii_lowercase();
        let syntax_error = error.contains("syntax error");
        // `CREATE TABLE c:t` / `DROP TABLE c:t`: the daemon's DDL grammar has
        // no cluster prefix and stops at the colon.
        let cluster_prefix = syntax_error && error.contains("near ':");
        match self {
            Self::CreateSharded => error.contains("require buddy") || cluster_prefix,
            Self::Drop => cluster_prefix || error.contains("contains system table"),
            Self::ShowSharding | Self::Operator(_) => syntax_error,
            Self::FanOut(_) => error.contains("requires an existing rt"),
        }
    }

    /// Fan-out statements are ordinary daemon statements about tables that
    /// may not be sharded at all; if shardbuddy cannot read one, it leaves it
    /// to the daemon rather than answering with an error of its own.
    pub fn leaves_invalid_to_daemon(self) -> bool {
        matches!(self, Self::FanOut(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::lexer::lex;

    fn kind(sql: &str) -> Option<Kind> {
        classify(&lex(sql).tokens)
    }

    #[test]
    fn leading_keywords_decide_the_kind() {
        use Kind::*;
        let cases = [
            ("create table t shards='2' rf='1'", Some(CreateSharded)),
            ("CREATE\n\tTABLE t rf = '1'", Some(CreateSharded)),
            (
                "create table c:t (id bigint shards='2'",
                Some(CreateSharded),
            ),
            ("create table t (id bigint)", None),
            ("create table t (shards int) timeout='3'", None),
            ("create table c:t shards '2' rf '1'", Some(CreateSharded)),
            ("create table c:shards (id bigint)", None),
            ("create cluster c shards='2'", None),
            ("drop table c:t", Some(Drop)),
            ("drop cluster c", None),
            ("show sharding status", Some(ShowSharding)),
            ("show sharding", Some(ShowSharding)),
            ("show tables", None),
            (
                "show rebalance status",
                Some(Operator(super::Operator::ShowStatus)),
            ),
            ("truncate table t", Some(FanOut(super::FanOut::Truncate))),
            ("flush ramchunk t", Some(FanOut(super::FanOut::Flush))),
            ("flush rtindex t", None),
            ("optimize table t", Some(FanOut(super::FanOut::Optimize))),
            (
                "rebalance table t",
                Some(Operator(super::Operator::Rebalance)),
            ),
            ("REBALANSE TABLE t", None),
            (
                "explain rebalance",
                Some(Operator(super::Operator::Explain)),
            ),
            ("explain query t 'x'", None),
            (
                "explain shard c:t 0",
                Some(Operator(super::Operator::ExplainShard)),
            ),
            ("stop rebalance t", Some(Operator(super::Operator::Stop))),
            ("stop t", None),
            ("pause rebalance t", Some(Operator(super::Operator::Pause))),
            (
                "resume rebalance t",
                Some(Operator(super::Operator::Resume)),
            ),
            ("select 1", None),
            ("", None),
            ("'create' table", None),
        ];
        for (sql, want) in cases {
            assert_eq!(kind(sql), want, "{sql}");
        }
    }

    #[test]
    fn daemon_errors_route_their_own_kinds_only() {
        const BUDDY: &str = "table 't': CREATE TABLE failed: table 't': CREATE TABLE failed: 'shards' and 'rf' options require Buddy";
        const PREFIX: &str =
            "P03: syntax error, unexpected invalid token, expecting $end near ':t'";
        const UNQUOTED: &str =
            "P03: syntax error, unexpected integer, expecting string near '2 rf=1'";
        const SYSTEM: &str = "can not drop table 's' because it contains system table";
        const SHOW: &str =
            "P01: syntax error, unexpected identifier, expecting VARIABLES near 'SHARDING STATUS'";
        const TRUNCATE: &str = "TRUNCATE RTINDEX requires an existing RT table";
        const UNKNOWN: &str = "DROP TABLE failed: unknown table 'nope'";
        let create = Kind::CreateSharded;
        let drop = Kind::Drop;
        let show = Kind::ShowSharding;
        let truncate = Kind::FanOut(FanOut::Truncate);
        let cases = [
            (create, BUDDY, true),
            (create, PREFIX, true),
            (create, UNQUOTED, false),
            (create, SYSTEM, false),
            (create, "", false),
            (drop, PREFIX, true),
            (drop, SYSTEM, true),
            (drop, UNKNOWN, false),
            (drop, BUDDY, false),
            (show, SHOW, true),
            (show, "", false),
            (truncate, TRUNCATE, true),
            (
                truncate,
                "OPTIMIZE TABLE requires an existing RT, distributed, or shard table",
                true,
            ),
            (
                truncate,
                "table 't' is a part of cluster 'c', use 'c:t'",
                false,
            ),
        ];
        for (kind, error, want) in cases {
            assert_eq!(kind.routed_by(error), want, "{kind:?} / {error}");
        }
    }
}
