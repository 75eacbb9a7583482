//! A local cluster of real processes for tests and measurements: an etcd (Debian's etcd-server
//! 3.4, installed by `scripts/setup`) on free loopback ports with a temporary data directory, and
//! `dispatcher-cluster node` processes, read from outside through `status --json`
//! (`../shared/cluster-cli.md`), as an outside test would.
//!
//! Checked in every reading: a changefeed's persisted checkpoint never goes back; no key is
//! covered twice by `working` dispatchers on alive nodes (seen in two readings in a row: the
//! nodes are asked one after another, so one reading can straddle a move). Converged, in two
//! readings in a row: the expected nodes alive; per running changefeed, its maintainer on an
//! alive node, no operator in flight, each live table tiled exactly by working dispatchers on
//! alive nodes with nothing else of the changefeed left, and the persisted checkpoint past a
//! given floor; per stopped or removed changefeed, nothing running.
//!
//! Panics on set-up failures (no etcd, a node that does not start): it is a test harness.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The environment variable naming an etcd that tests may share (`.ci/run` starts one).
pub const SHARED_ETCD: &str = "DC_TEST_ETCD";

/// An etcd for one test: a one-member etcd of its own, or the shared one named by
/// [`SHARED_ETCD`]. Either way the test works under its own cluster name, so tests sharing an
/// etcd never see one another's keys.
pub struct Etcd {
    /// The etcd process, when this test owns it.
    own: Option<Own>,
    /// Its client URL.
    pub endpoint: String,
    /// The cluster name this test uses in it.
    pub cluster: String,
}

struct Own {
    child: Child,
    name: String,
    dir: PathBuf,
    client: u16,
    peer: u16,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_or(0, |a| a.port())
}

impl Etcd {
    /// Starts a one-member etcd named `name` on free loopback ports with a fresh data directory.
    /// Panics when `etcd` is not installed (`scripts/setup`) or does not start within 20 s.
    pub fn start(name: &str) -> Etcd {
        let dir = std::env::temp_dir().join(format!("dc-etcd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let child = Own::spawn(name, &dir, client, peer);
        let own = Own { child, name: name.to_owned(), dir, client, peer };
        own.wait_ready();
        Etcd { own: Some(own), endpoint, cluster: name.to_owned() }
    }

    /// The shared etcd when [`SHARED_ETCD`] names one, else one of its own; the cluster name is
    /// `name` and this process's id.
    pub fn shared(name: &str) -> Etcd {
        match std::env::var(SHARED_ETCD) {
            Ok(endpoint) if !endpoint.is_empty() => {
                Etcd { own: None, endpoint, cluster: format!("{name}-{}", std::process::id()) }
            }
            _ => Etcd::start(name),
        }
    }

    /// `kill -9` of its own etcd. Panics on the shared one.
    pub fn kill(&mut self) {
        let own = self.own.as_mut().expect("only a test's own etcd is killed");
        let _ = own.child.kill();
        let _ = own.child.wait();
    }

    /// `kill -9`, then the same member again on the same data directory and ports after `down`.
    /// Panics on the shared one.
    pub fn restart(&mut self, down: Duration) {
        self.kill();
        std::thread::sleep(down);
        let own = self.own.as_mut().expect("only a test's own etcd restarts");
        own.child = Own::spawn(&own.name, &own.dir, own.client, own.peer);
        own.wait_ready();
    }

    /// Its client URLs.
    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint.clone()]
    }
}

impl Own {
    fn spawn(name: &str, dir: &std::path::Path, client: u16, peer: u16) -> Child {
        let endpoint = format!("http://127.0.0.1:{client}");
        Command::new("etcd")
            .args(["--name", name, "--data-dir"])
            .arg(dir)
            .args(["--listen-client-urls", &endpoint, "--advertise-client-urls", &endpoint])
            .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-advertise-peer-urls", &format!("http://127.0.0.1:{peer}")])
            .args(["--initial-cluster", &format!("{name}=http://127.0.0.1:{peer}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd is installed (run scripts/setup)")
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", self.client)).is_err() {
            assert!(Instant::now() < deadline, "etcd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Own {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A local cluster: an etcd and node processes.
pub struct Cluster {
    /// The etcd.
    pub etcd: Etcd,
    name: String,
    bin: PathBuf,
    ttl_s: u64,
    /// The node processes by id.
    pub nodes: BTreeMap<String, Child>,
    /// Highest persisted checkpoint seen per changefeed.
    persisted: BTreeMap<String, u64>,
    /// Overlaps seen in the previous reading.
    overlaps: Vec<String>,
    /// Start a node again when its process exits, as a supervisor would.
    pub supervise: bool,
    /// Serve metrics from every node started from now on; their ports by node.
    pub metrics: Option<BTreeMap<String, u16>>,
    logs: std::collections::BTreeSet<PathBuf>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self.nodes.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !std::thread::panicking() {
            for log in &self.logs {
                let _ = std::fs::remove_file(log);
            }
        }
    }
}

/// Sends a signal (`-STOP`, `-CONT`, …) with `kill`.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill").args([sig, &pid.to_string()]).status().is_ok_and(|s| s.success());
    assert!(ok, "kill {sig} {pid}");
}

impl Cluster {
    /// Nodes `ids` on the shared etcd (or one of its own), each started with
    /// `bin node … --lease-ttl-s ttl_s`.
    pub fn start(name: &str, bin: impl Into<PathBuf>, ids: &[&str], ttl_s: u64) -> Cluster {
        Cluster::on(Etcd::shared(name), name, bin, ids, ttl_s)
    }

    /// Nodes `ids` on `etcd`.
    pub fn on(etcd: Etcd, name: &str, bin: impl Into<PathBuf>, ids: &[&str], ttl_s: u64) -> Cluster {
        let mut c = Cluster {
            etcd,
            name: name.to_owned(),
            bin: bin.into(),
            ttl_s,
            nodes: BTreeMap::new(),
            persisted: BTreeMap::new(),
            overlaps: Vec::new(),
            supervise: false,
            metrics: None,
            logs: std::collections::BTreeSet::new(),
        };
        for id in ids {
            c.start_node(id);
        }
        c
    }

    /// Where node `id`'s stderr goes (kept when the test fails, removed when it passes).
    pub fn log_of(&self, id: &str) -> PathBuf {
        std::env::temp_dir().join(format!("dc-{}-{}-{id}.log", self.name, std::process::id()))
    }

    /// Starts node `id`, waiting out a previous process's lease (its start is refused until then).
    pub fn start_node(&mut self, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let log = self.log_of(id);
            self.logs.insert(log.clone());
            let mut command = Command::new(&self.bin);
            command
                .args(["node", "--id", id, "--listen", "127.0.0.1:0", "--etcd", &self.etcd.endpoint])
                .args(["--cluster", &self.etcd.cluster])
                .args(["--lease-ttl-s", &self.ttl_s.to_string()]);
            if let Some(ports) = self.metrics.as_mut() {
                let port = free_port();
                ports.insert(id.to_owned(), port);
                command.args(["--metrics", &format!("127.0.0.1:{port}")]);
            }
            // Appended: a node's log keeps its earlier lives.
            let stderr = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
            let mut child = command.stdout(Stdio::piped()).stderr(stderr).spawn().unwrap();
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

    /// Node `id`'s Prometheus text (empty when it serves none or does not answer).
    pub fn metrics_of(&self, id: &str) -> String {
        use std::io::{Read, Write};
        let Some(port) = self.metrics.as_ref().and_then(|m| m.get(id)) else { return String::new() };
        let Ok(mut socket) = std::net::TcpStream::connect(("127.0.0.1", *port)) else { return String::new() };
        let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = socket.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
        let mut text = String::new();
        let _ = socket.read_to_string(&mut text);
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
    }

    /// Node `id`'s process id.
    pub fn pid(&self, id: &str) -> u32 {
        self.nodes[id].id()
    }

    /// `kill -9` of node `id`.
    pub fn kill9(&mut self, id: &str) {
        let mut child = self.nodes.remove(id).unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Runs a command against this cluster's etcd: exit code, stdout, stderr.
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(&self.bin)
            .args(args)
            .args(["--etcd", &self.etcd.endpoint, "--cluster", &self.etcd.cluster])
            .output()
            .unwrap();
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
    }

    /// Runs a command that must succeed.
    pub fn request(&self, args: &[&str]) {
        let (code, _, err) = self.cli(args);
        assert_eq!(code, 0, "{args:?}: {err}");
    }

    /// One reading, with the checks that hold in every reading.
    pub fn status(&mut self) -> Value {
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

    /// Waits (at most a minute) for two converged readings in a row; returns the time from
    /// `since` to the first.
    pub fn converge(&mut self, alive: &[&str], since: Instant, floor: &BTreeMap<String, u64>) -> Duration {
        self.converge_within(alive, since, floor, Duration::from_secs(60))
    }

    /// [`Cluster::converge`] with its own limit.
    pub fn converge_within(
        &mut self,
        alive: &[&str],
        since: Instant,
        floor: &BTreeMap<String, u64>,
        limit: Duration,
    ) -> Duration {
        let deadline = Instant::now() + limit;
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
                    assert!(Instant::now() < deadline, "not converged after {limit:?}: {why}\n{s:#}");
                }
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The node running changefeed `cf`'s maintainer.
    pub fn maintainer(&mut self, cf: &str) -> String {
        let s = self.status();
        feed(&s, cf)["maintainer"]["node"].as_str().unwrap().to_owned()
    }

    /// The coordinator's node.
    pub fn coordinator(&mut self) -> String {
        self.status()["coordinator"]["node"].as_str().unwrap().to_owned()
    }

    /// The highest persisted checkpoints seen so far: a floor for the next convergence.
    pub fn floor(&self) -> BTreeMap<String, u64> {
        self.persisted.clone()
    }
}

/// The value of one sample (`name` with its labels exactly as printed, e.g.
/// `dc_messages_total{event="sent"}`) in a Prometheus text.
pub fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// CPU time (user + system) a process has used so far, from `/proc`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command's closing parenthesis; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = Command::new("getconf").arg("CLK_TCK").output().ok()?;
    let hz: u64 = String::from_utf8_lossy(&hz.stdout).trim().parse().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / hz as f64))
}

/// Changefeed `id` of a reading.
pub fn feed<'a>(s: &'a Value, id: &str) -> &'a Value {
    s["changefeeds"].as_array().unwrap().iter().find(|f| f["id"] == id).unwrap()
}

/// Working dispatchers on alive nodes: (changefeed, mode, table, start, end, node), sorted.
pub fn working(s: &Value) -> Vec<(String, String, i64, String, String, String)> {
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

/// The node running span `index` of `table` of changefeed `cf` (default mode).
pub fn node_of(s: &Value, cf: &str, table: i64, index: usize) -> String {
    let spans: Vec<_> =
        working(s).into_iter().filter(|d| d.0 == cf && d.1 == "default" && d.2 == table).collect();
    spans[index].5.clone()
}

/// Keys covered twice, as "changefeed mode table start..end on a / start..end on b".
pub fn overlaps(s: &Value) -> Vec<String> {
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
pub fn unconverged(s: &Value, alive: &[&str], floor: &BTreeMap<String, u64>) -> Option<String> {
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
        if f["operators_in_flight"] != 0 || f["state"] == "stopping" || f["state"] == "removing" {
            return Some(format!(
                "{id} is {} with {} operators in flight",
                f["state"], f["operators_in_flight"]
            ));
        }
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
