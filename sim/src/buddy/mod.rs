//! Hosting the helper ("Buddy"): process supervision, forwarding failed requests with the v3
//! envelope, and turning its replies into what the client sees.

pub mod envelope;
pub mod process;

use serde_json::Value;

use crate::exec::error::ExecError;
use crate::exec::result::{Cell, Output, ResultColumn, ResultSet};
use crate::net::http_client;
use crate::node::Node;
use crate::store::schema::ResultType;
use envelope::{Failure, Reply};

/// Requests carrying this User-Agent come from the helper and are never sent back to it.
pub fn is_buddy_agent(user_agent: Option<&str>) -> bool {
    user_agent.is_some_and(|ua| ua.starts_with("Manticore Buddy"))
}

/// Sends a failed request to the helper. `None`: no helper, or an unusable reply (logged);
/// the client then gets the original error.
pub async fn forward(node: &Node, failure: &Failure<'_>, conn_id: u32) -> Option<Reply> {
    let helper = node.helper()?;
    let body = envelope::request_body(failure);
    let request_id = format!("{conn_id}_{}", crc32fast::hash(failure.body.as_bytes()));
    let headers = [
        ("Accept", "*/*"),
        ("Request-ID", request_id.as_str()),
        ("Content-Type", "application/json; charset=UTF-8"),
    ];
    let addr = helper.url.trim_start_matches("http://");
    let resp = http_client::send(
        addr,
        "POST",
        "/",
        &headers,
        body.as_bytes(),
        node.config.sim.agent_connect_timeout,
        node.config.sim.helper_request_timeout,
    )
    .await;
    let raw = match resp {
        Ok(r) => r.body,
        Err(e) => {
            node.log
                .line(&format!("WARNING: [BUDDY] [{conn_id}] request failed: {e}"));
            return None;
        }
    };
    match envelope::parse_reply(&raw) {
        Ok(reply) => Some(reply),
        Err(why) => {
            node.log.line(&format!(
                "WARNING: [BUDDY] [{conn_id}] {why}: {}",
                String::from_utf8_lossy(&raw)
            ));
            None
        }
    }
}

/// Tells the helper about a log-level change (`POST /config`), as searchd does.
pub async fn post_log_level(node: &Node, level: &str) {
    let Some(helper) = node.helper() else { return };
    let body = serde_json::json!({ "log_level": level }).to_string();
    let headers = [
        ("Accept", "*/*"),
        ("Content-Type", "application/json; charset=UTF-8"),
    ];
    let addr = helper.url.trim_start_matches("http://");
    if let Err(e) = http_client::send(
        addr,
        "POST",
        "/config",
        &headers,
        body.as_bytes(),
        node.config.sim.agent_connect_timeout,
        node.config.sim.helper_request_timeout,
    )
    .await
    {
        node.log
            .line(&format!("WARNING: [BUDDY] failed to set log level: {e}"));
    }
}

/// What a MySQL client gets from a helper reply; `Err` is the reason (logged) to keep the original error.
pub fn sql_outcome(reply: &Reply) -> Result<Vec<Result<Output, ExecError>>, String> {
    if reply.kind != "sql response" {
        return Err(format!("wrong response type '{}'", reply.kind));
    }
    match &reply.message {
        Value::Array(items) => Ok(items.iter().map(element_outcome).collect()),
        Value::Object(obj) => match obj.get("error").and_then(Value::as_str) {
            Some(text) => Ok(vec![Err(ExecError::new(text))]),
            None => Err("wrong reply format - not cli reply array".to_string()),
        },
        _ => Err("wrong reply format - not cli reply array".to_string()),
    }
}

/// One result-set element of a reply: rows (consumed positionally), an OK, or an error.
fn element_outcome(item: &Value) -> Result<Output, ExecError> {
    if let Some(err) = item
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty())
    {
        return Err(ExecError::new(err));
    }
    let Some(columns) = item.get("columns").and_then(Value::as_array) else {
        let total = item.get("total").and_then(Value::as_u64).unwrap_or(0);
        return Ok(Output::Ok { affected: total });
    };
    let mut rs = ResultSet::default();
    for col in columns {
        if let Some((name, spec)) = col.as_object().and_then(|o| o.iter().next()) {
            let ty = spec.get("type").and_then(Value::as_str).unwrap_or("string");
            rs.columns.push(ResultColumn {
                name: name.clone(),
                ty: ResultType::from_name(ty),
            });
        }
    }
    for row in item
        .get("data")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let cells: Vec<Cell> = match row {
            Value::Object(o) => o.values().map(json_cell).collect(),
            Value::Array(a) => a.iter().map(json_cell).collect(),
            _ => continue,
        };
        rs.rows.push(cells);
    }
    Ok(Output::Rows(rs))
}

fn json_cell(v: &Value) -> Cell {
    match v {
        Value::Null => Cell::Null,
        Value::Bool(b) => Cell::Int(i64::from(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Cell::Int(i),
            None => Cell::Str(n.to_string()),
        },
        Value::String(s) => Cell::Str(s.clone()),
        other => Cell::Str(other.to_string()),
    }
}

/// The HTTP body and status for a helper reply; `Err` keeps the original answer (reason logged).
pub fn http_outcome(
    reply: &Reply,
    sql_endpoint: bool,
    original_status: u16,
) -> Result<(u16, String, Option<String>), String> {
    let expected = if sql_endpoint {
        "sql response"
    } else {
        "json response"
    };
    if reply.kind != expected {
        return Err(format!("wrong response type '{}'", reply.kind));
    }
    let body = match &reply.message {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let status = if reply.error_code > 0 {
        u16::try_from(reply.error_code).unwrap_or(original_status)
    } else {
        original_status
    };
    Ok((status, body, reply.content_type.clone()))
}

/// A bearer token for the internal helper user, unique per daemon start.
pub fn new_token() -> String {
    let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
    format!(
        "{:08x}{:08x}",
        crc32fast::hash(seed.as_bytes()),
        crc32fast::hash(
            seed.as_bytes()
                .iter()
                .rev()
                .copied()
                .collect::<Vec<u8>>()
                .as_slice()
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(kind: &str, message: Value, code: i64) -> Reply {
        Reply {
            kind: kind.into(),
            message,
            error_code: code,
            content_type: None,
        }
    }

    #[test]
    fn sql_replies() {
        let rows = reply(
            "sql response",
            serde_json::json!([{"total":1,"error":"","warning":"","columns":[{"a":{"type":"string"}},{"n":{"type":"long long"}}],"data":[{"a":"x","n":5}]}]),
            200,
        );
        let out = sql_outcome(&rows).unwrap();
        let Ok(Output::Rows(rs)) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(rs.rows, vec![vec![Cell::Str("x".into()), Cell::Int(5)]]);
        assert_eq!(rs.columns[1].ty, ResultType::LongLong);
        let ok = sql_outcome(&reply(
            "sql response",
            serde_json::json!([{"total":0,"error":"","warning":""}]),
            200,
        ))
        .unwrap();
        assert_eq!(ok[0], Ok(Output::Ok { affected: 0 }));
        let err = sql_outcome(&reply(
            "sql response",
            serde_json::json!({"error":"nope"}),
            0,
        ))
        .unwrap();
        assert_eq!(err[0], Err(ExecError::new("nope")));
        assert!(sql_outcome(&reply("json response", serde_json::json!([]), 0)).is_err());
        assert!(sql_outcome(&reply("sql response", serde_json::json!(5), 0)).is_err());
    }

    #[test]
    fn http_replies() {
        let r = reply("json response", serde_json::json!({"error":""}), 0);
        assert_eq!(
            http_outcome(&r, false, 200).unwrap(),
            (200, "{\"error\":\"\"}".to_string(), None)
        );
        let text = reply("json response", Value::String("+---+\n".into()), 200);
        assert_eq!(http_outcome(&text, false, 501).unwrap().1, "+---+\n");
        assert!(http_outcome(&r, true, 200).is_err());
        assert!(
            is_buddy_agent(Some("Manticore Buddy/1.0"))
                && !is_buddy_agent(Some("curl"))
                && !is_buddy_agent(None)
        );
    }
}
