//! Runs this node's queue rows: [`decide`] picks the next row (pure),
//! [`verdict`] says what a statement's error means (pure), [`driver`] does
//! the I/O.

pub mod decide;
pub mod driver;
pub mod verdict;
