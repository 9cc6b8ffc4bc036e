pub mod decide;
pub mod statement;
