//! manticore-sim: a Manticore-compatible node simulator, the test bed for shardbuddy.
//!
//! One process emulates one `searchd` node as far as a Buddy-style helper and its users can
//! observe it: configuration, the MySQL and HTTP protocols, the SQL surface with searchd's exact
//! answers and error texts, hosting of the helper process, persistence, and distributed/shard
//! table routing. [`testkit`] starts and controls nodes from tests.

pub mod auth;
pub mod buddy;
pub mod cluster;
pub mod config;
pub mod control;
pub mod cost;
pub mod daemon;
pub mod exec;
pub mod faults;
pub mod logfile;
pub mod net;
pub mod node;
pub mod sql;
pub mod store;
pub mod testkit;
