//! README's "The first ten minutes", run as written: the demo in a
//! pseudo-terminal (rexpect), its console commands typed there, and the SQL
//! blocks through the `mysql` client, in README order. The commands come
//! from README.md, so the walkthrough cannot go stale; the checks are here,
//! one per step name, so a new step (say, a rebalance) needs a new check.

mod sharding_support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rexpect::session::PtySession;

/// A step of the walkthrough: `<!-- walkthrough: <kind> [<name>] -->` and
/// the fenced block after it.
#[derive(Debug)]
struct Step {
    kind: String,
    name: String,
    body: String,
}

fn steps() -> Vec<Step> {
    let readme = include_str!("../README.md");
    let mut steps = Vec::new();
    let mut rest = readme;
    while let Some(at) = rest.find("<!-- walkthrough: ") {
        rest = &rest[at + "<!-- walkthrough: ".len()..];
        let (tag, after) = rest.split_once(" -->").expect("closed marker");
        let mut words = tag.split_whitespace();
        let kind = words.next().unwrap_or_default().to_string();
        let name = words.next().unwrap_or_default().to_string();
        let block = after.split_once("```").expect("a fenced block").1;
        let block = block.split_once('\n').expect("fence line").1;
        let body = block.split_once("```").expect("closed fence").0.to_string();
        steps.push(Step { kind, name, body });
        rest = after;
    }
    steps
}

/// The mysql client, as a reader of the README would run it.
fn mysql(port: u16, sql: &str) -> (bool, String) {
    let mut child = Command::new("mysql")
        .args(["-h127.0.0.1", &format!("-P{port}"), "--table"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the walkthrough needs a `mysql` client on PATH (README: Before you start)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(sql.as_bytes())
        .expect("write the statements");
    let out = child.wait_with_output().expect("mysql runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs `sql` until `done` accepts the outcome: the README says "after a
/// few seconds" where the cluster needs time to notice.
fn mysql_until(port: u16, sql: &str, what: &str, done: impl Fn(bool, &str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (ok, text) = mysql(port, sql);
        if done(ok, &text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: still not there after 60 s; last output:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

fn count_is(text: &str, n: u64) -> bool {
    text.lines().any(|l| {
        l.trim_matches(|c: char| c == '|' || c.is_whitespace()) == n.to_string()
            && l.starts_with('|')
    })
}

/// Rows of a SHOW SHARDING STATUS box with status `active`.
fn active_copies(text: &str) -> usize {
    text.lines().filter(|l| l.contains("| active ")).count()
}

/// Distinct nodes holding copies in a SHOW SHARDING STATUS box.
fn copy_nodes(text: &str) -> usize {
    text.lines()
        .filter(|l| l.contains("| active "))
        .filter_map(|l| l.split('|').nth(3).map(str::trim))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

fn console(demo: &mut PtySession, line: &str, expect: &str) {
    demo.send_line(line).expect("type into the demo");
    demo.exp_string(expect)
        .unwrap_or_else(|e| panic!("after {line:?} the demo did not print {expect:?}: {e}"));
}

#[test]
fn the_readme_walkthrough_runs_as_written() {
    let steps = steps();
    let names: Vec<String> = steps
        .iter()
        .map(|s| format!("{} {}", s.kind, s.name).trim().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "shell",
            "sql create",
            "demo kill",
            "sql healed-after-loss",
            "sql write",
            "demo restart",
            "sql rebalanced",
            "sql drop",
            "demo quit"
        ],
        "README walkthrough steps changed: give each new step a check here"
    );
    let shell = steps[0].body.trim();
    let args: Vec<&str> = shell
        .split_whitespace()
        .skip_while(|w| !w.ends_with("shardbuddy"))
        .skip(1)
        .collect();
    assert_eq!(args, ["demo"], "{shell}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_shardbuddy"));
    command.args(&args);
    let mut demo = rexpect::session::spawn_command(command, Some(60_000)).expect("demo starts");
    let (_, connect) = demo
        .exp_regex(r"Connect:   mysql -h127\.0\.0\.1 -P\d+")
        .expect("the demo says how to connect");
    let port: u16 = connect.rsplit("-P").next().unwrap().parse().unwrap();
    let (banner, data_dir) = demo
        .exp_regex(r"Data and logs: \S+")
        .expect("the demo names its data directory");
    assert!(banner.contains("Over HTTP: curl -s 127.0.0.1:"), "{banner}");
    let data_dir = data_dir.trim_start_matches("Data and logs: ").to_string();
    demo.exp_string("demo> ").expect("the console prompt");

    for step in &steps[1..] {
        match (step.kind.as_str(), step.name.as_str()) {
            ("sql", "create") => {
                let (ok, text) = mysql(port, &step.body);
                assert!(ok, "{text}");
                assert!(count_is(&text, 8), "{text}");
                assert!(text.contains("| ok "), "{text}");
                assert!(!text.contains("degraded"), "{text}");
            }
            ("demo", "kill") => console(&mut demo, step.body.trim(), "node 2 killed"),
            ("sql", "healed-after-loss") => {
                // Every shard back to two live copies, none on the dead node
                // (until the loss is noticed, the old copies still show).
                mysql_until(
                    port,
                    &step.body,
                    "shards rebuilt on the survivors",
                    |ok, text| {
                        ok && count_is(text, 8)
                            && active_copies(text) == 8
                            && copy_nodes(text) == 2
                            && !text.contains("inactive")
                            && !text.contains("pending")
                            && !text.contains("degraded")
                    },
                );
            }
            ("sql", "write") => {
                let (ok, text) = mysql(port, &step.body);
                assert!(ok, "{text}");
                assert!(count_is(&text, 24), "{text}");
            }
            ("demo", "restart") => console(&mut demo, step.body.trim(), "node 2 is running again"),
            ("sql", "rebalanced") => {
                mysql_until(port, &step.body, "copies on all three nodes", |ok, text| {
                    ok && count_is(text, 24)
                        && active_copies(text) == 8
                        && copy_nodes(text) == 3
                        && !text.contains("pending")
                });
            }
            ("sql", "drop") => {
                let (ok, text) = mysql(port, &step.body);
                assert!(ok, "{text}");
                assert!(!text.contains("| t "), "{text}");
            }
            ("demo", "quit") => {
                demo.send_line(step.body.trim()).expect("type \\quit");
                demo.exp_string("stopped; removed").expect("the demo stops");
                demo.exp_eof().expect("the demo exits");
                let status = demo.process().wait().expect("exit status");
                assert!(format!("{status:?}").ends_with(", 0)"), "{status:?}");
                assert!(
                    !std::path::Path::new(&data_dir).exists(),
                    "{data_dir} left behind"
                );
            }
            (kind, name) => panic!("no check for README step '{kind} {name}'"),
        }
    }
}
