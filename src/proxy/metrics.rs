//! The proxy's own figures: client connections, statements by node and
//! outcome, failovers, statements held during a wrapper swap, and the
//! health of every node.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use async_trait::async_trait;
use prometheus_client::encoding::text::encode_registry;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::backends::Backends;
use crate::metrics::Source;

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
pub struct ProxyMetrics {
    open: Gauge<i64, std::sync::atomic::AtomicI64>,
    accepted: Counter<u64, AtomicU64>,
    statements: Family<Labels, Counter>,
    failovers: Family<Labels, Counter>,
    held: Family<Labels, Counter>,
}

impl ProxyMetrics {
    pub fn connected(&self) {
        self.accepted.inc();
        self.open.inc();
    }

    pub fn disconnected(&self) {
        self.open.dec();
    }

    pub fn statement(&self, node: &str, outcome: &'static str) {
        self.statements
            .get_or_create(&vec![
                ("backend", node.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }

    /// The counter of statements `node` answered (`outcome="ok"`), for a
    /// connection to keep.
    pub fn answered(&self, node: &str) -> Counter {
        self.statements
            .get_or_create(&vec![
                ("backend", node.to_string()),
                ("outcome", "ok".to_string()),
            ])
            .clone()
    }

    pub fn failover(&self, from: &str) {
        self.failovers
            .get_or_create(&vec![("from", from.to_string())])
            .inc();
    }

    pub fn held(&self, node: &str) {
        self.held
            .get_or_create(&vec![("backend", node.to_string())])
            .inc();
    }
}

/// The proxy's monitoring endpoint.
pub struct ProxySource {
    pub metrics: Arc<ProxyMetrics>,
    pub backends: Arc<Backends>,
}

#[async_trait]
impl Source for ProxySource {
    async fn metrics(&self, out: &mut String) -> std::fmt::Result {
        let m = &self.metrics;
        let mut r = Registry::default();
        r.register(
            "shardbuddy_proxy_connections_open",
            "Client connections open now",
            m.open.clone(),
        );
        r.register(
            "shardbuddy_proxy_connections",
            "Client connections accepted",
            m.accepted.clone(),
        );
        r.register(
            "shardbuddy_proxy_statements",
            "Statements by the node that ran them and outcome",
            m.statements.clone(),
        );
        r.register(
            "shardbuddy_proxy_failovers",
            "Client connections moved off a node that went away",
            m.failovers.clone(),
        );
        r.register(
            "shardbuddy_proxy_held",
            "Tries of statements held while a sharded table's wrapper was replaced",
            m.held.clone(),
        );
        let up = Family::<Labels, Gauge>::default();
        for b in self.backends.all() {
            up.get_or_create(&vec![("backend", b.mysql.clone())])
                .set(i64::from(b.is_healthy()));
        }
        r.register("shardbuddy_proxy_backend_up", "1 when the node answers", up);
        encode_registry(out, &r)
    }

    async fn status(&self) -> serde_json::Value {
        let nodes: Vec<serde_json::Value> = self
            .backends
            .all()
            .iter()
            .map(|b| {
                let details = b.details();
                serde_json::json!({
                    "mysql": b.mysql,
                    "up": b.is_healthy(),
                    "http": details.as_ref().map(|d| d.http.clone()),
                    "node": details.as_ref().and_then(|d| d.api.as_ref().map(|a| a.to_string())),
                    "helper": details.as_ref().map(|d| d.helper),
                })
            })
            .collect();
        serde_json::json!({ "proxy": { "backends": nodes } })
    }
}
