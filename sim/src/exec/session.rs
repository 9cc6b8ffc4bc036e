//! Per-connection state.

use super::result::Meta;
use crate::auth::Perms;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Mysql,
    Http,
}

#[derive(Debug, Clone)]
pub struct Session {
    /// The authenticated user name (MySQL: the login name; HTTP: empty without auth).
    pub user: String,
    pub perms: Perms,
    pub conn_id: u32,
    pub protocol: Protocol,
    /// Statistics of the last SELECT, for SHOW META.
    pub meta: Option<Meta>,
    pub last_insert_id: i64,
    /// Writes arrive routed by a shard table on another node: a clustered target table is
    /// written through its cluster without the `cluster:` prefix.
    pub shard_write: bool,
}

impl Session {
    pub fn new(user: &str, perms: Perms, conn_id: u32, protocol: Protocol) -> Session {
        Session {
            user: user.to_string(),
            perms,
            conn_id,
            protocol,
            meta: None,
            last_insert_id: 0,
            shard_write: false,
        }
    }
}
