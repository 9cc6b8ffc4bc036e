//! The command line as a person meets it: help that shows the commands and
//! helper mode, typos that fail with a suggestion instead of starting a
//! helper, `--version` everywhere, answers on stdout; and helper mode still
//! as lenient as searchd needs it.

mod support;

use std::process::{Command, Output};

use support::process::{Shardbuddy, BINARY};

fn run(args: &[&str]) -> Output {
    Command::new(BINARY)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("shardbuddy runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn help_shows_the_commands_and_helper_mode_on_stdout() {
    for args in [&["help"][..], &["--help"], &["-h"]] {
        let out = run(args);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stdout}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
        for needle in ["demo", "plan", "parse", "Helper options", "--listen"] {
            assert!(stdout.contains(needle), "{args:?} lacks {needle}: {stdout}");
        }
    }
}

#[test]
fn every_command_explains_itself_on_stdout() {
    for (args, needle) in [
        (&["demo", "--help"][..], "--nodes"),
        (&["help", "demo"], "--engine"),
        (&["plan", "--help"], "docs/plan-format.md"),
        (&["parse", "--help"], "--daemon-error"),
    ] {
        let out = run(args);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout.contains(needle), "{args:?}: {stdout}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

#[test]
fn version_is_answered_everywhere() {
    for args in [
        &["--version"][..],
        &["-V"],
        &["demo", "--version"],
        &["parse", "--version"],
        &["plan", "--version"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(
            text(&out.stdout).contains(env!("CARGO_PKG_VERSION")),
            "{args:?}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn a_mistyped_command_fails_with_a_suggestion_instead_of_starting_a_helper() {
    let out = run(&["demoo"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        stderr.contains("unrecognized subcommand 'demoo'"),
        "{stderr}"
    );
    assert!(
        stderr.contains("similar subcommand exists: 'demo'"),
        "{stderr}"
    );

    let out = run(&["serve", "--listen=http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        !text(&out.stdout).contains("Buddy v"),
        "no helper may start"
    );
}

#[test]
fn bad_options_of_commands_are_usage_errors() {
    let out = run(&["demo", "--nodes", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("--nodes"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["plan", "extra"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    // `parse` keeps 64 for usage errors: its 2 means "not claimed".
    let out = run(&["parse", "--frobnicate", "SHOW SHARDING STATUS"]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
}

#[test]
fn helper_mode_with_unknown_flags_still_starts() {
    let helper = Shardbuddy::start(&[
        "--listen=http://127.0.0.1:9",
        "--frobnicate",
        "--some-future-flag=1",
        "--threads=1",
    ]);
    assert!(
        helper.output.wait_for("--frobnicate"),
        "{:?}",
        helper.output.lines()
    );
    assert!(helper.output.wait_for("--some-future-flag=1"));
    let ignored = helper.output.lines().join("\n");
    assert!(
        ignored.contains("WARN ignoring an unknown command-line argument"),
        "{ignored}"
    );
}

#[test]
fn bad_values_of_helper_options_name_the_option_and_the_expected_form() {
    for (arg, want) in [
        ("--listen=https://h:1", "only http:// is supported; expected http://HOST[:PORT]"),
        ("--bind=h:x", "expected HOST[:PORT], for example 127.0.0.1:9999"),
        ("--log-level=loud", "invalid value 'loud' for '--log-level <LEVEL>': expected info, debug, debugv or debugvv"),
        ("--daemon-timeout=0", "expected a positive number of seconds, for example 0.5 or 30"),
    ] {
        let out = run(&[arg]);
        assert_eq!(out.status.code(), Some(2), "{arg}");
        assert!(text(&out.stderr).contains(want), "{arg}: {}", text(&out.stderr));
    }
    let out = Command::new(BINARY)
        .env("SHARDBUDDY_FALLBACK_URL", "unix:/run/buddy.sock")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains(
            "invalid value 'unix:/run/buddy.sock' of SHARDBUDDY_FALLBACK_URL: unix sockets are not supported"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_busy_bind_address_says_how_to_choose_another() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let out = run(&[
        "--listen=http://127.0.0.1:9",
        &format!("--bind=127.0.0.1:{port}"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot listen on 127.0.0.1:{port}: ")),
        "{stderr}"
    );
    assert!(
        stderr.contains("; choose another address with --bind (port 0 picks a free one)"),
        "{stderr}"
    );
}

#[test]
fn the_demo_says_what_it_lacks_to_start() {
    let out = Command::new(BINARY)
        .args(["demo", "--engine", "searchd"])
        .env("PATH", "/nonexistent")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no searchd was found on PATH; install Manticore Search, give its path with --searchd PATH, or use --engine sim"),
        "{}",
        text(&out.stderr)
    );
    let out = Command::new(BINARY)
        .args(["demo", "--smoke"])
        .env("MANTICORE_SIM_BIN", "/nonexistent/manticore-sim")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("shardbuddy demo: cannot start /nonexistent/manticore-sim: "),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn standard_input_that_is_not_text_is_refused_by_parse_and_plan() {
    use std::io::Write;
    for (command, said) in [
        (
            "parse",
            "shardbuddy parse: cannot read the statement from standard input: ",
        ),
        (
            "plan",
            "shardbuddy plan: cannot read the request from standard input: ",
        ),
    ] {
        let mut child = Command::new(BINARY)
            .arg(command)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("shardbuddy runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"SHOW \xff\xfe TABLES")
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{command}");
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with(said), "{command}: {stderr}");
        assert!(stderr.contains("valid UTF-8"), "{command}: {stderr}");
    }
}

#[test]
fn the_demo_without_the_simulator_next_to_it_says_how_to_get_it() {
    // A copy of shardbuddy in a directory without manticore-sim.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let copy = dir.path().join("bin").join("shardbuddy");
    std::fs::create_dir(copy.parent().unwrap()).unwrap();
    if std::fs::hard_link(BINARY, &copy).is_err() {
        std::fs::copy(BINARY, &copy).unwrap();
    }
    let out = Command::new(&copy)
        .args(["demo", "--smoke"])
        .env_remove("MANTICORE_SIM_BIN")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "manticore-sim was not found in {}; build the whole workspace (cargo build --release) \
             or set MANTICORE_SIM_BIN",
            copy.parent().unwrap().display()
        )),
        "{stderr}"
    );
}

#[test]
fn a_demo_node_that_exits_while_starting_shows_its_log() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("fake-sim");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'fake searchd: no license to serve'\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(BINARY)
        .args(["demo", "--smoke"])
        .env("MANTICORE_SIM_BIN", &fake)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("node 1 exited while starting; its log ends:\n"),
        "{stderr}"
    );
    assert!(
        stderr.contains("  fake searchd: no license to serve"),
        "{stderr}"
    );
}

#[test]
fn a_helper_that_cannot_print_its_address_says_so_and_stops() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full");
    let out = Command::new(BINARY)
        .args(["--listen=http://127.0.0.1:9", "--bind=127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(full)
        .output()
        .expect("shardbuddy runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("shardbuddy: cannot announce the listening address: "),
        "{stderr}"
    );
}

#[test]
fn a_demo_statement_a_node_refuses_is_shown_with_the_node_and_the_answer() {
    let out = Command::new(BINARY)
        .args(["demo", "--smoke"])
        .env(
            "SHARDBUDDY_FAILPOINTS",
            "helper.received=error(refused by a failpoint)",
        )
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "node 1 could not run `CREATE TABLE c:t (title text) shards='4' rf='2'`: refused by a \
             failpoint"
        ),
        "{stderr}"
    );
}
