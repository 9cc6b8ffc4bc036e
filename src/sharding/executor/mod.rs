pub mod decide;
pub mod run;
pub mod statement;
