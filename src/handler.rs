//! How statement handlers claim requests. The registry is an ordered table of
//! handlers; the dispatcher asks each in turn and the first claim wins.
//! Claiming is synchronous and does no I/O; the work happens in the returned
//! future.

use std::future::Future;
use std::pin::Pin;

use crate::protocol::{BuddyRequest, ResultSet};

/// What a handler answers. The server turns it into the v3 response envelope.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// One result set per statement (an empty success is `[ResultSet::ok()]`).
    Sets(Vec<ResultSet>),
    /// Text shown as it is (the `/cli` console's tables).
    Text(String),
    /// An error the user sees verbatim.
    Error(String),
    /// On closer inspection the request is not this handler's business
    /// (e.g. TRUNCATE of a table that is not sharded): it is treated exactly
    /// like an unclaimed request.
    Decline,
}

pub type ReplyFuture<'a> = Pin<Box<dyn Future<Output = Reply> + Send + 'a>>;

pub trait Handler: Send + Sync {
    /// A short name for logs.
    fn name(&self) -> &'static str;

    /// `Some` when this handler owns the request; the future does the work.
    fn claim<'a>(&'a self, request: &'a BuddyRequest) -> Option<ReplyFuture<'a>>;
}

/// The ordered handler table.
#[derive(Default)]
pub struct Registry {
    handlers: Vec<Box<dyn Handler>>,
}

impl Registry {
    pub fn new(handlers: Vec<Box<dyn Handler>>) -> Self {
        Self { handlers }
    }

    /// The handlers' names, in claim order.
    pub fn names(&self) -> Vec<&'static str> {
        self.handlers.iter().map(|h| h.name()).collect()
    }

    /// The first handler that claims `request`, with its name.
    pub fn claim<'a>(
        &'a self,
        request: &'a BuddyRequest,
    ) -> Option<(&'static str, ReplyFuture<'a>)> {
        self.handlers
            .iter()
            .find_map(|h| h.claim(request).map(|fut| (h.name(), fut)))
    }
}
