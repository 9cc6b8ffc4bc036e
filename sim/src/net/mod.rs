//! Network adapters: MySQL wire protocol, HTTP endpoints, and the HTTP client.

use std::future::Future;

use tokio::net::{TcpListener, TcpStream};

pub mod http;
pub mod http1;
pub mod http_client;
pub mod json_api;
mod more_results;
pub mod mysql;
pub mod rawjson;

/// Accepts connections forever, serving each on its own task.
pub async fn accept_loop<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(serve(stream));
    }
}
