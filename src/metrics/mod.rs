//! Monitoring: Prometheus metrics and the live status page, served on their
//! own address (`SHARDBUDDY_METRICS_ADDR`, off by default).
//!
//! * [`view`] reads what this node can say about the cluster through the
//!   sharding seams into a [`view::ClusterView`];
//! * [`expose`] renders it as Prometheus gauges, next to the process-lifetime
//!   timings that [`hooks`] collect on the request path and in the executor;
//! * [`http`] serves `/metrics`, the status page at `/` and its data at
//!   `/status.json`, from any [`Source`] (the helper's, or the proxy's).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use prometheus_client::registry::Registry;

use crate::config::{BindAddr, ConfigError};
use crate::sharding::ops::Context;

pub mod expose;
pub mod hooks;
pub mod http;
pub mod page;
pub mod view;

/// The environment variable naming the metrics address.
pub const ADDR_ENV: &str = "SHARDBUDDY_METRICS_ADDR";

/// A scrape that cannot read the cluster within this long reports
/// `shardbuddy_view_up 0` instead of hanging Prometheus.
const VIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// `HOST:PORT`, or a bare port (on 127.0.0.1); port 0 picks a free one.
pub fn parse_addr(raw: &str) -> Result<BindAddr, ConfigError> {
    if let Ok(port) = raw.trim().parse::<u16>() {
        return Ok(BindAddr {
            host: "127.0.0.1".into(),
            port,
        });
    }
    raw.trim().parse()
}

/// What the monitoring endpoint shows.
#[async_trait]
pub trait Source: Send + Sync {
    /// Appends the metric families (OpenMetrics text, without `# EOF`).
    async fn metrics(&self, out: &mut String) -> std::fmt::Result;
    /// The status page's data, as JSON.
    async fn status(&self) -> serde_json::Value;
}

/// The helper's monitoring: this node's view of the cluster.
pub struct HelperSource {
    sharding: Arc<Context>,
}

impl HelperSource {
    pub fn new(sharding: Arc<Context>) -> Self {
        Self { sharding }
    }

    async fn view(&self) -> Option<view::ClusterView> {
        match tokio::time::timeout(VIEW_TIMEOUT, view::gather(&self.sharding)).await {
            Ok(Ok(view)) => Some(view),
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "cannot read the cluster for monitoring");
                None
            }
            Err(_) => {
                tracing::debug!(timeout = ?VIEW_TIMEOUT, "reading the cluster for monitoring timed out");
                None
            }
        }
    }
}

#[async_trait]
impl Source for HelperSource {
    async fn metrics(&self, out: &mut String) -> std::fmt::Result {
        let view = self.view().await;
        expose::render(view.as_ref(), out)?;
        let mut lifetime = Registry::default();
        hooks::register(&mut lifetime);
        prometheus_client::encoding::text::encode_registry(out, &lifetime)
    }

    async fn status(&self) -> serde_json::Value {
        match self.view().await {
            Some(view) => serde_json::to_value(view).unwrap_or_default(),
            None => {
                serde_json::json!({ "error": "the cluster cannot be read from this node right now; try the status page of another node" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_port_means_loopback() {
        let a = parse_addr("9100").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 9100));
        let b = parse_addr("0.0.0.0:9200").unwrap();
        assert_eq!((b.host.as_str(), b.port), ("0.0.0.0", 9200));
        assert!(parse_addr(":9100").is_err());
    }

    #[tokio::test]
    async fn a_node_that_cannot_be_read_sends_the_reader_to_another() {
        let node = crate::sharding::testing::FakeNode::new(|_, _| crate::sharding::testing::lost());
        let source = HelperSource::new(Arc::new(crate::sharding::testing::context(&node)));
        assert_eq!(
            source.status().await,
            serde_json::json!({
                "error": "the cluster cannot be read from this node right now; try the status \
                          page of another node"
            })
        );
    }
}
