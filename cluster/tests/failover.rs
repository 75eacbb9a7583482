//! Real failover, one fault per test, on loopback: a real etcd, three `dispatcher-cluster node`
//! processes (lease TTL 5 s), a changefeed of 50 tables in 100 spans with splits, moves and a
//! merge accepted just before the fault. Everything is read from outside, through
//! `status --json` (`../shared/cluster-cli.md`).
//!
//! Checked in every reading: a changefeed's persisted checkpoint never goes back; no key is
//! covered twice by `working` dispatchers on alive nodes (seen in two readings in a row: the
//! nodes are asked one after another, so one reading can straddle a move). Converged, in two
//! readings in a row: the expected nodes alive; per running changefeed, its maintainer on an
//! alive node, no operator in flight, each live table tiled exactly by working dispatchers on
//! alive nodes with nothing else of the changefeed left, and the persisted checkpoint past where
//! it was at the fault. The time from the fault to the first of those readings is printed.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::Etcd;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dispatcher-cluster");
const TTL_S: u64 = 5;
const CF: &str = "cf1";

struct Cluster {
    etcd: Etcd,
    name: String,
    nodes: BTreeMap<String, Child>,
    /// Highest persisted checkpoint seen per changefeed.
    persisted: BTreeMap<String, u64>,
    /// Overlaps seen in the previous reading.
    overlaps: Vec<String>,
    /// Start a node again when its process exits, as a supervisor would.
    supervise: bool,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

impl Cluster {
    fn start(name: &str) -> Cluster {
        let etcd = Etcd::start(name);
        let mut c = Cluster {
            etcd,
            name: name.to_owned(),
            nodes: BTreeMap::new(),
            persisted: BTreeMap::new(),
            overlaps: Vec::new(),
            supervise: false,
        };
        for id in ["n1", "n2", "n3"] {
            c.start_node(id);
        }
        c
    }

    /// Starts node `id`, waiting out a previous process's lease (its start is refused until then).
    fn start_node(&mut self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = std::env::temp_dir().join(format!("dc-{}-{id}.log", self.name));
            let mut child = Command::new(BIN)
                .args(["node", "--id", id, "--listen", "127.0.0.1:0", "--etcd", &self.etcd.endpoint])
                .args(["--lease-ttl-s", &TTL_S.to_string()])
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            let (tx, rx) = mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(Duration::from_secs(15)) {
                Ok(line) if line.starts_with(&format!("node {id} ready on ")) => {
                    self.nodes.insert(id.to_owned(), child);
                    return;
                }
                _ => {
                    let _ = child.kill();
                    let status = child.wait().unwrap();
                    let why = std::fs::read_to_string(&log).unwrap_or_default();
                    assert!(Instant::now() < deadline, "{id} did not start: {status} {why}");
                    std::thread::sleep(Duration::from_millis(500));
                }
            }
        }
    }

    fn pid(&self, id: &str) -> u32 {
        self.nodes[id].id()
    }

    fn kill9(&mut self, id: &str) {
        let mut child = self.nodes.remove(id).unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(BIN).args(args).args(["--etcd", &self.etcd.endpoint]).output().unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    fn request(&self, args: &[&str]) {
        let (code, _, err) = self.cli(args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }

    /// One reading, with the checks that hold in every reading.
    fn status(&mut self) -> Value {
        let (code, out, err) = self.cli(&["status", "--json"]);
        assert_eq!(code, 0, "status: {err}");
        let s: Value = serde_json::from_str(&out).unwrap();
        for f in s["changefeeds"].as_array().unwrap() {
            let id = f["id"].as_str().unwrap().to_owned();
            let p = f["persisted_checkpoint_ts"].as_u64().unwrap();
            let before = self.persisted.insert(id.clone(), p).unwrap_or(0);
            assert!(p >= before, "{id}: persisted checkpoint went back from {before} to {p}");
        }
        let overlaps = overlaps(&s);
        let twice: Vec<&String> = overlaps.iter().filter(|o| self.overlaps.contains(o)).collect();
        assert!(twice.is_empty(), "covered twice in two readings: {twice:?}\n{s:#}");
        self.overlaps = overlaps;
        s
    }

    /// Waits for two converged readings in a row; returns the time from `since` to the first.
    fn converge(&mut self, alive: &[&str], since: Instant, floor: &BTreeMap<String, u64>) -> Duration {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut first: Option<Duration> = None;
        loop {
            if self.supervise {
                let exited: Vec<String> = self
                    .nodes
                    .iter_mut()
                    .filter_map(|(id, child)| child.try_wait().ok().flatten().map(|_| id.clone()))
                    .collect();
                for id in exited {
                    eprintln!("failover: {id} exited; starting it again");
                    self.nodes.remove(&id);
                    self.start_node(&id);
                }
            }
            let s = self.status();
            match unconverged(&s, alive, floor) {
                None => match first {
                    Some(at) => return at,
                    None => first = Some(since.elapsed()),
                },
                Some(why) => {
                    first = None;
                    assert!(Instant::now() < deadline, "not converged after 60 s: {why}\n{s:#}");
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    fn maintainer(&mut self) -> String {
        let s = self.status();
        feed(&s, CF)["maintainer"]["node"].as_str().unwrap().to_owned()
    }

    fn coordinator(&mut self) -> String {
        self.status()["coordinator"]["node"].as_str().unwrap().to_owned()
    }

    /// The changefeed of 50 tables in 100 spans, converged, with table 20's two spans brought
    /// onto one node so that they can be merged.
    fn workload(&mut self) {
        self.request(&["changefeed", "create", "--id", CF, "--tables", "50", "--spans-per-table", "2"]);
        self.converge(&["n1", "n2", "n3"], Instant::now(), &BTreeMap::new());
        let s = self.status();
        let host = node_of(&s, 20, 0);
        self.request(&["changefeed", "move", "--id", CF, "--table", "20", "--span", "1", "--to", &host]);
        self.converge(&["n1", "n2", "n3"], Instant::now(), &BTreeMap::new());
    }

    /// Splits, moves and a merge, each accepted (so in flight) when this returns.
    fn operations(&mut self) {
        let s = self.status();
        for t in ["1", "2", "3"] {
            self.request(&["changefeed", "split", "--id", CF, "--table", t, "--span", "0", "--into", "2"]);
        }
        for t in [10, 11, 12] {
            let from = node_of(&s, t, 0);
            let to = ["n1", "n2", "n3"].into_iter().find(|n| *n != from).unwrap();
            self.request(&[
                "changefeed",
                "move",
                "--id",
                CF,
                "--table",
                &t.to_string(),
                "--span",
                "0",
                "--to",
                to,
            ]);
        }
        self.request(&["changefeed", "merge", "--id", CF, "--table", "20", "--spans", "0,1"]);
    }

    fn floor(&self) -> BTreeMap<String, u64> {
        self.persisted.clone()
    }
}

fn feed<'a>(s: &'a Value, id: &str) -> &'a Value {
    s["changefeeds"].as_array().unwrap().iter().find(|f| f["id"] == id).unwrap()
}

/// Working dispatchers on alive nodes: (changefeed, mode, table, start, end, node).
fn working(s: &Value) -> Vec<(String, String, i64, String, String, String)> {
    let mut out = Vec::new();
    for n in s["nodes"].as_array().unwrap() {
        if n["alive"] != true {
            continue;
        }
        for d in n["dispatchers"].as_array().unwrap() {
            if d["state"] == "working" && d["table"].as_i64().unwrap() > 0 {
                out.push((
                    d["changefeed"].as_str().unwrap().to_owned(),
                    d["mode"].as_str().unwrap().to_owned(),
                    d["table"].as_i64().unwrap(),
                    d["start_key"].as_str().unwrap().to_owned(),
                    d["end_key"].as_str().unwrap().to_owned(),
                    n["id"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    out.sort();
    out
}

fn node_of(s: &Value, table: i64, index: usize) -> String {
    let spans: Vec<_> =
        working(s).into_iter().filter(|d| d.0 == CF && d.1 == "default" && d.2 == table).collect();
    spans[index].5.clone()
}

/// Keys covered twice, as "changefeed mode table start..end on a / start..end on b".
fn overlaps(s: &Value) -> Vec<String> {
    let w = working(s);
    let mut out = Vec::new();
    for pair in w.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if (&a.0, &a.1, a.2) == (&b.0, &b.1, b.2) && a.4 > b.3 {
            out.push(format!(
                "{} {} {} {}..{} on {} / {}..{} on {}",
                a.0, a.1, a.2, a.3, a.4, a.5, b.3, b.4, b.5
            ));
        }
    }
    out
}

/// Why the cluster is not converged, or `None`.
fn unconverged(s: &Value, alive: &[&str], floor: &BTreeMap<String, u64>) -> Option<String> {
    let nodes = s["nodes"].as_array().unwrap();
    let up: Vec<&str> =
        nodes.iter().filter(|n| n["alive"] == true).map(|n| n["id"].as_str().unwrap()).collect();
    if up != alive {
        return Some(format!("alive {up:?}, expected {alive:?}"));
    }
    let all: Vec<(&str, &Value)> = nodes
        .iter()
        .filter(|n| n["alive"] == true)
        .flat_map(|n| {
            n["dispatchers"].as_array().unwrap().iter().map(move |d| (n["id"].as_str().unwrap(), d))
        })
        .collect();
    let work = working(s);
    for f in s["changefeeds"].as_array().unwrap() {
        let id = f["id"].as_str().unwrap();
        let mine: Vec<_> = all.iter().filter(|(_, d)| d["changefeed"] == id).collect();
        if f["state"] != "normal" {
            if !mine.is_empty() {
                return Some(format!("{id} is {} but runs {} dispatchers", f["state"], mine.len()));
            }
            continue;
        }
        let Some(m) = f["maintainer"]["node"].as_str() else {
            return Some(format!("{id} has no maintainer"));
        };
        if !up.contains(&m) {
            return Some(format!("{id}'s maintainer is on {m}, not alive"));
        }
        if f["operators_in_flight"] != 0 {
            return Some(format!("{id} has {} operators in flight", f["operators_in_flight"]));
        }
        if let Some((node, d)) = mine.iter().find(|(_, d)| d["state"] != "working") {
            return Some(format!("{id} has a {} dispatcher on {node}", d["state"]));
        }
        let persisted = f["persisted_checkpoint_ts"].as_u64().unwrap();
        if persisted <= floor.get(id).copied().unwrap_or(0) {
            return Some(format!("{id}'s persisted checkpoint {persisted} is not past the fault's"));
        }
        let modes: &[&str] = if f["redo"] == true { &["default", "redo"] } else { &["default"] };
        let tables = f["tables"].as_array().unwrap();
        for mode in modes {
            let spans: Vec<_> = work.iter().filter(|d| d.0 == id && d.1 == *mode).collect();
            for t in tables {
                let table = t["id"].as_i64().unwrap();
                let of: Vec<_> = spans.iter().filter(|d| d.2 == table).collect();
                let tiled = of.first().is_some_and(|d| d.3 == t["start_key"])
                    && of.last().is_some_and(|d| d.4 == t["end_key"])
                    && of.windows(2).all(|p| p[0].4 == p[1].3);
                if !tiled {
                    return Some(format!("{id} {mode} table {table} is covered by {of:?}"));
                }
            }
            let live: Vec<i64> = tables.iter().map(|t| t["id"].as_i64().unwrap()).collect();
            if let Some(d) = spans.iter().find(|d| !live.contains(&d.2)) {
                return Some(format!("{id} {mode} runs a span of table {}, not live", d.2));
            }
        }
    }
    None
}

fn report(fault: &str, took: Duration) {
    eprintln!("failover: {fault}: converged {:.1} s after the fault", took.as_secs_f64());
}

#[test]
fn kill_9_of_the_maintainers_process_converges() {
    let mut c = Cluster::start("kill-maintainer");
    c.workload();
    let victim = c.maintainer();
    c.operations();
    let floor = c.floor();
    let at = Instant::now();
    c.kill9(&victim);
    let rest: Vec<&str> = ["n1", "n2", "n3"].into_iter().filter(|n| *n != victim).collect();
    let took = c.converge(&rest, at, &floor);
    report("kill -9 of the maintainer's process", took);
    assert_ne!(c.maintainer(), victim);
    c.start_node(&victim);
    let floor = c.floor();
    c.converge(&["n1", "n2", "n3"], Instant::now(), &floor);
}

#[test]
fn kill_9_of_the_coordinators_process_converges() {
    let mut c = Cluster::start("kill-coordinator");
    c.workload();
    let victim = c.coordinator();
    c.operations();
    let floor = c.floor();
    let at = Instant::now();
    c.kill9(&victim);
    let rest: Vec<&str> = ["n1", "n2", "n3"].into_iter().filter(|n| *n != victim).collect();
    let took = c.converge(&rest, at, &floor);
    report("kill -9 of the coordinator's process", took);
    assert_ne!(c.coordinator(), victim);
    c.start_node(&victim);
    let floor = c.floor();
    c.converge(&["n1", "n2", "n3"], Instant::now(), &floor);
}

#[test]
fn a_maintainer_paused_past_its_lease_fences_itself_on_waking() {
    let mut c = Cluster::start("pause-maintainer");
    c.workload();
    let victim = c.maintainer();
    c.operations();
    let floor = c.floor();
    let pid = c.pid(&victim);
    let at = Instant::now();
    signal(pid, "-STOP");
    let rest: Vec<&str> = ["n1", "n2", "n3"].into_iter().filter(|n| *n != victim).collect();
    let took = c.converge(&rest, at, &floor);
    report("SIGSTOP of the maintainer's process", took);
    // Past the lease: the others took over; on waking it must fence itself and exit 3.
    while at.elapsed() < Duration::from_secs(TTL_S + 3) {
        std::thread::sleep(Duration::from_millis(200));
    }
    signal(pid, "-CONT");
    let mut child = c.nodes.remove(&victim).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        assert!(Instant::now() < deadline, "the woken process did not fence itself");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(3), "a fenced node exits 3");
    let floor = c.floor();
    c.converge(&rest, Instant::now(), &floor);
    c.start_node(&victim);
    let floor = c.floor();
    c.converge(&["n1", "n2", "n3"], Instant::now(), &floor);
}

#[test]
fn etcd_restarted_under_the_cluster_converges() {
    let mut c = Cluster::start("etcd-restart");
    c.workload();
    c.operations();
    let floor = c.floor();
    let at = Instant::now();
    // A node whose keep-alive could not be answered in time fences itself (exit 3); a
    // supervisor starts it again, as systemd would.
    c.supervise = true;
    c.etcd.restart(Duration::from_secs(1));
    let took = c.converge(&["n1", "n2", "n3"], at, &floor);
    report("etcd restarted", took);
}
