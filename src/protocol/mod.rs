//! Wire types of the searchd ↔ Buddy protocol (version 3) and of Manticore's
//! `/sql?mode=raw` result sets. Serde types and their codecs only: no I/O.

mod fields;
pub mod request;
pub mod response;
pub mod resultset;

pub use fields::RawJson;
pub use request::{
    BuddyRequest, Endpoint, EnvelopeProblem, InvalidEnvelope, RequestFormat, PROTOCOL_VERSION,
};
pub use response::ResponseEnvelope;
pub use resultset::{raw_reply_text, Column, ColumnType, ResultSet, ResultSetError};
