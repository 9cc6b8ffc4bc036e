//! Tables, documents and their persistence.

pub mod catalog;
pub mod cluster;
pub mod mutation;
pub mod schema;
pub mod table;
pub mod value;
pub mod wal;
