//! What the cluster's integration tests share: an etcd (Debian's etcd-server 3.4, installed by
//! `scripts/setup`) each test starts on free loopback ports with a temporary data directory.

#![allow(dead_code)] // reason: each test binary uses a part

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Etcd {
    pub child: Child,
    name: String,
    dir: std::path::PathBuf,
    client: u16,
    peer: u16,
    pub endpoint: String,
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Etcd {
    pub fn start(name: &str) -> Etcd {
        let dir = std::env::temp_dir().join(format!("dc-etcd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("http://127.0.0.1:{client}");
        let child = Self::spawn(name, &dir, client, peer);
        let etcd = Etcd { child, name: name.to_owned(), dir, client, peer, endpoint };
        etcd.wait_ready();
        etcd
    }

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

    /// `kill -9`, then the same member again on the same data directory and ports after `down`.
    pub fn restart(&mut self, down: Duration) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(down);
        self.child = Self::spawn(&self.name, &self.dir, self.client, self.peer);
        self.wait_ready();
    }

    pub fn endpoints(&self) -> Vec<String> {
        vec![self.endpoint.clone()]
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
