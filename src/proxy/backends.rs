//! The nodes behind the proxy: which exist (the `--node` seeds, then every
//! member their clusters list), how to reach each (MySQL and HTTP
//! listeners, from `SHOW SETTINGS`), whether it runs a helper, and whether
//! it is healthy right now.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::client::{ClientConfig, DaemonClient};
use crate::ids::NodeId;
use crate::protocol::ResultSet;
use crate::sharding::node::NodeApi;
use crate::sharding::topology;

/// How long one health probe or discovery query may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One node, as the proxy knows it.
#[derive(Debug)]
pub struct Backend {
    /// `host:port` of its MySQL listener.
    pub mysql: String,
    /// What `SHOW SETTINGS` said; `None` until it was read.
    pub details: RwLock<Option<Details>>,
    healthy: AtomicBool,
}

/// What a node's settings say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Details {
    /// `http://host:port` of its HTTP listener.
    pub http: String,
    /// Its binary-API listener: the id its clusters list it under.
    pub api: Option<NodeId>,
    /// Whether searchd runs a helper (`buddy_path` is not set empty).
    pub helper: bool,
}

impl Backend {
    fn new(mysql: String) -> Self {
        Self {
            mysql,
            details: RwLock::new(None),
            // Assumed healthy until a probe or a connection says otherwise.
            healthy: AtomicBool::new(true),
        }
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    fn set_details(&self, details: Details) {
        if let Ok(mut d) = self.details.write() {
            *d = Some(details);
        }
    }

    pub fn details(&self) -> Option<Details> {
        self.details.read().ok().and_then(|d| d.clone())
    }
}

/// Every known node; cheap to share.
#[derive(Debug, Default)]
pub struct Backends {
    nodes: RwLock<Vec<Arc<Backend>>>,
    next: AtomicUsize,
}

impl Backends {
    pub fn new(seeds: &[String]) -> Self {
        let out = Self::default();
        for seed in seeds {
            out.add(seed);
        }
        out
    }

    /// Adds a node by its MySQL address (no-op when known).
    pub fn add(&self, mysql: &str) -> Arc<Backend> {
        let mut nodes = self.nodes.write().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = nodes.iter().find(|b| b.mysql == mysql) {
            return Arc::clone(known);
        }
        let backend = Arc::new(Backend::new(mysql.to_string()));
        nodes.push(Arc::clone(&backend));
        backend
    }

    pub fn all(&self) -> Vec<Arc<Backend>> {
        self.nodes.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The healthy nodes in turn, starting after the last one handed out;
    /// `except` is left out (the node that just failed).
    pub fn candidates(&self, except: Option<&str>) -> Vec<Arc<Backend>> {
        let all = self.all();
        if all.is_empty() {
            return all;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % all.len();
        let turn = all.iter().cycle().skip(start).take(all.len());
        let (healthy, sick): (Vec<_>, Vec<_>) = turn
            .filter(|b| Some(b.mysql.as_str()) != except)
            .cloned()
            .partition(|b| b.is_healthy());
        // Nodes believed down come last: the belief may be stale.
        healthy.into_iter().chain(sick).collect()
    }

    /// Probes every node once and adds the cluster members they list.
    pub async fn refresh(&self) {
        let mut members = BTreeSet::new();
        for backend in self.all() {
            match tokio::time::timeout(PROBE_TIMEOUT, probe(&backend)).await {
                Ok(Ok(found)) => {
                    backend.set_healthy(true);
                    members.extend(found);
                }
                Ok(Err(e)) => {
                    tracing::debug!(node = %backend.mysql, error = %e, "node probe failed");
                    backend.set_healthy(false);
                }
                Err(_) => backend.set_healthy(false),
            }
        }
        let known: BTreeSet<NodeId> = self
            .all()
            .iter()
            .filter_map(|b| b.details().and_then(|d| d.api))
            .collect();
        for member in members.difference(&known) {
            match tokio::time::timeout(PROBE_TIMEOUT, settings_over_http(member)).await {
                Ok(Ok((mysql, details))) => {
                    tracing::info!(node = %member, mysql = %mysql, "found a cluster member");
                    self.add(&mysql).set_details(details);
                }
                Ok(Err(e)) => {
                    tracing::debug!(node = %member, error = %e, "cluster member not reachable")
                }
                Err(_) => tracing::debug!(node = %member, "cluster member did not answer"),
            }
        }
    }
}

/// Connection options for `mysql` (`host:port`), as `user` with `password`.
pub fn opts(mysql: &str, user: &str, password: &str) -> mysql_async::Opts {
    let (host, port) = mysql.rsplit_once(':').unwrap_or((mysql, "9306"));
    let builder = mysql_async::OptsBuilder::default()
        .ip_or_hostname(host.trim_start_matches('[').trim_end_matches(']'))
        .tcp_port(port.parse().unwrap_or(9306))
        .user((!user.is_empty()).then_some(user))
        .pass((!password.is_empty()).then_some(password))
        .prefer_socket(false)
        // Every statement the client sends is relayed as it is: no setup
        // statements of the driver's own.
        .setup(Vec::<String>::new())
        .stmt_cache_size(0);
    builder.into()
}

/// Connects without credentials, reads the node's settings (once) and
/// returns the cluster members it lists.
async fn probe(backend: &Backend) -> Result<BTreeSet<NodeId>, mysql_async::Error> {
    let mut conn = mysql_async::Conn::new(opts(&backend.mysql, "", "")).await?;
    if backend.details().is_none() {
        let rows: Vec<(String, String)> = conn.query("SHOW SETTINGS").await?;
        let host = backend.mysql.rsplit_once(':').map_or("127.0.0.1", |h| h.0);
        if let Some((_, details)) = read_settings(host, &rows) {
            backend.set_details(details);
        }
    }
    let rows: Vec<(String, String)> = conn.query("SHOW STATUS LIKE 'cluster_%_nodes_set'").await?;
    let _ = conn.disconnect().await;
    Ok(rows
        .iter()
        .flat_map(|(_, v)| topology::parse_nodes_set(v))
        .collect())
}

/// A member known only by its API address: its settings over HTTP (the
/// binary-API port answers HTTP too).
async fn settings_over_http(
    member: &NodeId,
) -> Result<(String, Details), crate::client::ClientError> {
    let client = DaemonClient::new(ClientConfig {
        base_url: format!("http://{member}"),
        token: None,
        timeout: PROBE_TIMEOUT,
        connect_timeout: PROBE_TIMEOUT,
    });
    let set: ResultSet = NodeApi::query_one(&client, "SHOW SETTINGS").await?;
    let rows: Vec<(String, String)> = (0..set.rows.len())
        .filter_map(|i| Some((set.text(i, "Setting_name")?, set.text(i, "Value")?)))
        .collect();
    let host = member
        .as_str()
        .rsplit_once(':')
        .map_or("127.0.0.1", |h| h.0);
    read_settings(host, &rows).ok_or_else(|| crate::client::ClientError::Decode {
        url: format!("http://{member}/sql?mode=raw"),
        reason: "SHOW SETTINGS lists no MySQL and HTTP listener".into(),
    })
}

/// `(mysql address, details)` from `SHOW SETTINGS` rows; `host` replaces
/// a missing or wildcard listener address.
pub fn read_settings(host: &str, rows: &[(String, String)]) -> Option<(String, Details)> {
    let at = |line: &str| -> Option<(String, String)> {
        let l = topology::parse_listener(line)?;
        let h = match l.host.as_deref() {
            None | Some("0.0.0.0") | Some("::") | Some("[::]") => host.to_string(),
            Some(h) => h.to_string(),
        };
        let proto = line
            .rsplit(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        Some((format!("{h}:{}", l.port), proto))
    };
    let (mut mysql, mut http, mut api) = (None, None, None);
    let mut helper = true;
    for (name, value) in rows {
        match name.as_str() {
            "searchd.listen" => {
                let Some((addr, proto)) = at(value) else {
                    continue;
                };
                let parsed = topology::parse_listener(value).map(|l| l.proto);
                if proto.starts_with("mysql") && !proto.contains("vip") {
                    mysql.get_or_insert(addr);
                } else if parsed == Some(topology::Proto::Http) {
                    http.get_or_insert(format!("http://{addr}"));
                } else if parsed == Some(topology::Proto::Api) {
                    api.get_or_insert(NodeId::new(addr));
                }
            }
            "searchd.buddy_path" => helper = !value.trim().is_empty(),
            _ => {}
        }
    }
    // The binary-API port answers HTTP as well.
    let http = http.or_else(|| api.as_ref().map(|a| format!("http://{a}")))?;
    Some((mysql?, Details { http, api, helper }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn settings_name_the_listeners_and_the_helper() {
        let settings = rows(&[
            ("searchd.listen", "127.0.0.1:9306:mysql41"),
            ("searchd.listen", "9308:http"),
            ("searchd.listen", "0.0.0.0:9312"),
            ("searchd.listen", "127.0.0.1:9350-9359:replication"),
            ("searchd.buddy_path", ""),
        ]);
        let (mysql, details) = read_settings("10.0.0.5", &settings).unwrap();
        assert_eq!(mysql, "127.0.0.1:9306");
        assert_eq!(details.http, "http://10.0.0.5:9308");
        assert_eq!(details.api, Some(NodeId::new("10.0.0.5:9312")));
        assert!(!details.helper);
        let with_helper = rows(&[
            ("searchd.listen", "127.0.0.1:9306:mysql"),
            ("searchd.listen", "127.0.0.1:9312"),
        ]);
        let (_, details) = read_settings("h", &with_helper).unwrap();
        assert_eq!(details.http, "http://127.0.0.1:9312");
        assert!(details.helper);
        assert!(read_settings("h", &rows(&[("searchd.listen", "9312")])).is_none());
    }

    #[test]
    fn healthy_nodes_are_handed_out_in_turn_and_a_failed_one_last() {
        let b = Backends::new(&["a:1".into(), "b:1".into(), "c:1".into()]);
        b.all()[1].set_healthy(false);
        let first: Vec<String> = b.candidates(None).iter().map(|n| n.mysql.clone()).collect();
        assert_eq!(first, ["a:1", "c:1", "b:1"]);
        let second: Vec<String> = b
            .candidates(Some("c:1"))
            .iter()
            .map(|n| n.mysql.clone())
            .collect();
        assert_eq!(second, ["a:1", "b:1"]);
    }
}
