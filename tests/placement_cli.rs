//! `shardbuddy plan` as a process: the documented example prints exactly the
//! documented output, and malformed input fails cleanly.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn plan(input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardbuddy"))
        .arg("plan")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the shardbuddy binary starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(input.as_bytes())
        .expect("stdin accepts the document");
    child.wait_with_output().expect("shardbuddy plan exits")
}

/// The fenced JSON block that follows `marker` in the format document.
fn documented(marker: &str) -> String {
    let doc = include_str!("../docs/plan-format.md");
    let after = doc.split_once(marker).expect("marker present").1;
    let body = after.split_once("```json\n").expect("json block").1;
    body.split_once("\n```")
        .expect("closed block")
        .0
        .to_string()
}

#[test]
fn documented_example_prints_the_documented_output() {
    let output = plan(&documented("<!-- example-input -->"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.trim_end(), documented("<!-- example-output -->"));
}

#[test]
fn malformed_input_names_the_field_and_exits_1() {
    let cases = [
        ("not json", "expected ident"),
        (
            r#"{"nodes": [], "tables": [{"name": "t", "shards": 2, "rf": "x"}]}"#,
            "tables[0].rf",
        ),
        (
            r#"{"nodes": [{"id": "127.0.0.1:1312", "state": "gone"}], "tables": []}"#,
            "nodes[0].state",
        ),
        (
            r#"{"nodes": [{"id": "127.0.0.1:1312", "state": "active"}], "tables": [{"name": "t", "shards": 2, "rf": 1, "placement": {"0": ["127.0.0.1:1312"], "1": ["127.0.0.1:9999"]}}]}"#,
            "tables[0].placement.\"1\"",
        ),
    ];
    for (input, field) in cases {
        let output = plan(input);
        assert_eq!(output.status.code(), Some(1), "{input}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(stderr.starts_with("shardbuddy plan: "), "{stderr}");
        assert!(stderr.contains(field), "{input}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn new_table_gets_the_initial_placement_and_create_steps() {
    let input = r#"{
        "nodes": [
            {"id": "10.0.0.1:9312", "state": "active"},
            {"id": "10.0.0.2:9312", "state": "active"},
            {"id": "10.0.0.3:9312", "state": "active"}
        ],
        "tables": [{"name": "t", "shards": 4, "rf": 2, "placement": null, "columns": "id bigint"}]
    }"#;
    let output = plan(input);
    assert!(output.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let table = &doc["tables"][0];
    assert_eq!(
        table["placement"]["0"],
        serde_json::json!(["10.0.0.1:9312", "10.0.0.3:9312"])
    );
    assert_eq!(table["moves"], serde_json::json!([]));
    let steps = table["steps"].as_array().unwrap();
    // Buddy's 16 items plus one marker per shipped copy (spec §8.5 has 4).
    assert_eq!(steps.len(), 20);
    assert_eq!(
        steps[0]["query"],
        "CREATE CLUSTER IF NOT EXISTS ab948c47f2712b5f1e9d26a254f22d05 'ab948c47f2712b5f1e9d26a254f22d05' as path"
    );
}
