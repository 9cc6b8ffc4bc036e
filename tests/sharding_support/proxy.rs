//! `shardbuddy proxy` as a process in front of sim nodes.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use manticore_sim::testkit::SimNode;

pub struct Proxy {
    child: Child,
    /// Where clients connect.
    pub addr: String,
    /// Its monitoring endpoint.
    pub metrics: String,
    output: Arc<Mutex<String>>,
}

impl Proxy {
    /// Starts a proxy seeded with `seeds` (their MySQL listeners).
    pub fn start(seeds: &[&SimNode], env: &[(&str, &str)]) -> Proxy {
        let mut command = Command::new(env!("CARGO_BIN_EXE_shardbuddy"));
        command.args([
            "proxy",
            "--listen",
            "127.0.0.1:0",
            "--metrics",
            "127.0.0.1:0",
        ]);
        for node in seeds {
            command.args(["--node", &format!("127.0.0.1:{}", node.ports().mysql)]);
        }
        command.envs(env.iter().copied());
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the proxy starts");
        let output: Arc<Mutex<String>> = Arc::default();
        let stdout = child.stdout.take().expect("stdout");
        let sink = Arc::clone(&output);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut out = sink.lock().unwrap();
                out.push_str(&line);
                out.push('\n');
            }
        });
        let mut proxy = Proxy {
            child,
            addr: String::new(),
            metrics: String::new(),
            output,
        };
        proxy.addr = proxy.wait_for_word_after("shardbuddy proxy listening on ");
        proxy.metrics = proxy
            .wait_for_word_after("metrics and status page served on http://")
            .trim_end_matches('/')
            .to_string();
        proxy
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// The word following `marker` in the proxy's output, once it is there.
    fn wait_for_word_after(&self, marker: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let out = self.output();
            if let Some(at) = out.find(marker) {
                let rest = &out[at + marker.len()..];
                if let Some(word) = rest.split_whitespace().next() {
                    return word.to_string();
                }
            }
            assert!(
                Instant::now() < deadline,
                "the proxy did not print '{marker}':\n{out}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self) -> String {
        format!("mysql://{}", self.addr)
    }

    pub fn port(&self) -> String {
        self.addr.rsplit(':').next().unwrap_or_default().to_string()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("===== proxy output =====\n{}", self.output());
        }
    }
}
