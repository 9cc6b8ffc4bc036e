//! searchd-style configuration: `searchd { key = value … }` plus an optional `sim { … }`
//! section for simulator-only knobs that real searchd does not know.
//!
//! The `searchd` section is kept verbatim (key order, repeated keys) because
//! `SHOW SETTINGS` prints it back line by line, and Buddy derives the node id from it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum ConfigError {
    #[error("failed to read config '{path}': {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config line {line}: {reason}")]
    Syntax { line: usize, reason: String },
    #[error("listen '{0}': {1}")]
    Listen(String, String),
    #[error("searchd.data_dir is required (the simulator only runs in RT mode)")]
    NoDataDir,
    #[error("no listener: at least one `listen` line is required")]
    NoListener,
    #[error("sim.{key}: {reason}")]
    SimKey { key: String, reason: String },
    #[error("searchd.{key}: {reason}")]
    SearchdKey { key: String, reason: String },
}

/// The protocol a `listen` line serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// Binary API port (`host:port`). The simulator answers HTTP on it, as searchd does.
    Sphinx,
    Mysql,
    Http,
    Replication,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub ip: IpAddr,
    pub port: u16,
    /// Last port of a `portA-portB` range (replication), else equal to `port`.
    pub port_last: u16,
    pub proto: Proto,
    /// The line as written, for `SHOW SETTINGS`.
    pub raw: String,
}

impl Listener {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }

    /// Parses `[host:]port[-last][:proto]` the way searchd accepts it.
    pub fn parse(raw: &str) -> Result<Listener, ConfigError> {
        let err = |why: &str| ConfigError::Listen(raw.to_string(), why.to_string());
        let parts: Vec<&str> = raw.trim().split(':').collect();
        let (host, port_part, proto) = match parts.as_slice() {
            [port] => ("127.0.0.1", *port, None),
            [a, b] if is_port_spec(a) => ("127.0.0.1", *a, Some(*b)),
            [host, port] => (*host, *port, None),
            [host, port, proto] => (*host, *port, Some(*proto)),
            _ => return Err(err("expected [host:]port[:proto]")),
        };
        let proto = match proto.map(|p| p.to_ascii_lowercase()) {
            None => Proto::Sphinx,
            Some(p) if p == "sphinx" => Proto::Sphinx,
            Some(p) if p == "mysql" || p == "mysql41" => Proto::Mysql,
            Some(p) if p == "http" || p == "https" => Proto::Http,
            Some(p) if p == "replication" => Proto::Replication,
            Some(p) => return Err(err(&format!("unknown protocol '{p}'"))),
        };
        let (port, port_last) = match port_part.split_once('-') {
            Some((a, b)) => (
                parse_port(a).ok_or_else(|| err("bad port"))?,
                parse_port(b).ok_or_else(|| err("bad port"))?,
            ),
            None => {
                let p = parse_port(port_part).ok_or_else(|| err("bad port"))?;
                (p, p)
            }
        };
        let host = if host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        let ip: IpAddr = host
            .parse()
            .map_err(|_| err("host must be a numeric IP address"))?;
        Ok(Listener {
            ip,
            port,
            port_last,
            proto,
            raw: raw.trim().to_string(),
        })
    }
}

fn is_port_spec(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit() || c == '-')
}

fn parse_port(s: &str) -> Option<u16> {
    s.trim().parse::<u16>().ok()
}

/// searchd's connection limits (`searchd` section keys, with searchd's defaults).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetLimits {
    /// `network_timeout` (alias `read_timeout`, default 5 s): a connection that sends no request
    /// within it is closed (facts §6: EOF after 5.0 s).
    pub network_timeout: Duration,
    /// `client_timeout` (default 5 minutes): how long a kept-alive connection may wait between
    /// requests (facts §6: still open after 65 s), also while a request is half sent.
    pub client_timeout: Duration,
    /// `max_packet_size` (default 128M): larger HTTP bodies get `413` (facts §6:
    /// `length out of bounds N(134217728)`).
    pub max_packet_size: u64,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            network_timeout: Duration::from_secs(5),
            client_timeout: Duration::from_secs(300),
            max_packet_size: 128 * 1024 * 1024,
        }
    }
}

/// A time with searchd's special suffixes (`us`, `ms`, `s`, `m`, `h`, `d`, `w`; none: seconds).
pub fn parse_time(text: &str) -> Option<Duration> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    Some(match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "us" => Duration::from_micros(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        "d" => Duration::from_secs(n.checked_mul(86_400)?),
        "w" => Duration::from_secs(n.checked_mul(604_800)?),
        _ => return None,
    })
}

/// A size with searchd's special suffixes (`k`, `m`, `g`, `t`; none: bytes).
pub fn parse_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit.trim() {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => return None,
    };
    n.checked_mul(1u64 << shift)
}

/// Simulator-only settings (`sim { … }` section). Every timing has a default.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Connect timeout towards agents (other nodes).
    pub agent_connect_timeout: Duration,
    /// Whole-request timeout towards agents.
    pub agent_query_timeout: Duration,
    /// Compact the write-ahead log into a snapshot after this many records.
    pub wal_compact_records: u64,
    /// `fsync` the log before acknowledging a write (off by default: `kill -9` keeps the page cache).
    pub wal_fsync: bool,
    /// Users for the optional auth model: `name:password:perms` with perms from `read,write,schema` or `all`/`none`.
    pub users: Vec<UserSpec>,
    /// Shared secret that node-to-node (agent) queries present when auth is configured.
    pub agent_secret: Option<String>,
    /// Worker threads reported to the helper as `--threads=N`.
    pub threads: usize,
    /// Bound on one request to the helper (searchd sets none; this keeps a hung helper from
    /// holding a client connection forever).
    pub helper_request_timeout: Duration,
    pub cluster: ClusterTimings,
    /// The version string searchd reports (`Server:` header, MySQL handshake, `SHOW STATUS`).
    pub version: String,
    /// How statements are charged: `fast` (no cost) or `realistic` (real searchd's timings).
    pub profile: crate::cost::Profile,
    /// Test tooling: statement faults set from the start (`statement_fault`, repeatable; see
    /// [`crate::faults`]).
    pub statement_faults: Vec<crate::faults::StatementFault>,
}

/// Timings of replication clusters. searchd (Galera) needs 4.6–6.5 s to drop a dead node from
/// the view; the simulator's defaults do it in about 1.2 s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterTimings {
    /// How often a node checks every peer it shares a cluster with (one check per node pair,
    /// whatever the number of clusters).
    pub heartbeat: Duration,
    /// A peer without a successful check for this long is dead and leaves the view.
    pub suspect: Duration,
    /// Bound on one replication message (a write, a view change) to a peer.
    pub message_timeout: Duration,
    /// How long a write waits for a primary component (during a view change) before failing.
    pub write_wait: Duration,
    /// Bound on a full state transfer to a joining node.
    pub transfer_timeout: Duration,
}

impl Default for ClusterTimings {
    fn default() -> Self {
        ClusterTimings {
            heartbeat: Duration::from_millis(200),
            suspect: Duration::from_millis(1000),
            message_timeout: Duration::from_millis(2000),
            write_wait: Duration::from_millis(5000),
            transfer_timeout: Duration::from_secs(120),
        }
    }
}

/// Environment variables that override the cluster timings (milliseconds), for every node
/// started with them (tests set them once for a whole cluster).
const CLUSTER_ENV: &[&str] = &[
    "MANTICORE_SIM_CLUSTER_HEARTBEAT_MS",
    "MANTICORE_SIM_CLUSTER_SUSPECT_MS",
    "MANTICORE_SIM_CLUSTER_MESSAGE_TIMEOUT_MS",
    "MANTICORE_SIM_CLUSTER_WRITE_WAIT_MS",
    "MANTICORE_SIM_CLUSTER_TRANSFER_TIMEOUT_MS",
];

impl ClusterTimings {
    fn slot(&mut self, key: &str) -> Option<&mut Duration> {
        match key {
            "cluster_heartbeat_ms" | "MANTICORE_SIM_CLUSTER_HEARTBEAT_MS" => {
                Some(&mut self.heartbeat)
            }
            "cluster_suspect_ms" | "MANTICORE_SIM_CLUSTER_SUSPECT_MS" => Some(&mut self.suspect),
            "cluster_message_timeout_ms" | "MANTICORE_SIM_CLUSTER_MESSAGE_TIMEOUT_MS" => {
                Some(&mut self.message_timeout)
            }
            "cluster_write_wait_ms" | "MANTICORE_SIM_CLUSTER_WRITE_WAIT_MS" => {
                Some(&mut self.write_wait)
            }
            "cluster_transfer_timeout_ms" | "MANTICORE_SIM_CLUSTER_TRANSFER_TIMEOUT_MS" => {
                Some(&mut self.transfer_timeout)
            }
            _ => None,
        }
    }

    /// The defaults of a profile: `realistic` detects a dead peer as late as Galera does.
    pub fn for_profile(profile: crate::cost::Profile) -> ClusterTimings {
        let mut t = ClusterTimings::default();
        if profile == crate::cost::Profile::Realistic {
            t.suspect = crate::cost::REALISTIC_SUSPECT;
        }
        t
    }

    /// Applies `MANTICORE_SIM_CLUSTER_*_MS` variables (the config file wins over them).
    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for name in CLUSTER_ENV {
            if let Some(value) = get(name) {
                let ms = value
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| ConfigError::SimKey {
                        key: name.to_string(),
                        reason: "expected milliseconds".to_string(),
                    })?;
                if let Some(slot) = self.slot(name) {
                    *slot = Duration::from_millis(ms);
                }
            }
        }
        Ok(())
    }
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            agent_connect_timeout: Duration::from_millis(1000),
            agent_query_timeout: Duration::from_millis(3000),
            wal_compact_records: 10_000,
            wal_fsync: false,
            users: Vec::new(),
            threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(2),
            agent_secret: None,
            helper_request_timeout: Duration::from_secs(300),
            cluster: ClusterTimings::default(),
            version: crate::node::VERSION.to_string(),
            profile: crate::cost::Profile::Fast,
            statement_faults: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSpec {
    pub name: String,
    pub password: String,
    pub perms: crate::auth::Perms,
}

#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    /// `searchd` section lines in file order: (key, value).
    pub searchd: Vec<(String, String)>,
    pub listeners: Vec<Listener>,
    pub data_dir: PathBuf,
    pub log: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// `None`: key absent (the default helper would be looked up, which the simulator does not ship);
    /// `Some("")`: disabled; otherwise the command line.
    pub buddy_path: Option<String>,
    pub telemetry: bool,
    /// Connection limits from the `searchd` section (searchd's defaults otherwise).
    pub net: NetLimits,
    pub sim: SimSettings,
    /// Keys the simulator does not interpret (logged at start).
    pub unknown_keys: Vec<String>,
}

const KNOWN_SEARCHD_KEYS: &[&str] = &[
    "listen",
    "data_dir",
    "log",
    "query_log",
    "pid_file",
    "buddy_path",
    "binlog_path",
    "telemetry",
    "query_log_format",
    "network_timeout",
    "read_timeout",
    "client_timeout",
    "max_packet_size",
];

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let sections = parse_sections(text)?;
        let mut searchd = Vec::new();
        let mut sim_lines = Vec::new();
        for (name, lines) in sections {
            match name.as_str() {
                "searchd" => searchd.extend(lines),
                "sim" => sim_lines.extend(lines),
                _ => {} // `common`, `source`, `index` … are not used by an RT-mode node
            }
        }
        let mut listeners = Vec::new();
        let mut data_dir = None;
        let mut log = None;
        let mut pid_file = None;
        let mut buddy_path = None;
        let mut telemetry = true;
        let mut net = NetLimits::default();
        let mut unknown_keys = Vec::new();
        for (key, value) in &searchd {
            let bad = |what: &str| ConfigError::SearchdKey {
                key: key.clone(),
                reason: format!("expected {what}, got '{value}'"),
            };
            match key.as_str() {
                "network_timeout" | "read_timeout" => {
                    net.network_timeout = parse_time(value).ok_or_else(|| bad("a time"))?
                }
                "client_timeout" => {
                    net.client_timeout = parse_time(value).ok_or_else(|| bad("a time"))?
                }
                "max_packet_size" => {
                    net.max_packet_size = parse_size(value).ok_or_else(|| bad("a size"))?
                }
                "listen" => listeners.push(Listener::parse(value)?),
                "data_dir" => data_dir = Some(PathBuf::from(value)),
                "log" => log = Some(PathBuf::from(value)),
                "pid_file" => pid_file = Some(PathBuf::from(value)),
                "buddy_path" => buddy_path = Some(value.clone()),
                "telemetry" => telemetry = value != "0",
                k if KNOWN_SEARCHD_KEYS.contains(&k) => {}
                k => unknown_keys.push(k.to_string()),
            }
        }
        if listeners.is_empty() {
            return Err(ConfigError::NoListener);
        }
        let data_dir = data_dir.ok_or(ConfigError::NoDataDir)?;
        let sim = parse_sim(&sim_lines)?;
        Ok(Config {
            path: path.to_path_buf(),
            searchd,
            listeners,
            data_dir,
            log,
            pid_file,
            buddy_path,
            telemetry,
            net,
            sim,
            unknown_keys,
        })
    }

    /// The node identity: `host:port` of the first binary-API listener (what Galera and Buddy use).
    pub fn node_id(&self) -> String {
        self.api_listener()
            .map(|l| format!("{}:{}", l.ip, l.port))
            .unwrap_or_else(|| "127.0.0.1:0".to_string())
    }

    pub fn api_listener(&self) -> Option<&Listener> {
        self.listeners.iter().find(|l| l.proto == Proto::Sphinx)
    }

    /// URL the helper uses to reach this node: the first sphinx-or-http listener, in config order.
    pub fn helper_listen_url(&self) -> Option<String> {
        self.listeners
            .iter()
            .find(|l| matches!(l.proto, Proto::Sphinx | Proto::Http))
            .map(|l| format!("http://{}:{}", l.ip, l.port))
    }

    pub fn searchd_value(&self, key: &str) -> Option<&str> {
        self.searchd
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

type Section = (String, Vec<(String, String)>);

fn parse_sections(text: &str) -> Result<Vec<Section>, ConfigError> {
    let mut out: Vec<Section> = Vec::new();
    let mut current: Option<Section> = None;
    for (i, raw) in text.lines().enumerate() {
        let line_no = i + 1;
        let line = strip_comment(raw).trim();
        if line.is_empty() {
            continue;
        }
        let syntax = |reason: &str| ConfigError::Syntax {
            line: line_no,
            reason: reason.to_string(),
        };
        if let Some(section) = &mut current {
            if line == "}" {
                out.push(current.take().expect("section is open"));
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .ok_or_else(|| syntax("expected `key = value`"))?;
            section
                .1
                .push((key.trim().to_string(), value.trim().to_string()));
        } else {
            let Some(header) = line.strip_suffix('{') else {
                return Err(syntax("expected `<section> {`"));
            };
            let Some(name) = header.split_whitespace().next() else {
                return Err(syntax("expected a section name"));
            };
            current = Some((name.to_string(), Vec::new()));
        }
    }
    if current.is_some() {
        return Err(ConfigError::Syntax {
            line: text.lines().count(),
            reason: "unterminated section".to_string(),
        });
    }
    Ok(out)
}

fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(pos) => &line[..pos],
        None => line,
    }
}

fn parse_sim(lines: &[(String, String)]) -> Result<SimSettings, ConfigError> {
    parse_sim_with(lines, |name| std::env::var(name).ok())
}

/// The `sim` section over the environment (`get`): the profile comes first (the file wins over
/// `MANTICORE_SIM_PROFILE`) because it sets the defaults the other keys then override.
fn parse_sim_with(
    lines: &[(String, String)],
    get: impl Fn(&str) -> Option<String>,
) -> Result<SimSettings, ConfigError> {
    let mut sim = SimSettings::default();
    let profile_text = lines
        .iter()
        .rev()
        .find(|(k, _)| k == "profile")
        .map(|(_, v)| (v.clone(), "profile".to_string()))
        .or_else(|| {
            get(crate::cost::PROFILE_ENV).map(|v| (v, crate::cost::PROFILE_ENV.to_string()))
        });
    if let Some((text, key)) = profile_text {
        sim.profile = crate::cost::Profile::parse(&text).ok_or_else(|| ConfigError::SimKey {
            key,
            reason: format!("unknown profile '{text}' (expected fast or realistic)"),
        })?;
    }
    sim.cluster = ClusterTimings::for_profile(sim.profile);
    sim.cluster.apply_env(&get)?;
    for (key, value) in lines {
        let bad = |reason: &str| ConfigError::SimKey {
            key: key.clone(),
            reason: reason.to_string(),
        };
        let millis = || {
            value
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| bad("expected milliseconds"))
        };
        match key.as_str() {
            "agent_connect_timeout_ms" => sim.agent_connect_timeout = millis()?,
            "agent_query_timeout_ms" => sim.agent_query_timeout = millis()?,
            "wal_compact_records" => {
                sim.wal_compact_records = value.parse().map_err(|_| bad("expected a count"))?
            }
            "wal_fsync" => sim.wal_fsync = value == "1",
            "threads" => sim.threads = value.parse().map_err(|_| bad("expected a count"))?,
            "helper_request_timeout_ms" => sim.helper_request_timeout = millis()?,
            "user" => sim.users.push(parse_user(value).map_err(|why| bad(&why))?),
            "agent_secret" => sim.agent_secret = Some(value.clone()).filter(|v| !v.is_empty()),
            "version" if !value.is_empty() => sim.version = value.clone(),
            "profile" => {}
            "statement_fault" => sim
                .statement_faults
                .push(crate::faults::StatementFault::parse(value).map_err(|why| bad(&why))?),
            k if k.starts_with("cluster_") => match sim.cluster.slot(k) {
                Some(slot) => *slot = millis()?,
                None => return Err(bad("unknown key")),
            },
            _ => return Err(bad("unknown key")),
        }
    }
    Ok(sim)
}

fn parse_user(value: &str) -> Result<UserSpec, String> {
    let mut parts = value.splitn(3, ':');
    let name = parts.next().unwrap_or_default().trim();
    let password = parts.next().ok_or("expected name:password:perms")?.trim();
    let perms = parts.next().ok_or("expected name:password:perms")?.trim();
    if name.is_empty() {
        return Err("empty user name".to_string());
    }
    Ok(UserSpec {
        name: name.to_string(),
        password: password.to_string(),
        perms: crate::auth::Perms::parse(perms)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_forms() {
        let cases = [
            ("127.0.0.1:9306:mysql41", Proto::Mysql, 9306, 9306),
            ("127.0.0.1:9308:http", Proto::Http, 9308, 9308),
            ("127.0.0.1:9312", Proto::Sphinx, 9312, 9312),
            ("9312", Proto::Sphinx, 9312, 9312),
            ("9308:http", Proto::Http, 9308, 9308),
            (
                "127.0.0.1:9350-9359:replication",
                Proto::Replication,
                9350,
                9359,
            ),
            ("localhost:9306:mysql", Proto::Mysql, 9306, 9306),
        ];
        for (raw, proto, port, last) in cases {
            let l = Listener::parse(raw).unwrap_or_else(|e| panic!("{raw}: {e}"));
            assert_eq!((l.proto, l.port, l.port_last), (proto, port, last), "{raw}");
            assert_eq!(l.raw, raw);
        }
        for bad in ["", "a:b:c:d", "127.0.0.1:x", "127.0.0.1:1:ftp", "nohost:1"] {
            assert!(Listener::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_golden_shape() {
        let text = "searchd {\nlisten = 127.0.0.1:1306:mysql41\nlisten = 127.0.0.1:1308:http\nlisten = 127.0.0.1:1312\nlisten = 127.0.0.1:1350-1359:replication\ndata_dir = /tmp/d\nlog = /tmp/l\nquery_log = /tmp/q\npid_file = /tmp/p\nbuddy_path =\nfoo = bar\n}\nsim {\nagent_connect_timeout_ms = 250\n}\n";
        let c = Config::parse(Path::new("/x.conf"), text).unwrap();
        assert_eq!(c.node_id(), "127.0.0.1:1312");
        assert_eq!(
            c.helper_listen_url().as_deref(),
            Some("http://127.0.0.1:1308")
        );
        assert_eq!(c.buddy_path.as_deref(), Some(""));
        assert_eq!(c.searchd.len(), 10);
        assert_eq!(c.unknown_keys, vec!["foo".to_string()]);
        assert_eq!(c.sim.agent_connect_timeout, Duration::from_millis(250));
    }

    #[test]
    fn cluster_timings_from_file_and_env() {
        let mut t = ClusterTimings::default();
        t.apply_env(|name| (name == "MANTICORE_SIM_CLUSTER_SUSPECT_MS").then(|| "700".to_string()))
            .unwrap();
        assert_eq!(t.suspect, Duration::from_millis(700));
        assert!(t
            .apply_env(|name| (name == "MANTICORE_SIM_CLUSTER_HEARTBEAT_MS").then(|| "x".into()))
            .is_err());
        let text = "searchd {\nlisten = 1312\ndata_dir = /d\n}\nsim {\ncluster_heartbeat_ms = 50\ncluster_write_wait_ms = 900\n}\n";
        let c = Config::parse(Path::new("/x"), text).unwrap();
        assert_eq!(c.sim.cluster.heartbeat, Duration::from_millis(50));
        assert_eq!(c.sim.cluster.write_wait, Duration::from_millis(900));
        let bad = "searchd {\nlisten = 1312\ndata_dir = /d\n}\nsim {\ncluster_nope_ms = 5\n}\n";
        assert!(Config::parse(Path::new("/x"), bad).is_err());
    }

    #[test]
    fn profile_from_file_or_environment() {
        use crate::cost::Profile;
        let lines = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let env = |name: &str| (name == crate::cost::PROFILE_ENV).then(|| "realistic".to_string());
        let none = |_: &str| None;
        let fast = parse_sim_with(&[], none).unwrap();
        assert_eq!(fast.profile, Profile::Fast);
        assert_eq!(fast.cluster, ClusterTimings::default());
        let from_env = parse_sim_with(&[], env).unwrap();
        assert_eq!(from_env.profile, Profile::Realistic);
        assert_eq!(from_env.cluster.suspect, crate::cost::REALISTIC_SUSPECT);
        // The file wins over the environment, and explicit timings over the profile.
        let file = parse_sim_with(&lines(&[("profile", "fast")]), env).unwrap();
        assert_eq!(file.profile, Profile::Fast);
        let tuned = parse_sim_with(
            &lines(&[("profile", "realistic"), ("cluster_suspect_ms", "700")]),
            none,
        )
        .unwrap();
        assert_eq!(tuned.profile, Profile::Realistic);
        assert_eq!(tuned.cluster.suspect, Duration::from_millis(700));
        assert!(parse_sim_with(&lines(&[("profile", "slow")]), none).is_err());
    }

    #[test]
    fn connection_limits_from_the_searchd_section() {
        let text = "searchd {\nlisten = 1312\ndata_dir = /d\nnetwork_timeout = 2\nclient_timeout = 1m\nmax_packet_size = 8M\n}\n";
        let c = Config::parse(Path::new("/x"), text).unwrap();
        assert_eq!(c.net.network_timeout, Duration::from_secs(2));
        assert_eq!(c.net.client_timeout, Duration::from_secs(60));
        assert_eq!(c.net.max_packet_size, 8 << 20);
        let d = Config::parse(
            Path::new("/x"),
            "searchd {\nlisten = 1312\ndata_dir = /d\n}\n",
        )
        .unwrap();
        assert_eq!(d.net, NetLimits::default());
        assert_eq!(d.net.max_packet_size, 134_217_728);
        assert!(Config::parse(
            Path::new("/x"),
            "searchd {\nlisten = 1312\ndata_dir = /d\nclient_timeout = soon\n}\n"
        )
        .is_err());
    }

    #[test]
    fn rejects_bad_configs() {
        for text in [
            "searchd {\nlisten = 1\n}\n",
            "searchd {\ndata_dir = /x\n}\n",
            "searchd {\nlisten\n}\n",
            "searchd {\n",
        ] {
            assert!(Config::parse(Path::new("/x"), text).is_err(), "{text}");
        }
    }
}
