//! The statements shardbuddy claims, one file per statement family. Each
//! validates in the order and with the messages users know (spec §5.5–5.7,
//! sharding-behaviour §1.6), then acts through the metadata store.
//! [`ShardingHandler`] is their entry in the handler registry.

use std::sync::Arc;

use crate::handler::{Handler, Reply, ReplyFuture};
use crate::protocol::BuddyRequest;
use crate::sharding::config::ShardingConfig;
use crate::sharding::daemon::LocalNode;
use crate::sharding::metadata::Metadata;
use crate::sharding::pulse::Pulse;
use crate::sharding::records::{ControlAction, StopKind};
use crate::sharding::ticker::Signals;
use crate::sql::{self, Statement, StopMode};

pub mod allocation;
pub mod common;
pub mod create;
pub mod drop_table;
pub mod fanout;
pub mod health;
pub mod rebalance;
pub mod show;

/// What the statement handlers work with.
pub struct Context {
    pub config: ShardingConfig,
    pub node: LocalNode,
    pub metadata: Metadata,
    pub signals: Arc<Signals>,
    /// This process's liveness, named in every request it writes and
    /// renewed while a statement waits.
    pub pulse: Arc<Pulse>,
}

pub struct ShardingHandler {
    ctx: Arc<Context>,
}

impl ShardingHandler {
    pub fn new(ctx: Arc<Context>) -> Self {
        Self { ctx }
    }

    async fn execute(&self, user: &str, stmt: Statement) -> Reply {
        let ctx = &*self.ctx;
        let fan_out = |table, what| async move {
            match fanout::run(ctx, &table, &what).await {
                Ok(Some(sets)) => Reply::Sets(sets),
                Ok(None) => Reply::Decline,
                Err(e) => Reply::Error(e.to_string()),
            }
        };
        match stmt {
            Statement::CreateSharded(c) => common::reply(create::run(ctx, user, &c).await),
            Statement::DropSharded(d) => common::reply(drop_table::run(ctx, user, &d).await),
            Statement::ShowShardingStatus { target } => {
                common::reply(show::status(ctx, user, target.as_ref()).await)
            }
            Statement::ShowShardingMaster => common::reply(show::master(ctx, user).await),
            Statement::ShowShardingHealth => common::reply(health::health(ctx, user).await),
            Statement::Truncate { table } => fan_out(table, fanout::FanOut::Truncate).await,
            Statement::FlushRamchunk { table } => {
                fan_out(table, fanout::FanOut::FlushRamchunk).await
            }
            Statement::Optimize { table, options } => {
                fan_out(table, fanout::FanOut::Optimize(options)).await
            }
            Statement::Rebalance { target } => common::reply(
                rebalance::request(ctx, user, &target, ControlAction::Rebalance).await,
            ),
            Statement::ExplainRebalance { target } => {
                common::reply(rebalance::explain(ctx, user, target.as_ref()).await)
            }
            Statement::ExplainShard { target, shard } => {
                common::reply(allocation::explain_shard(ctx, user, &target, shard).await)
            }
            Statement::StopRebalance { target, mode } => {
                let kind = match mode {
                    StopMode::Graceful => StopKind::Graceful,
                    StopMode::Immediate => StopKind::Immediate,
                };
                common::reply(
                    rebalance::request(ctx, user, &target, ControlAction::Stop(kind)).await,
                )
            }
            Statement::PauseRebalance { target } => {
                common::reply(rebalance::request(ctx, user, &target, ControlAction::Pause).await)
            }
            Statement::ResumeRebalance { target } => {
                common::reply(rebalance::request(ctx, user, &target, ControlAction::Resume).await)
            }
            Statement::ShowRebalanceStatus { target } => {
                common::reply(rebalance::status(ctx, user, target.as_ref()).await)
            }
            Statement::DrainNode {
                cluster,
                node,
                drain,
            } => common::reply(rebalance::drain(ctx, &cluster, &node, drain).await),
        }
    }
}

impl Handler for ShardingHandler {
    fn name(&self) -> &'static str {
        "sharding"
    }

    fn claim<'a>(&'a self, request: &'a BuddyRequest) -> Option<ReplyFuture<'a>> {
        let parsed = sql::claim(&request.payload, &request.error_message)?;
        Some(Box::pin(async move {
            match parsed {
                Ok(stmt) => self.execute(&request.user, stmt).await,
                Err(e) => Reply::Error(e.to_string()),
            }
        }))
    }
}
