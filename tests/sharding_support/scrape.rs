//! Reading a monitoring endpoint: the address a helper logs, plain HTTP GETs,
//! and the Prometheus text parsed by `prometheus-parse`.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use manticore_sim::testkit::SimNode;
use prometheus_parse::{Sample, Scrape, Value};

/// The monitoring address the node's helper logged (`served on http://…/`).
pub fn metrics_addr(node: &SimNode) -> String {
    let marker = "metrics and status page served on http://";
    super::wait_for_log(node, marker, Duration::from_secs(10));
    let log = node.log_text();
    let at = log.find(marker).expect("logged") + marker.len();
    log[at..].split('/').next().expect("an address").to_string()
}

/// `GET path` on `addr`: (status, content type, body).
pub fn get(addr: &str, path: &str) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").expect("request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("reply");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP reply");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    (status, content_type, body.to_string())
}

/// `/metrics` of `addr`, parsed.
pub fn scrape(addr: &str) -> Metrics {
    let (status, _, body) = get(addr, "/metrics");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with("# EOF\n"), "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    Metrics {
        samples: Scrape::parse(lines).expect("Prometheus text").samples,
        text: body,
    }
}

pub struct Metrics {
    pub samples: Vec<Sample>,
    /// The exposition as served.
    pub text: String,
}

/// A sample's value; a histogram's is its number of observations.
fn number(value: &Value) -> f64 {
    match value {
        Value::Counter(v) | Value::Gauge(v) | Value::Untyped(v) => *v,
        Value::Histogram(buckets) => buckets.iter().map(|b| b.count).fold(0.0, f64::max),
        Value::Summary(_) => f64::NAN,
    }
}

impl Metrics {
    /// The sum over the samples of `metric` whose labels include `labels`.
    pub fn sum(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| number(&s.value))
            .sum()
    }

    /// Whether any sample of `metric` has `labels`.
    pub fn has(&self, metric: &str, labels: &[(&str, &str)]) -> bool {
        self.samples
            .iter()
            .any(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
    }
}
