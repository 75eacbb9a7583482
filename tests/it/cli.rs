//! The `dispatcher-core` command: decode/encode round trip and one-line errors with exit status 2.

use std::io::Write;
use std::process::{Command, Stdio};

fn run(args: &[&str], stdin: &[u8]) -> (i32, Vec<u8>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dispatcher-core"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap_or(-1), out.stdout, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Runs `args` without input, which must exit with status 0; returns what it printed.
fn stdout(args: &[&str]) -> String {
    let (code, out, err) = run(args, b"");
    assert_eq!(code, 0, "{args:?}: {err}");
    String::from_utf8(out).unwrap()
}

#[test]
fn bundled_example_decodes_and_round_trips() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/schedule_create.bin");
    let text = stdout(&["decode", "ScheduleDispatcherRequest", example]);
    assert!(text.contains(r#""operatorType":"O_Move""#), "{text}");
    let (code, bytes, _) = run(&["encode", "ScheduleDispatcherRequest"], text.trim().as_bytes());
    assert_eq!(code, 0);
    assert_eq!(bytes, std::fs::read(example).unwrap());
}

#[test]
fn bad_input_is_one_line_and_exit_status_2() {
    for (args, stdin, needle) in [
        (vec!["decode", "NoSuchMessage"], &b""[..], "unknown message \"NoSuchMessage\""),
        (vec!["decode", "Watermark"], &b"\xff\xff"[..], "Watermark: invalid protobuf"),
        (vec!["encode", "Watermark"], &b"{\"nope\":1}"[..], "Watermark: invalid JSON"),
        (vec!["encode", "Watermark"], &b"\xff"[..], "Watermark: input is not UTF-8 JSON"),
        (vec!["decode", "Watermark", "/no/such/file"], &b""[..], "Watermark: reading /no/such/file"),
        (vec!["frobnicate"], &b""[..], "unrecognized subcommand 'frobnicate'"),
        (vec![], &b""[..], "expected a command"),
    ] {
        let (code, _, err) = run(&args, stdin);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.starts_with("dispatcher-core: ") && err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn sim_runs_a_scenario_and_a_bad_file_is_exit_status_2_naming_file_line_and_field() {
    let ok = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/s1-move-interrupted-origin-cannot-close.toml");
    let json: serde_json::Value = serde_json::from_str(&stdout(&["sim", "--json", ok])).unwrap();
    assert_eq!(json[0]["passed"], true);
    let dir = std::env::temp_dir().join(format!("dc-sim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "nodes = [\"n1\"]\n\n[[steps]]\ndo = \"move\"\ntable = 1\nto = \"n9\"\n").unwrap();
    let (code, _, err) = run(&["sim", bad.to_str().unwrap()], b"");
    assert_eq!(code, 2);
    assert!(err.contains("bad.toml:6") && err.contains("to"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn sim_options_are_validated_and_emit_prints_timelines() {
    for (args, needle) in [
        (vec!["sim", "--random", "--nodes", "0"], "'--nodes <K>': 0 is not in 1..=16"),
        (vec!["sim", "--random", "--tables", "1001"], "'--tables <T>': 1001 is not in 1..=1000"),
        (vec!["sim", "--random", "--seeds", "x"], "'--seeds <N>'"),
        (
            vec!["sim", "--random", "--explorer", "nope"],
            "unknown explorer `nope` (expected one of: classic, swarm)",
        ),
        (vec!["sim", "--random", "--mutation", "nope"], "unknown mutation"),
        (vec!["sim", "--emit"], "--random"),
        (vec!["sim", "--seeds", "5"], "--random"),
        (vec!["sim", "--random", "scenarios"], "cannot be used with"),
        (vec!["sim", "--frobnicate"], "unexpected argument '--frobnicate'"),
    ] {
        let (code, _, err) = run(&args, b"");
        assert_eq!(code, 2, "{args:?}");
        assert!(err.starts_with("dispatcher-core: ") && err.contains(needle), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
    }
    // Help and version on every subcommand, on stdout with status 0.
    for sub in [vec![], vec!["decode"], vec!["encode"], vec!["messages"], vec!["sim"]] {
        for (flag, needle) in [("--help", "Usage: dispatcher-core"), ("--version", env!("CARGO_PKG_VERSION"))]
        {
            let args: Vec<&str> = sub.iter().copied().chain([flag]).collect();
            assert!(stdout(&args).contains(needle), "{args:?}");
        }
    }
    let text = stdout(&["sim", "--random", "--seeds", "2", "--from", "5", "--emit"]);
    assert_eq!(text.matches("name = \"swarm-").count(), 2, "{text}");
    let text = stdout(&["sim", "--random", "--seeds", "3"]);
    assert!(text.contains("coverage (swarm explorer)") && text.contains("never combined"), "{text}");
}

/// A failing seed of `sim --random` is shrunk into `sim-failures/seed-S.toml` with its report
/// beside it (`seed-S.html`, the failing result above its timeline); `--report` and `--trace`
/// write a page and a trace for a scenario run.
#[test]
fn sim_writes_reports_for_scenarios_and_for_shrunk_failing_seeds() {
    let dir = std::env::temp_dir().join(format!("dispatcher-core-cli-report-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dispatcher-core"))
        .current_dir(&dir)
        .args([
            "sim",
            "--random",
            "--seeds",
            "300",
            "--mutation",
            "no-stale-create-tombstones",
            "--stop-at-first",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "the re-opened fault is found");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("shrunk to")).unwrap_or_else(|| panic!("{text}"));
    let toml = line.rsplit(' ').next().unwrap();
    let page = std::fs::read_to_string(dir.join(toml).with_extension("html")).unwrap();
    assert!(page.contains("<svg") && page.contains("class=\"fail\""), "the report shows the failure");
    assert!(page.contains("\"violation\""), "and marks the violation on the timeline");

    let scenario = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/s5-merge-interrupted-before-commit.toml");
    let (html, json) = (dir.join("s5.html"), dir.join("s5.json"));
    stdout(&["sim", "--report", html.to_str().unwrap(), "--trace", json.to_str().unwrap(), scenario]);
    assert!(std::fs::read_to_string(&html).unwrap().contains("class=\"pass\""));
    let trace: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert!(trace["traceEvents"].as_array().is_some_and(|e| e.len() > 100));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_coordinator_runs_seeds_and_names_a_replay_for_a_failing_one() {
    let out = stdout(&["sim", "--random", "--coordinator", "--seeds", "2", "--from", "3"]);
    assert!(out.contains("2 seeds, 2 passed, 0 failed"), "{out}");
    let (code, _, err) = run(&["sim", "--coordinator"], b"");
    assert_eq!(code, 2, "--coordinator needs --random: {err}");
    let (code, out, _) = run(
        &[
            "sim",
            "--random",
            "--coordinator",
            "--seeds",
            "400",
            "--mutation",
            "stop-at-running-epoch",
            "--stop-at-first",
        ],
        b"",
    );
    let out = String::from_utf8_lossy(&out);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("FAILED") && out.contains("replay: dispatcher-core sim --random --coordinator"),
        "{out}"
    );
}
