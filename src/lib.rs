//! shardbuddy: a Buddy-compatible sharding control plane for Manticore Search.
//!
//! `searchd` starts shardbuddy as its helper process (`buddy_path`) and forwards
//! every statement it cannot run itself. shardbuddy claims the sharding
//! statements, plans placement, and drives the DDL through durable per-node
//! queues kept in the `system.sharding_*` tables.
//!
//! # Layout
//!
//! See `ARCHITECTURE.md` for the full map; in short, dependencies point inward:
//!
//! * pure core: [`ids`], [`sqltext`], [`sql`] (grammar), [`placement`] (planner),
//!   [`protocol`] (wire types);
//! * adapters: [`client`] (calls to searchd), [`server`] (Buddy HTTP endpoint),
//!   [`handler`] (claim/dispatch registry);
//! * composition: [`app`] wires everything together; [`cli`] is the binary's
//!   command line.

pub mod app;
pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod console;
pub mod failpoint;
pub mod handler;
pub mod ids;
pub mod metrics;
pub mod placement;
pub mod protocol;
pub mod proxy;
pub mod server;
pub mod sharding;
pub mod sql;
pub mod sqltext;

/// The version printed in the Buddy handshake line and sent in `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
