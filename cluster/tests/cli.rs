//! The commands' contract (`../shared/cluster-cli.md`) from outside: exit codes, one-line errors,
//! the changefeed lifecycle as `status --json` and `changefeed list --json` show it, a refused
//! duplicate node, and a node stopped by SIGTERM.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dispatcher_cluster::harness::{feed, signal, working, Cluster};

const BIN: &str = env!("CARGO_BIN_EXE_dispatcher-cluster");
const ALL: [&str; 2] = ["n1", "n2"];

/// A refused command: exit 2 and exactly one line on stderr that says `why`.
fn refused(c: &Cluster, args: &[&str], why: &str) {
    let (code, out, err) = c.cli(args);
    assert_eq!(code, 2, "{args:?} should be refused: {out} {err}");
    assert_eq!(err.lines().count(), 1, "{args:?}: one line on stderr, got {err:?}");
    assert!(err.contains(why), "{args:?}: {err:?} does not say {why:?}");
}

#[test]
fn the_changefeed_lifecycle_and_refusals_follow_the_contract() {
    let mut c = Cluster::start("cli-lifecycle", BIN, &ALL, 5);
    c.request(&["changefeed", "create", "--id", "cf", "--tables", "4", "--spans-per-table", "2"]);
    refused(&c, &["changefeed", "create", "--id", "cf", "--tables", "1"], "already exists");
    refused(&c, &["changefeed", "create", "--id", "bad", "--tables", "0"], "at least 1");
    refused(&c, &["changefeed", "pause", "--id", "nope"], "unknown changefeed nope");
    refused(&c, &["changefeed", "bogus", "--id", "cf"], "bogus");
    c.converge(&ALL, Instant::now(), &BTreeMap::new());
    refused(&c, &["changefeed", "move-maintainer", "--id", "cf", "--to", "n9"], "n9");
    refused(&c, &["changefeed", "move", "--id", "cf", "--table", "9", "--to", "n2"], "no table 9");
    refused(&c, &["changefeed", "split", "--id", "cf", "--table", "1", "--span", "5"], "no span 5");
    refused(&c, &["changefeed", "move", "--id", "cf", "--table", "1", "--to", "n9"], "n9");
    refused(
        &c,
        &["changefeed", "merge", "--id", "nope", "--table", "1", "--spans", "0,1"],
        "unknown changefeed",
    );

    // A split accepted just before the maintainer moves is carried out by the next one: the
    // request was stored before it was answered.
    c.request(&["changefeed", "split", "--id", "cf", "--table", "2", "--into", "3"]);
    let from = c.maintainer("cf");
    let to = if from == "n1" { "n2" } else { "n1" };
    c.request(&["changefeed", "move-maintainer", "--id", "cf", "--to", to]);
    let floor = c.floor();
    c.converge(&ALL, Instant::now(), &floor);
    let s = c.status();
    assert_eq!(c.maintainer("cf"), to);
    let spans = working(&s).into_iter().filter(|d| d.0 == "cf" && d.2 == 2).count();
    assert_eq!(spans, 4, "table 2: its first span in three, its second as it was");

    // With --redo, both modes tile every table.
    c.request(&["changefeed", "create", "--id", "cf-redo", "--tables", "3", "--redo"]);
    let floor = c.floor();
    c.converge(&ALL, Instant::now(), &floor);
    let s = c.status();
    assert_eq!(feed(&s, "cf-redo")["redo"], true);
    let redo = working(&s).into_iter().filter(|d| d.0 == "cf-redo" && d.1 == "redo").count();
    assert_eq!(redo, 3, "one redo dispatcher per table");
    c.request(&["changefeed", "remove", "--id", "cf-redo"]);

    let (code, out, _) = c.cli(&["changefeed", "list", "--json"]);
    assert_eq!(code, 0);
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["id"], "cf");
    assert_eq!(list[0]["tables"], 4);

    // Pause: nothing runs, the keys stay; resume: it runs again; remove: gone for good.
    c.request(&["changefeed", "pause", "--id", "cf"]);
    c.converge(&ALL, Instant::now(), &BTreeMap::new());
    let s = c.status();
    assert_eq!(feed(&s, "cf")["state"], "stopped");
    assert!(feed(&s, "cf")["maintainer"].is_null());
    refused(&c, &["changefeed", "pause", "--id", "cf"], "cf is");
    c.request(&["changefeed", "resume", "--id", "cf"]);
    let floor = c.floor();
    c.converge(&ALL, Instant::now(), &floor);
    assert_eq!(feed(&c.status(), "cf")["state"], "normal");
    c.request(&["changefeed", "remove", "--id", "cf"]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = c.status();
        let gone = s["changefeeds"].as_array().unwrap().is_empty();
        let idle =
            s["nodes"].as_array().unwrap().iter().all(|n| n["dispatchers"].as_array().unwrap().is_empty());
        if gone && idle {
            break;
        }
        assert!(Instant::now() < deadline, "remove did not finish: {s:#}");
        std::thread::sleep(Duration::from_millis(250));
    }
    let (_, out, _) = c.cli(&["changefeed", "list", "--json"]);
    assert_eq!(out.trim(), "[]");
}

#[test]
fn a_second_process_under_a_live_id_is_refused_and_sigterm_resigns() {
    let mut c = Cluster::start("cli-nodes", BIN, &ALL, 5);
    // The same id again, while n1 lives: exit 2.
    let (code, _, err) = {
        let out = std::process::Command::new(BIN)
            .args(["node", "--id", "n1", "--listen", "127.0.0.1:0", "--etcd", &c.etcd.endpoint])
            .args(["--cluster", &c.etcd.cluster])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(code, Some(2), "{err}");
    assert!(err.lines().last().unwrap_or("").contains("already running"), "{err}");
    // SIGTERM: exit 0 within a few seconds, its registration gone at once (the lease revoked),
    // not after the lease's TTL.
    let pid = c.pid("n1");
    let at = Instant::now();
    signal(pid, "-TERM");
    let mut child = c.nodes.remove("n1").unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(at.elapsed() < Duration::from_secs(5), "SIGTERM did not stop the node");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    let s = c.status();
    let ids: Vec<&str> = s["nodes"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["n2"], "n1's registration goes with its lease, before the TTL");
    assert!(at.elapsed() < Duration::from_secs(5));
    // And the id can start again at once.
    c.start_node("n1");
    assert!(at.elapsed() < Duration::from_secs(5), "n1 started again before its old lease could expire");
}

#[test]
fn an_unreachable_etcd_is_exit_2_with_one_line() {
    let out =
        std::process::Command::new(BIN).args(["status", "--etcd", "http://127.0.0.1:1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
    let out = std::process::Command::new(BIN).args(["status"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--etcd is required");
}
