//! Who this node is and which nodes are alive, read from what the daemon
//! reports (`SHOW SETTINGS`, `SHOW STATUS`). Pure parsing; the queries live in
//! `store`.
//!
//! The node id must equal the string the daemon lists in
//! `cluster_<c>_nodes_set`: the address and port of the binary-API listener.
//! PHP Buddy turned a port-only `listen` line into `127.0.0.1:<port>`, which is
//! wrong on multi-host clusters; here such a line is resolved against the
//! cluster's own member list, and refused with a clear error when that is not
//! possible.

use std::collections::BTreeSet;

use crate::ids::NodeId;

/// One `searchd.listen` line, split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub host: Option<String>,
    pub port: u16,
    pub proto: Proto,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// The binary API (no protocol suffix, or `sphinx`): the node identity.
    Api,
    Http,
    /// MySQL, replication, https, vip variants …: never an identity.
    Other,
}

/// Parses `[host:]port[:proto]`; port ranges (replication) and unix sockets
/// are not identities and yield `None`.
pub fn parse_listener(line: &str) -> Option<Listener> {
    let parts: Vec<&str> = line.trim().split(':').collect();
    let (host, port, proto) = match parts.as_slice() {
        [port] => (None, *port, ""),
        [a, b] if b.parse::<u16>().is_ok() => (Some(*a), *b, ""),
        [port, proto] => (None, *port, *proto),
        [host, port, proto] => (Some(*host), *port, *proto),
        _ => return None,
    };
    let port = port.parse::<u16>().ok()?;
    let proto = match proto.to_ascii_lowercase().as_str() {
        "" | "sphinx" => Proto::Api,
        "http" => Proto::Http,
        _ => Proto::Other,
    };
    if host.is_some_and(|h| h.is_empty() || h.starts_with('/')) {
        return None;
    }
    Some(Listener {
        host: host.map(str::to_string),
        port,
        proto,
    })
}

/// Why the node id could not be determined.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    #[error("Settings searchdListen parameter must be set")]
    NoListen,
    #[error("Node ID detection failed: no binary-API or HTTP listener among the searchd.listen settings")]
    NoApiListener,
    #[error(
        "Node ID detection failed: listener '{line}' has no address and none of the cluster members ({members}) \
         uses port {port} on this host; set `listen = <address>:{port}` in searchd's config"
    )]
    Unresolved {
        line: String,
        port: u16,
        members: String,
    },
}

fn is_wildcard(host: &str) -> bool {
    host == "0.0.0.0" || host == "::" || host == "[::]"
}

/// Determines this node's id from its `searchd.listen` lines.
///
/// * The first binary-API listener (else the first HTTP listener) is the
///   identity, as in the daemon's own cluster member lists.
/// * With an explicit address the id is `address:port`.
/// * Without one (or with a wildcard) the id is looked up in `cluster_members`
///   (all `nodes_set` entries of the clusters this node belongs to): the entry
///   with this port whose host is one of `local_addresses`, or the only entry
///   with this port. A node in no cluster only talks to itself, so
///   `127.0.0.1:<port>` is then correct.
pub fn node_id(
    listen_lines: &[String],
    cluster_members: &BTreeSet<NodeId>,
    local_addresses: &BTreeSet<String>,
) -> Result<NodeId, NodeIdError> {
    if listen_lines.is_empty() {
        return Err(NodeIdError::NoListen);
    }
    let parsed: Vec<(String, Listener)> = listen_lines
        .iter()
        .filter_map(|l| parse_listener(l).map(|p| (l.clone(), p)))
        .collect();
    let (line, listener) = parsed
        .iter()
        .find(|(_, l)| l.proto == Proto::Api)
        .or_else(|| parsed.iter().find(|(_, l)| l.proto == Proto::Http))
        .ok_or(NodeIdError::NoApiListener)?;
    if let Some(host) = listener.host.as_deref().filter(|h| !is_wildcard(h)) {
        return Ok(NodeId::new(format!("{host}:{}", listener.port)));
    }
    if cluster_members.is_empty() {
        return Ok(NodeId::new(format!("127.0.0.1:{}", listener.port)));
    }
    let suffix = format!(":{}", listener.port);
    let same_port: Vec<&NodeId> = cluster_members
        .iter()
        .filter(|m| m.as_str().ends_with(&suffix))
        .collect();
    let local = same_port.iter().find(|m| {
        let host = &m.as_str()[..m.as_str().len() - suffix.len()];
        local_addresses.contains(host)
    });
    match (local, same_port.as_slice()) {
        (Some(id), _) => Ok((*id).clone()),
        (None, [only]) => Ok((*only).clone()),
        _ => Err(NodeIdError::Unresolved {
            line: line.clone(),
            port: listener.port,
            members: cluster_members
                .iter()
                .map(NodeId::as_str)
                .collect::<Vec<_>>()
                .join(","),
        }),
    }
}

/// Splits a `cluster_<c>_nodes_set` value.
pub fn parse_nodes_set(value: &str) -> BTreeSet<NodeId> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(NodeId::new)
        .collect()
}

/// The live members in a `cluster_<c>_nodes_view` value (the `:replication`
/// entries are the same nodes' replication ports).
pub fn parse_nodes_view(value: &str) -> BTreeSet<NodeId> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty() && !s.contains(":replication"))
        .map(NodeId::new)
        .collect()
}

/// Buddy's live node count: one `replication` entry per live node.
pub fn view_node_count(value: &str) -> usize {
    value.matches("replication").count()
}

/// Membership of the user cluster as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Membership {
    /// Every member the cluster remembers, dead ones included.
    pub all: BTreeSet<NodeId>,
    /// Members in the current view.
    pub active: BTreeSet<NodeId>,
    /// The cluster has quorum (`status = primary`).
    pub primary: bool,
}

impl Membership {
    /// A node that shards only locally: it alone, always healthy.
    pub fn single(node: &NodeId) -> Self {
        let set: BTreeSet<NodeId> = [node.clone()].into();
        Self {
            all: set.clone(),
            active: set,
            primary: true,
        }
    }

    pub fn inactive(&self) -> BTreeSet<NodeId> {
        self.all.difference(&self.active).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    fn ids(v: &[&str]) -> BTreeSet<NodeId> {
        v.iter().map(|s| NodeId::new(*s)).collect()
    }

    fn hosts(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn listener_lines_parse() {
        let cases = [
            ("9333", Some((None, 9333, Proto::Api))),
            ("9234:http", Some((None, 9234, Proto::Http))),
            (
                "127.0.0.1:9308:http",
                Some((Some("127.0.0.1"), 9308, Proto::Http)),
            ),
            (
                "localhost:9312",
                Some((Some("localhost"), 9312, Proto::Api)),
            ),
            (
                "127.0.0.1:9306:mysql41",
                Some((Some("127.0.0.1"), 9306, Proto::Other)),
            ),
            ("127.0.0.1:9360-9370:replication", None),
            ("/var/run/sock:mysql", None),
            ("", None),
        ];
        for (line, want) in cases {
            let got = parse_listener(line).map(|l| (l.host, l.port, l.proto));
            let want = want.map(|(h, p, pr)| (h.map(str::to_string), p, pr));
            assert_eq!(got, want, "{line}");
        }
    }

    #[test]
    fn typical_config_uses_the_api_port() {
        let l = lines(&[
            "127.0.0.1:1306:mysql41",
            "127.0.0.1:1308:http",
            "127.0.0.1:1312",
            "127.0.0.1:1360-1370:replication",
        ]);
        let id = node_id(&l, &BTreeSet::new(), &BTreeSet::new()).unwrap();
        assert_eq!(id.as_str(), "127.0.0.1:1312");
    }

    #[test]
    fn http_listener_is_the_fallback_identity() {
        let l = lines(&["127.0.0.1:1306:mysql41", "127.0.0.1:1308:http"]);
        let id = node_id(&l, &BTreeSet::new(), &BTreeSet::new()).unwrap();
        assert_eq!(id.as_str(), "127.0.0.1:1308");
    }

    #[test]
    fn port_only_listener_is_resolved_against_cluster_members() {
        let l = lines(&["9312"]);
        let members = ids(&["10.0.0.1:9312", "10.0.0.2:9312"]);
        let id = node_id(&l, &members, &hosts(&["127.0.0.1", "10.0.0.2"])).unwrap();
        assert_eq!(id.as_str(), "10.0.0.2:9312");
        let err = node_id(&l, &members, &hosts(&["127.0.0.1"])).unwrap_err();
        assert!(matches!(err, NodeIdError::Unresolved { port: 9312, .. }));
        let single = ids(&["10.0.0.9:9312", "10.0.0.1:9400"]);
        assert_eq!(
            node_id(&l, &single, &BTreeSet::new()).unwrap().as_str(),
            "10.0.0.9:9312"
        );
        assert_eq!(
            node_id(&l, &BTreeSet::new(), &BTreeSet::new())
                .unwrap()
                .as_str(),
            "127.0.0.1:9312"
        );
    }

    #[test]
    fn missing_listeners_are_clear_errors() {
        assert_eq!(
            node_id(&[], &BTreeSet::new(), &BTreeSet::new()),
            Err(NodeIdError::NoListen)
        );
        assert_eq!(
            node_id(
                &lines(&["127.0.0.1:9306:mysql"]),
                &BTreeSet::new(),
                &BTreeSet::new()
            ),
            Err(NodeIdError::NoApiListener)
        );
    }

    #[test]
    fn node_id_errors_say_what_to_set() {
        let (none, nowhere) = (BTreeSet::new(), BTreeSet::new());
        assert_eq!(
            node_id(&[], &none, &nowhere).unwrap_err().to_string(),
            "Settings searchdListen parameter must be set"
        );
        assert_eq!(
            node_id(&lines(&["127.0.0.1:9306:mysql"]), &none, &nowhere)
                .unwrap_err()
                .to_string(),
            "Node ID detection failed: no binary-API or HTTP listener among the searchd.listen settings"
        );
        let members = ids(&["10.0.0.1:9312", "10.0.0.2:9312"]);
        assert_eq!(
            node_id(&lines(&["9312"]), &members, &hosts(&["127.0.0.1"]))
                .unwrap_err()
                .to_string(),
            "Node ID detection failed: listener '9312' has no address and none of the cluster \
             members (10.0.0.1:9312,10.0.0.2:9312) uses port 9312 on this host; set \
             `listen = <address>:9312` in searchd's config"
        );
    }

    #[test]
    fn membership_values_parse() {
        let view =
            "127.0.0.1:9112,127.0.0.1:9124:replication,127.0.0.1:9212,127.0.0.1:9224:replication";
        assert_eq!(
            parse_nodes_view(view),
            ids(&["127.0.0.1:9112", "127.0.0.1:9212"])
        );
        assert_eq!(view_node_count(view), 2);
        assert_eq!(parse_nodes_set(" a:1, b:2 ,"), ids(&["a:1", "b:2"]));
        let m = Membership {
            all: ids(&["a:1", "b:2", "c:3"]),
            active: ids(&["a:1", "c:3"]),
            primary: true,
        };
        assert_eq!(m.inactive(), ids(&["b:2"]));
    }
}
