pub mod encode;
pub mod row;
