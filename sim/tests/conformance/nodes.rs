//! The simulated nodes of one replayed case: started with the golden configuration, driven by
//! the records' notes (kills, restarts, directories, waits), and the placeholders of their
//! outputs.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use manticore_sim::testkit::{free_ports, NodeOptions, Ports, SimNode};

use super::normalize::{replace_generated_ids, replace_number, replace_pid_and_took};

/// How long replayed nodes take to declare a peer dead (milliseconds).
const REPLAY_SUSPECT_MS: u64 = 2000;
const PLUGIN_DIR: &str = manticore_sim::exec::show::PLUGIN_DIR;
const FAKE_HELPER: &str = env!("CARGO_BIN_EXE_sim-fake-buddy");
/// Numbers that appear in outputs and must not be taken for ports by the textual substitution.
const NOT_PORTS: &[u16] = &[42000];

pub struct Nodes {
    pub nodes: BTreeMap<String, SimNode>,
    /// Extra placeholders (`{blackhole}` …): text → placeholder.
    pub extra: Vec<(String, String)>,
}

impl Nodes {
    /// Nodes n1..nN with ports ascending by node number (outputs sorted by address keep node
    /// order), reporting the searchd build `version` the recording was made with.
    pub fn start(names: &[String], case: &str, version: &str) -> Nodes {
        let raw: Vec<Ports> = names.iter().map(|_| ports_without_collisions()).collect();
        let sorted = |f: fn(&Ports) -> u16| {
            let mut v: Vec<u16> = raw.iter().map(f).collect();
            v.sort_unstable();
            v
        };
        let (mysql, http, api) = (sorted(|p| p.mysql), sorted(|p| p.http), sorted(|p| p.api));
        let repl = sorted(|p| p.replication);
        let sets: Vec<Ports> = (0..raw.len())
            .map(|i| {
                let r = raw
                    .iter()
                    .find(|p| p.replication == repl[i])
                    .expect("a replication range per node");
                Ports {
                    mysql: mysql[i],
                    http: http[i],
                    api: api[i],
                    replication: r.replication,
                    replication_last: r.replication_last,
                }
            })
            .collect();
        let mut nodes = BTreeMap::new();
        for (i, (name, ports)) in names.iter().zip(sets).enumerate() {
            let options = NodeOptions {
                buddy_path: (case == "buddy" && name == "n1").then(|| FAKE_HELPER.to_string()),
                sim_lines: vec![
                    // Records taken "right after" a kill must still see the dead node, as
                    // searchd (4.6–6.5 s) does: a wider margin than the default 1 s under a
                    // loaded machine.
                    format!("cluster_suspect_ms = {REPLAY_SUSPECT_MS}"),
                    format!("version = {version}"),
                    // The replay compares answers, not timings: no cost model, whatever
                    // MANTICORE_SIM_PROFILE says.
                    "profile = fast".to_string(),
                ],
                ..NodeOptions::default()
            };
            let mut node = SimNode::configure_with_ports(i + 1, ports, options).unwrap();
            node.launch().unwrap();
            nodes.insert(name.clone(), node);
        }
        Nodes {
            nodes,
            extra: Vec::new(),
        }
    }

    pub fn node(&self, name: &str) -> &SimNode {
        &self.nodes[name]
    }

    pub fn node_mut(&mut self, name: &str) -> &mut SimNode {
        self.nodes.get_mut(name).expect("known node")
    }

    /// Applies what a record's note says happened before it (kills, restarts, directories the
    /// generator created, and waits for the cluster state the note describes).
    pub fn apply_note(&mut self, note: &str, record_node: &str) {
        if let Some(rest) = note
            .strip_prefix("generator did mkdir {data_dir}/")
            .or_else(|| note.strip_prefix("after mkdir {data_dir}/"))
        {
            let dir = rest.split_whitespace().next().unwrap_or("");
            let on = named(rest);
            let targets = if on.is_empty() {
                vec![record_node.to_string()]
            } else {
                on
            };
            for t in targets {
                self.mkdir(&t, dir);
            }
            return;
        }
        if note.contains("killed") || note.contains("kill -9 of") {
            let victims = match note.find("kill -9 of") {
                Some(pos) => named(&note[pos..]),
                None => named(note).into_iter().take(1).collect(),
            };
            for v in &victims {
                let node = self.node_mut(v);
                if node.is_running() {
                    node.kill();
                }
            }
            let after = |marker: &str| note.find(marker).map(|p| named(&note[p..]));
            if let Some(observer) = after("left ").and_then(|n| n.into_iter().next()) {
                // "n3 killed, left n1's view"
                self.wait_view(&observer, &victims, false);
            } else if note.contains("left the view") {
                let observer = self.nodes.keys().find(|k| !victims.contains(k)).cloned();
                if let Some(o) = observer {
                    self.wait_view(&o, &victims, false);
                }
            }
            // "n2 killed (-9), survivor n1", "n2 also killed: n1 alone"
            let survivor = after("survivor ")
                .and_then(|n| n.into_iter().next())
                .or_else(|| {
                    note.find(" alone")
                        .and_then(|p| named(&note[..p]).into_iter().last())
                });
            if let Some(s) = survivor {
                self.wait_non_primary(&s);
            }
            return;
        }
        if note.starts_with("survivor") && note.ends_with("dead") {
            // "survivor n1, n2+n3 dead": the golden record was taken once it lost the quorum.
            let survivor = named(note).into_iter().next().expect("a survivor");
            self.wait_non_primary(&survivor);
            return;
        }
        if let Some(pos) = note.find("left ") {
            // "after n3 left n1's nodes_view"
            let who = named(&note[..pos]);
            let observer = named(&note[pos..]);
            if let (Some(o), false) = (observer.first(), who.is_empty()) {
                self.wait_view(o, &who, false);
            }
            return;
        }
        if note.contains("restart") {
            let restarted: Vec<String> = named(note);
            for r in &restarted {
                let sigterm = note.contains("SIGTERM");
                let node = self.node_mut(r);
                if sigterm && node.is_running() {
                    node.restart().unwrap();
                } else if !node.is_running() {
                    node.launch().unwrap();
                }
            }
            for r in &restarted {
                self.wait_synced(r);
            }
        }
    }

    pub fn mkdir(&self, node: &str, dir: &str) {
        let _ = std::fs::create_dir_all(self.node(node).data_dir().join(dir));
    }

    /// `SHOW STATUS LIKE …` as (counter, value) pairs (empty when the node does not answer).
    pub fn status(&self, node: &str, like: &str) -> Vec<(String, String)> {
        let (_, body) = self
            .node(node)
            .raw_sql(&format!("SHOW STATUS LIKE '{like}'"))
            .unwrap_or((0, String::new()));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        json[0]["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| {
                (
                    r["Counter"].as_str().unwrap_or("").to_string(),
                    r["Value"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect()
    }

    /// The value of one status counter, if the node shows it.
    pub fn counter(&self, node: &str, name: &str) -> Option<String> {
        self.status(node, name)
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// Waits until every cluster view on `observer` shows (or stops showing) the nodes.
    pub fn wait_view(&self, observer: &str, nodes: &[String], present: bool) {
        let ids: Vec<String> = nodes.iter().map(|n| self.node(n).node_id()).collect();
        wait_until(&format!("{observer}'s view of {nodes:?}"), || {
            self.status(observer, "cluster_%_nodes_view")
                .iter()
                .all(|(_, view)| {
                    ids.iter()
                        .all(|id| view.split(',').any(|e| e == id) == present)
                })
        });
    }

    /// Waits until every cluster of `node` lost its primary component.
    pub fn wait_non_primary(&self, node: &str) {
        wait_until(&format!("{node} non-primary"), || {
            let rows = self.status(node, "cluster_%");
            rows.iter()
                .filter(|(k, _)| k == "cluster_name")
                .all(|(_, name)| {
                    let key = format!("cluster_{name}_status");
                    rows.iter().any(|(k, v)| *k == key && v == "non-primary")
                })
        });
    }

    /// Waits until a node reports every cluster synced (in a primary component).
    pub fn wait_synced(&self, node: &str) {
        wait_until(&format!("{node} synced"), || {
            let rows = self.status(node, "cluster_%");
            rows.iter()
                .filter(|(k, _)| k == "cluster_name")
                .all(|(_, name)| {
                    let is = |counter: &str, value: &str| {
                        let key = format!("cluster_{name}_{counter}");
                        rows.iter().any(|(k, v)| *k == key && v == value)
                    };
                    is("node_state", "synced") && is("status", "primary")
                })
        });
    }

    /// The record's SQL with placeholders replaced by this run's values.
    pub fn concrete_sql(&self, sql: &str) -> String {
        let mut out = sql.to_string();
        for (name, node) in &self.nodes {
            let p = node.ports();
            out = out
                .replace(&format!("{{{name}.mysql}}"), &p.mysql.to_string())
                .replace(&format!("{{{name}.http}}"), &p.http.to_string())
                .replace(&format!("{{{name}.api}}"), &p.api.to_string());
        }
        for (text, placeholder) in &self.extra {
            out = out.replace(placeholder, text);
        }
        out
    }

    /// Plain textual placeholders, as transcripts.md describes them.
    pub fn normalize(&self, text: &str) -> String {
        let uuid =
            regex::Regex::new(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
                .unwrap();
        let text = uuid.replace_all(text, "{uuid}");
        let mut out = replace_generated_ids(&text);
        for (name, node) in &self.nodes {
            let p = node.ports();
            out = out.replace(&node.data_dir().display().to_string(), "{data_dir}");
            out = out.replace(&node.dir().display().to_string(), "{node_dir}");
            out = out.replace(
                &format!("{}-{}", p.replication, p.replication_last),
                &format!("{{{name}.repl}}-{{{name}.repl_last}}"),
            );
            out = replace_number(&out, p.mysql, &format!("{{{name}.mysql}}"));
            out = replace_number(&out, p.http, &format!("{{{name}.http}}"));
            out = replace_number(&out, p.api, &format!("{{{name}.api}}"));
            for port in p.replication..=p.replication_last {
                out = replace_number(&out, port, &format!("{{{name}.repl}}"));
            }
        }
        for (text, placeholder) in &self.extra {
            match text.parse::<u16>() {
                Ok(port) => out = replace_number(&out, port, placeholder),
                Err(_) => out = out.replace(text, placeholder),
            }
        }
        out = out.replace(PLUGIN_DIR, "{plugin_dir}");
        replace_pid_and_took(&out)
    }
}

/// Node names (`n1`, `n2` …) mentioned in a text, in order.
pub fn named(text: &str) -> Vec<String> {
    let re = regex::Regex::new(r"\bn\d\b").unwrap();
    re.find_iter(text).map(|m| m.as_str().to_string()).collect()
}

/// Polls a condition (hang protection only: the replay itself compares exact outputs).
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ports_without_collisions() -> Ports {
    loop {
        let p = free_ports().unwrap();
        let used = [p.mysql, p.http, p.api];
        let clash = NOT_PORTS
            .iter()
            .any(|n| used.contains(n) || (p.replication..=p.replication_last).contains(n));
        if !clash {
            return p;
        }
    }
}
