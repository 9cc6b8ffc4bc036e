pub mod assess;
pub mod run;
