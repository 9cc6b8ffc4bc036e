//! The recordings of what a real searchd sent its helper
//! (`golden/buddy_envelopes.jsonl`).

use std::path::PathBuf;

use serde_json::Value;

/// The vendored recordings of a real searchd (`golden/` at the repository
/// root; see `golden/README.md`).
pub fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// One request searchd sent to its helper.
#[derive(Debug, Clone)]
pub struct RecordedEnvelope {
    /// What the recording was about.
    pub item: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Every recorded request to the helper's envelope endpoint (not `/config`).
pub fn recorded_envelopes() -> Vec<RecordedEnvelope> {
    let path = golden_dir().join("buddy_envelopes.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let record: Value = serde_json::from_str(line).expect("golden line is JSON");
        let item = record["item"].as_str().unwrap_or_default().to_string();
        for request in record["requests"].as_array().into_iter().flatten() {
            let path = request["path"].as_str().expect("path").to_string();
            if path == "/config" {
                continue;
            }
            let headers = request["headers"]
                .as_array()
                .expect("headers")
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_string(),
                        h[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            out.push(RecordedEnvelope {
                item: item.clone(),
                path,
                headers,
                body: request["body"].as_str().expect("body").to_string(),
            });
        }
    }
    out
}

impl RecordedEnvelope {
    /// Whether shardbuddy's grammar claims the statement this envelope carries
    /// (a sharding statement is answered by shardbuddy, never passed on).
    pub fn is_sharding_statement(&self) -> bool {
        let envelope: Value = serde_json::from_str(&self.body).expect("recorded body is JSON");
        let body = envelope["message"]["body"].as_str().unwrap_or_default();
        let error = envelope["error"]["message"].as_str().unwrap_or_default();
        shardbuddy::sql::claim(&shardbuddy::sql::normalize_payload(body), error).is_some()
    }

    /// Whether this is a `/cli` request, which shardbuddy runs itself (searchd
    /// sends every `/cli` statement to its helper before running it).
    pub fn is_console(&self) -> bool {
        let envelope: Value = serde_json::from_str(&self.body).expect("recorded body is JSON");
        envelope["message"]["path_query"] == "/cli"
    }
}
