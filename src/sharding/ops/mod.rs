//! The statements shardbuddy claims, one file per statement family. Each
//! validates in the order and with the messages users know (spec §5.5–5.7,
//! sharding-behaviour §1.6), then acts through the metadata store.

pub mod common;
pub mod create;
pub mod drop_table;
pub mod fanout;
pub mod show;
