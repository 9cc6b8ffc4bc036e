//! Every claimed statement except `CREATE TABLE` (see `create.rs`): parsed
//! strictly, then built into the typed AST with validated names.

use nom::branch::alt;
use nom::combinator::{opt, value};
use nom::multi::separated_list1;
use nom::sequence::{preceded, terminated};
use nom::Parser;

use super::ast::{DropSharded, Statement, StopMode};
use super::classify::{FanOut, Kind, Operator};
use super::create::parse_create;
use super::cursor::{
    end_of_statement, is_identifier, keyword, name, parse_all, punct, qualified_name, quoted_value,
    token, Mismatch, PResult, RawQualifiedName, Tokens, Tracker,
};
use super::error::{SqlError, SqlErrorKind};
use super::lexer::{Lexed, Token, TokenKind};
use super::names::{qualified, table_name};

/// A rule for one kind of statement.
type Rule = for<'a> fn(Tokens<'a>) -> PResult<'a, Raw<'a>>;

/// Parses a statement already recognised as `kind`.
pub(crate) fn parse_statement(
    kind: Kind,
    sql: &str,
    lexed: &Lexed<'_>,
) -> Result<Statement, SqlError> {
    let rule: Rule = match kind {
        Kind::CreateSharded => return parse_create(sql, lexed).map(Statement::CreateSharded),
        Kind::Drop => drop_table,
        Kind::ShowSharding => show_sharding,
        Kind::FanOut(FanOut::Truncate) => truncate,
        Kind::FanOut(FanOut::Flush) => flush,
        Kind::FanOut(FanOut::Optimize) => optimize,
        Kind::Operator(Operator::Rebalance) => rebalance,
        Kind::Operator(Operator::Explain) => explain,
        Kind::Operator(Operator::ExplainShard) => explain_shard,
        Kind::Operator(Operator::Stop) => stop,
        Kind::Operator(Operator::Pause) => pause,
        Kind::Operator(Operator::Resume) => resume,
        Kind::Operator(Operator::ShowStatus) => show_rebalance_status,
        Kind::Operator(Operator::Drain) => drain,
    };
    let tracker = Tracker::default();
    let raw = parse_all(sql, lexed, &tracker, terminated(rule, end_of_statement))?;
    build(raw)
}

/// A statement as written, before its names are validated.
enum Raw<'a> {
    Drop {
        if_exists: bool,
        name: RawQualifiedName<'a>,
    },
    ShowShardingStatus(Option<RawQualifiedName<'a>>),
    ShowShardingMaster,
    ShowShardingHealth,
    Truncate(Token<'a>),
    Flush(Token<'a>),
    Optimize(Token<'a>, Vec<(Token<'a>, Token<'a>)>),
    Rebalance(RawQualifiedName<'a>),
    Explain(Option<RawQualifiedName<'a>>),
    ExplainShard(RawQualifiedName<'a>, Token<'a>),
    Stop(RawQualifiedName<'a>, StopMode),
    Pause(RawQualifiedName<'a>),
    Resume(RawQualifiedName<'a>),
    ShowRebalanceStatus(Option<RawQualifiedName<'a>>),
    Drain(Token<'a>, bool, Token<'a>),
}

fn build(raw: Raw<'_>) -> Result<Statement, SqlError> {
    let optional = |name: Option<RawQualifiedName<'_>>| name.as_ref().map(qualified).transpose();
    Ok(match raw {
        Raw::Drop { if_exists, name } => {
            let name = qualified(&name)?;
            Statement::DropSharded(DropSharded {
                if_exists,
                cluster: name.cluster,
                table: name.table,
            })
        }
        Raw::ShowShardingStatus(target) => Statement::ShowShardingStatus {
            target: optional(target)?,
        },
        Raw::ShowShardingMaster => Statement::ShowShardingMaster,
        Raw::ShowShardingHealth => Statement::ShowShardingHealth,
        Raw::Truncate(table) => Statement::Truncate {
            table: table_name(&table)?,
        },
        Raw::Flush(table) => Statement::FlushRamchunk {
            table: table_name(&table)?,
        },
        Raw::Optimize(table, options) => Statement::Optimize {
            table: table_name(&table)?,
            options: options
                .iter()
                .map(|(key, value)| (key.text.to_ascii_lowercase(), value.text.to_string()))
                .collect(),
        },
        Raw::Rebalance(target) => Statement::Rebalance {
            target: qualified(&target)?,
        },
        Raw::Explain(target) => Statement::ExplainRebalance {
            target: optional(target)?,
        },
        Raw::ExplainShard(target, shard) => Statement::ExplainShard {
            target: qualified(&target)?,
            shard: shard_number(&shard)?,
        },
        Raw::Stop(target, mode) => Statement::StopRebalance {
            target: qualified(&target)?,
            mode,
        },
        Raw::Pause(target) => Statement::PauseRebalance {
            target: qualified(&target)?,
        },
        Raw::Resume(target) => Statement::ResumeRebalance {
            target: qualified(&target)?,
        },
        Raw::ShowRebalanceStatus(target) => Statement::ShowRebalanceStatus {
            target: optional(target)?,
        },
        Raw::Drain(cluster, drain, node) => Statement::DrainNode {
            cluster: super::names::cluster_name(&cluster)?,
            node: node.unquoted(),
            drain,
        },
    })
}

/// `DROP TABLE [IF EXISTS] [<cluster>:]<name>`
fn drop_table(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    let if_exists = opt((keyword("IF"), keyword("EXISTS")));
    (keyword("DROP"), keyword("TABLE"), if_exists, qualified_name)
        .map(|(_, _, if_exists, name)| Raw::Drop {
            if_exists: if_exists.is_some(),
            name,
        })
        .parse(input)
}

/// `SHOW SHARDING STATUS [[<cluster>:]<name>]` | `SHOW SHARDING MASTER`
fn show_sharding(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    let status = preceded(keyword("STATUS"), opt(qualified_name)).map(Raw::ShowShardingStatus);
    let master = keyword("MASTER").map(|_| Raw::ShowShardingMaster);
    let health = keyword("HEALTH").map(|_| Raw::ShowShardingHealth);
    preceded(
        (keyword("SHOW"), keyword("SHARDING")),
        alt((status, master, health)),
    )
    .parse(input)
}

/// `TRUNCATE {TABLE | RTINDEX} <name>`
fn truncate(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    let object = alt((keyword("TABLE"), keyword("RTINDEX")));
    preceded((keyword("TRUNCATE"), object), name("a table name"))
        .map(Raw::Truncate)
        .parse(input)
}

/// `FLUSH RAMCHUNK <name>`
fn flush(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    preceded(
        (keyword("FLUSH"), keyword("RAMCHUNK")),
        name("a table name"),
    )
    .map(Raw::Flush)
    .parse(input)
}

/// `OPTIMIZE {TABLE | INDEX} <name> [OPTION <key>=<value> {, <key>=<value>}]`
fn optimize(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    let object = alt((keyword("TABLE"), keyword("INDEX")));
    let is_value = |t: &Token<'_>| {
        t.kind == TokenKind::Quoted
            || t.kind == TokenKind::Word
                && t.text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
    };
    let option = (
        token("an option name", is_identifier),
        punct('=', "'='"),
        token("an option value", is_value),
    )
        .map(|(key, _, value)| (key, value));
    let options = preceded(
        keyword("OPTION"),
        separated_list1(punct(',', "','"), option),
    );
    (
        keyword("OPTIMIZE"),
        object,
        name("a table name"),
        opt(options),
    )
        .map(|(_, _, table, options)| Raw::Optimize(table, options.unwrap_or_default()))
        .parse(input)
}

/// `REBALANCE TABLE [<cluster>:]<name>`
fn rebalance(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    preceded((keyword("REBALANCE"), keyword("TABLE")), qualified_name)
        .map(Raw::Rebalance)
        .parse(input)
}

/// `EXPLAIN REBALANCE [TABLE [<cluster>:]<name>]`
fn explain(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    let target = opt(preceded(keyword("TABLE"), qualified_name));
    preceded((keyword("EXPLAIN"), keyword("REBALANCE")), target)
        .map(Raw::Explain)
        .parse(input)
}

/// `EXPLAIN SHARD [<cluster>:]<name> <shard>`
fn explain_shard(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    let number = token("a shard number", |t: &Token<'_>| {
        t.kind == TokenKind::Word && t.text.bytes().all(|b| b.is_ascii_digit())
    });
    preceded(
        (keyword("EXPLAIN"), keyword("SHARD")),
        (qualified_name, number),
    )
    .map(|(target, shard)| Raw::ExplainShard(target, shard))
    .parse(input)
}

/// A shard number a table can have.
fn shard_number(token: &Token<'_>) -> Result<u32, SqlError> {
    token
        .text
        .parse()
        .ok()
        .filter(|n| *n < 3000)
        .ok_or_else(|| SqlErrorKind::ShardOutOfRange(token.text.to_string()).into())
}

/// `<verb> REBALANCE [TABLE] [<cluster>:]<name>`, the start of `STOP`,
/// `PAUSE` and `RESUME`.
fn rebalance_target<'a>(
    verb: &'static str,
) -> impl Parser<Tokens<'a>, Output = RawQualifiedName<'a>, Error = Mismatch> {
    let head = (keyword(verb), keyword("REBALANCE"), opt(keyword("TABLE")));
    preceded(head, qualified_name)
}

/// `STOP REBALANCE [TABLE] [<cluster>:]<name> [GRACEFUL | IMMEDIATE]`
fn stop(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    let mode = alt((
        value(StopMode::Graceful, keyword("GRACEFUL")),
        value(StopMode::Immediate, keyword("IMMEDIATE")),
    ));
    (rebalance_target("STOP"), opt(mode))
        .map(|(target, mode)| Raw::Stop(target, mode.unwrap_or_default()))
        .parse(input)
}

/// `PAUSE REBALANCE [TABLE] [<cluster>:]<name>`
fn pause(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    rebalance_target("PAUSE").map(Raw::Pause).parse(input)
}

/// `RESUME REBALANCE [TABLE] [<cluster>:]<name>`
fn resume(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    rebalance_target("RESUME").map(Raw::Resume).parse(input)
}

/// `SHOW REBALANCE STATUS [[<cluster>:]<name>]`
fn show_rebalance_status(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    let head = (keyword("SHOW"), keyword("REBALANCE"), keyword("STATUS"));
    preceded(head, opt(qualified_name))
        .map(Raw::ShowRebalanceStatus)
        .parse(input)
}

/// `ALTER CLUSTER <cluster> DRAIN|UNDRAIN NODE '<node id>'`
fn drain(input: Tokens<'_>) -> PResult<'_, Raw<'_>> {
    let verb = alt((
        value(true, keyword("DRAIN")),
        value(false, keyword("UNDRAIN")),
    ));
    (
        preceded(
            (keyword("ALTER"), keyword("CLUSTER")),
            name("a cluster name"),
        ),
        verb,
        preceded(keyword("NODE"), quoted_value),
    )
        .map(|(cluster, drain, node)| Raw::Drain(cluster, drain, node))
        .parse(input)
}
