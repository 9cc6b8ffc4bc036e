//! Queries to agents (other nodes) over HTTP `/sql?mode=raw` on their binary-API port.

use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::net::http_client;
use crate::node::Node;
use crate::store::schema::ResultType;

/// One result set of a raw-mode reply.
#[derive(Debug, Clone, Default)]
pub struct RemoteSet {
    pub columns: Vec<(String, ResultType)>,
    pub rows: Vec<Vec<serde_json::Value>>,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AgentFailure {
    /// The node could not be reached (searchd's `receiving failure (…)` text).
    Network(String),
    /// The node answered with an error.
    Remote(String),
}

/// Marks node-to-node queries. searchd talks to agents over its binary protocol, whose failures
/// never reach the helper; the receiving node treats requests with this header the same way.
pub const AGENT_HEADER: &str = "X-Manticore-Sim-Agent";

pub async fn query(node: &Node, addr: &str, sql: &str) -> Result<Vec<RemoteSet>, AgentFailure> {
    if node.clusters.is_blocked(addr) {
        // A cut link looks like an agent that never answers.
        return Err(AgentFailure::Network(http_client::TIMED_OUT.to_string()));
    }
    let body = format!("query={}", utf8_percent_encode(sql, NON_ALPHANUMERIC));
    let marker = node.config.sim.agent_secret.as_deref().unwrap_or("1");
    let me = node.node_id();
    let headers = [
        ("Content-Type", "application/x-www-form-urlencoded"),
        (AGENT_HEADER, marker),
        (crate::cluster::messages::FROM_HEADER, me.as_str()),
    ];
    let sim = &node.config.sim;
    let resp = http_client::send(
        addr,
        "POST",
        "/sql?mode=raw",
        &headers,
        body.as_bytes(),
        sim.agent_connect_timeout,
        sim.agent_query_timeout,
    )
    .await
    .map_err(|e| AgentFailure::Network(e.agent_text()))?;
    let json: serde_json::Value = serde_json::from_slice(&resp.body)
        .map_err(|e| AgentFailure::Remote(format!("bad reply: {e}")))?;
    parse_reply(&json)
}

fn parse_reply(json: &serde_json::Value) -> Result<Vec<RemoteSet>, AgentFailure> {
    if let Some(err) = json.get("error").and_then(|e| e.as_str()) {
        if !err.is_empty() {
            return Err(AgentFailure::Remote(err.to_string()));
        }
    }
    let Some(sets) = json.as_array() else {
        return Err(AgentFailure::Remote("bad reply: not an array".into()));
    };
    let mut out = Vec::new();
    for set in sets {
        if let Some(err) = set.get("error").and_then(|e| e.as_str()) {
            if !err.is_empty() {
                return Err(AgentFailure::Remote(err.to_string()));
            }
        }
        let mut rs = RemoteSet {
            total: set.get("total").and_then(|t| t.as_u64()).unwrap_or(0),
            ..RemoteSet::default()
        };
        for col in set
            .get("columns")
            .and_then(|c| c.as_array())
            .into_iter()
            .flatten()
        {
            if let Some((name, spec)) = col.as_object().and_then(|o| o.iter().next()) {
                let ty = spec
                    .get("type")
                    .and_then(|t| t.as_str())
                    .unwrap_or("string");
                rs.columns.push((name.clone(), ResultType::from_name(ty)));
            }
        }
        for row in set
            .get("data")
            .and_then(|d| d.as_array())
            .into_iter()
            .flatten()
        {
            let Some(obj) = row.as_object() else { continue };
            rs.rows.push(
                rs.columns
                    .iter()
                    .map(|(n, _)| obj.get(n).cloned().unwrap_or(serde_json::Value::Null))
                    .collect(),
            );
        }
        out.push(rs);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_raw_replies() {
        let ok = serde_json::json!([{"columns":[{"id":{"type":"long long"}},{"t":{"type":"string"}}],"data":[{"id":1,"t":"a"}],"total":1,"error":"","warning":""}]);
        let sets = parse_reply(&ok).unwrap();
        assert_eq!(
            sets[0].columns,
            vec![
                ("id".to_string(), ResultType::LongLong),
                ("t".to_string(), ResultType::String)
            ]
        );
        assert_eq!(
            sets[0].rows[0],
            vec![serde_json::json!(1), serde_json::json!("a")]
        );
        let err = serde_json::json!({"error":"unknown local table(s) 'nope' in search request"});
        assert_eq!(
            parse_reply(&err).unwrap_err(),
            AgentFailure::Remote("unknown local table(s) 'nope' in search request".into())
        );
    }
}
