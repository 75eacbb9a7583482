//! Real failover, one fault per test, on loopback: a real etcd, three `dispatcher-cluster node`
//! processes (lease TTL 5 s), a changefeed of 50 tables in 100 spans with splits, moves and a
//! merge accepted just before the fault. Everything is read from outside, through
//! `status --json` (`../shared/cluster-cli.md`), by [`dispatcher_cluster::harness`], which says
//! what is checked in every reading and what converged means; the persisted checkpoint must get
//! past where it was at the fault. The time from the fault to the first converged reading is
//! printed.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use dispatcher_cluster::admin::hex;
use dispatcher_cluster::harness::{node_of, signal, working, Cluster, Etcd};
use dispatcher_core::span::TableSpan;

const BIN: &str = env!("CARGO_BIN_EXE_dispatcher-cluster");
const TTL_S: u64 = 5;
const CF: &str = "cf1";
const ALL: [&str; 3] = ["n1", "n2", "n3"];

/// The workload every fault runs into.
trait Workload {
    /// The changefeed of 50 tables in 100 spans, converged, with table 20's two spans brought
    /// onto one node so that they can be merged.
    fn workload(&mut self);
    /// Splits, moves and a merge, each accepted (so in flight) when this returns.
    fn operations(&mut self);
}

impl Workload for Cluster {
    fn workload(&mut self) {
        self.request(&["changefeed", "create", "--id", CF, "--tables", "50", "--spans-per-table", "2"]);
        self.converge(&ALL, Instant::now(), &BTreeMap::new());
        let s = self.status();
        let host = node_of(&s, CF, 20, 0);
        self.request(&["changefeed", "move", "--id", CF, "--table", "20", "--span", "1", "--to", &host]);
        self.converge(&ALL, Instant::now(), &BTreeMap::new());
    }

    fn operations(&mut self) {
        let s = self.status();
        for t in ["1", "2", "3"] {
            self.request(&["changefeed", "split", "--id", CF, "--table", t, "--span", "0", "--into", "2"]);
        }
        for t in [10, 11, 12] {
            let from = node_of(&s, CF, t, 0);
            let to = ALL.into_iter().find(|n| *n != from).unwrap();
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
}

/// The accepted splits took effect, whatever the fault did to the maintainer that accepted
/// them: in tables 1 to 3, a span starts at the middle of the table's first span. (A failover
/// fills each run of unplaced ranges with one span, so a part not placed yet may run together
/// with an unplaced neighbour: the cut stands, the count of spans may not.)
fn splits_done(c: &mut Cluster) {
    let s = c.status();
    for t in 1..=3 {
        let first = TableSpan::whole_table(0, t).split_even(2).unwrap().remove(0);
        let cut = first.split_even(2).unwrap().remove(1).start_key;
        let cut = hex(cut.as_bytes());
        let starts: Vec<String> = working(&s)
            .into_iter()
            .filter(|d| d.0 == CF && d.1 == "default" && d.2 == t)
            .map(|d| d.3)
            .collect();
        assert!(
            starts.contains(&cut),
            "table {t}'s accepted split was lost: spans start at {starts:?}, not {cut}"
        );
    }
}

fn start(name: &str) -> Cluster {
    Cluster::start(name, BIN, &ALL, TTL_S)
}

fn report(fault: &str, took: Duration) {
    eprintln!("failover: {fault}: converged {:.1} s after the fault", took.as_secs_f64());
}

/// `kill -9` of the process `role` names, with the workload's operations in flight: the rest
/// converge with the accepted splits done and the role elsewhere, and the victim started again
/// rejoins.
fn kill_9_converges(name: &str, what: &str, role: fn(&mut Cluster) -> String) {
    let mut c = start(name);
    c.workload();
    let victim = role(&mut c);
    c.operations();
    let floor = c.floor();
    let at = Instant::now();
    c.kill9(&victim);
    let rest: Vec<&str> = ALL.into_iter().filter(|n| *n != victim).collect();
    let took = c.converge(&rest, at, &floor);
    report(&format!("kill -9 of the {what}'s process"), took);
    splits_done(&mut c);
    assert_ne!(role(&mut c), victim, "the {what} moved off the killed process");
    c.start_node(&victim);
    let floor = c.floor();
    c.converge(&ALL, Instant::now(), &floor);
}

#[test]
fn kill_9_of_the_maintainers_process_converges() {
    kill_9_converges("kill-maintainer", "maintainer", |c| c.maintainer(CF));
}

#[test]
fn kill_9_of_the_coordinators_process_converges() {
    kill_9_converges("kill-coordinator", "coordinator", Cluster::coordinator);
}

#[test]
fn a_maintainer_paused_past_its_lease_fences_itself_on_waking() {
    let mut c = start("pause-maintainer");
    c.workload();
    let victim = c.maintainer(CF);
    c.operations();
    let floor = c.floor();
    let pid = c.pid(&victim);
    let at = Instant::now();
    signal(pid, "-STOP");
    let rest: Vec<&str> = ALL.into_iter().filter(|n| *n != victim).collect();
    let took = c.converge(&rest, at, &floor);
    report("SIGSTOP of the maintainer's process", took);
    splits_done(&mut c);
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
    c.converge(&ALL, Instant::now(), &floor);
}

#[test]
fn etcd_restarted_under_the_cluster_converges() {
    let mut c = Cluster::on(Etcd::start("etcd-restart"), "etcd-restart", BIN, &ALL, TTL_S);
    c.workload();
    c.operations();
    let floor = c.floor();
    let at = Instant::now();
    // A node whose keep-alive could not be answered in time fences itself (exit 3); a
    // supervisor starts it again, as systemd would.
    c.supervise = true;
    c.etcd.restart(Duration::from_secs(1));
    let took = c.converge(&ALL, at, &floor);
    report("etcd restarted", took);
    splits_done(&mut c);
}
