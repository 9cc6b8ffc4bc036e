//! The sharding statements' entry in the handler registry.

use std::sync::Arc;

use crate::handler::{Handler, Reply, ReplyFuture};
use crate::protocol::BuddyRequest;
use crate::sharding::ops::{common, create, drop_table, fanout, show};
use crate::sharding::runtime::Shared;
use crate::sql::{self, Statement};

pub struct ShardingHandler {
    shared: Arc<Shared>,
}

impl ShardingHandler {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn execute(&self, user: &str, stmt: Statement) -> Reply {
        let shared = &*self.shared;
        let fan_out = |table, what| async move {
            match fanout::run(shared, &table, &what).await {
                Ok(Some(sets)) => Reply::Sets(sets),
                Ok(None) => Reply::Decline,
                Err(e) => Reply::Error(e.to_string()),
            }
        };
        match stmt {
            Statement::CreateSharded(c) => common::reply(create::run(shared, user, &c).await),
            Statement::DropSharded(d) => common::reply(drop_table::run(shared, user, &d).await),
            Statement::ShowShardingStatus { target } => {
                common::reply(show::status(shared, user, target.as_ref()).await)
            }
            Statement::ShowShardingMaster => common::reply(show::master(shared, user).await),
            Statement::Truncate { table } => fan_out(table, fanout::FanOut::Truncate).await,
            Statement::FlushRamchunk { table } => {
                fan_out(table, fanout::FanOut::FlushRamchunk).await
            }
            Statement::Optimize { table, options } => {
                fan_out(table, fanout::FanOut::Optimize(options)).await
            }
            Statement::Rebalance { .. }
            | Statement::ExplainRebalance { .. }
            | Statement::StopRebalance { .. }
            | Statement::PauseRebalance { .. }
            | Statement::ResumeRebalance { .. }
            | Statement::ShowRebalanceStatus { .. } => Reply::Error(
                "rebalancing statements are not supported by this version of shardbuddy".into(),
            ),
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
