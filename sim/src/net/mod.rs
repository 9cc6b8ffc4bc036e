//! Network adapters: MySQL wire protocol, HTTP endpoints, and the HTTP client.

pub mod http_client;
