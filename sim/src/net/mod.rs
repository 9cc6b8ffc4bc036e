//! Network adapters: MySQL wire protocol, HTTP endpoints, and the HTTP client.

pub mod http;
pub mod http_client;
pub mod mysql;
pub mod rawjson;
