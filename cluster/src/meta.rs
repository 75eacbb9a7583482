//! etcd, as the cluster uses it: one session per process (a lease kept alive), the node's
//! registration under it, and the local fence.
//!
//! The fence is what makes a paused or cut-off process stop before a successor can act (K8): the
//! process may act only before `send time of the last answered keep-alive + TTL - margin`, and
//! etcd cannot expire the lease before `that send time + TTL`. A process that was stopped
//! (SIGSTOP) and wakes up past its deadline sees it at once, before it sends anything: every
//! effect is gated by [`Session::valid`], and a watcher flips [`Session::fenced`] when the
//! deadline passes.
//!
//! Keys follow the reference (cluster.md §2); every prefix ends in `/`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dispatcher_core::ids::NodeId;
use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
use tokio::sync::watch;

/// The keys of one cluster.
#[derive(Clone, Debug)]
pub struct Keys {
    cluster: String,
}

impl Keys {
    /// The keys of cluster `cluster` (the reference's default is `default`).
    pub fn new(cluster: &str) -> Self {
        Keys { cluster: cluster.to_owned() }
    }

    /// Where live nodes register (a prefix, ending in `/`).
    pub fn captures(&self) -> String {
        format!("/tidb/cdc/{}/__cdc_meta__/capture/", self.cluster)
    }

    /// A node's registration.
    pub fn capture(&self, node: &NodeId) -> String {
        format!("{}{node}", self.captures())
    }

    /// The coordinator election's prefix (ending in `/`).
    pub fn owners(&self) -> String {
        format!("/tidb/cdc/{}/__cdc_meta__/owner/", self.cluster)
    }
}

/// The deadline before which this process may act on behalf of its session.
#[derive(Clone, Copy, Debug)]
pub struct LeaseDeadline {
    ttl: Duration,
    margin: Duration,
    deadline: Option<Instant>,
}

impl LeaseDeadline {
    /// For a lease of `ttl`: the margin is a tenth of it, at least 500 ms (a zero TTL fences at
    /// once).
    pub fn new(ttl: Duration) -> Self {
        LeaseDeadline { ttl, margin: (ttl / 10).max(Duration::from_millis(500)), deadline: None }
    }

    /// A keep-alive (or the grant) sent at `sent_at` was answered with the lease alive: the
    /// lease lives at least until `sent_at + ttl` at etcd, so acting is safe until that less the
    /// margin. Never moves the deadline back.
    pub fn answered(&mut self, sent_at: Instant) {
        let Some(until) = (sent_at + self.ttl).checked_sub(self.margin) else { return };
        if until <= sent_at {
            return;
        }
        self.deadline = Some(self.deadline.map_or(until, |d| d.max(until)));
    }

    /// Whether the process may still act at `now`.
    pub fn valid(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now < d)
    }

    /// The deadline, once a keep-alive was answered.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// etcd could not be reached or refused a request.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// Another live process is registered under this node id.
    #[error("node {0} is already registered by a live process")]
    Duplicate(NodeId),
}

/// One process's session: its lease, its registration, its fence.
pub struct Session {
    client: Client,
    lease: i64,
    incarnation: u64,
    deadline: Arc<Mutex<LeaseDeadline>>,
    fenced: watch::Receiver<bool>,
}

impl Session {
    /// Grants a lease of `ttl_s` seconds, registers `node` under it (refused while another live
    /// process holds the id), and keeps the lease alive every third of the TTL.
    pub async fn start(
        endpoints: &[String],
        keys: &Keys,
        node: &NodeId,
        value: &str,
        ttl_s: i64,
    ) -> Result<Session, SessionError> {
        let mut client = Client::connect(endpoints, None).await?;
        let ttl = Duration::from_secs(ttl_s.max(0) as u64);
        let deadline = Arc::new(Mutex::new(LeaseDeadline::new(ttl)));
        let sent_at = Instant::now();
        let lease = client.lease_grant(ttl_s, None).await?.id();
        deadline.lock().unwrap_or_else(|e| e.into_inner()).answered(sent_at);
        let key = keys.capture(node);
        let register = Txn::new()
            .when(vec![Compare::create_revision(key.as_str(), CompareOp::Equal, 0)])
            .and_then(vec![TxnOp::put(key.as_str(), value, Some(PutOptions::new().with_lease(lease)))]);
        let response = client.txn(register).await?;
        if !response.succeeded() {
            let _ = client.lease_revoke(lease).await;
            return Err(SessionError::Duplicate(node.clone()));
        }
        let incarnation = response.header().map_or(0, |h| h.revision()) as u64;
        let (fence_tx, fenced) = watch::channel(false);
        let fence_tx = Arc::new(fence_tx);
        tokio::spawn(keep_alive(client.clone(), lease, ttl, deadline.clone(), fence_tx.clone()));
        tokio::spawn(watch_deadline(deadline.clone(), fence_tx));
        Ok(Session { client, lease, incarnation, deadline, fenced })
    }

    /// The registration's revision: this process's incarnation (a restart under the same id
    /// gets a new one).
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The lease id.
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// Whether the process may still act: checked before every effect.
    pub fn valid(&self) -> bool {
        self.deadline.lock().unwrap_or_else(|e| e.into_inner()).valid(Instant::now())
    }

    /// How long the process may still act (zero once fenced).
    pub fn remaining(&self) -> Duration {
        let deadline = self.deadline.lock().unwrap_or_else(|e| e.into_inner()).deadline();
        deadline.map_or(Duration::ZERO, |d| d.saturating_duration_since(Instant::now()))
    }

    /// Becomes `true` once the deadline passed or the lease was lost; never `false` again.
    pub fn fenced(&self) -> watch::Receiver<bool> {
        self.fenced.clone()
    }

    /// The etcd client of this session.
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Ends the session: the lease is revoked, so the registration goes at once.
    pub async fn close(self) -> Result<(), etcd_client::Error> {
        self.revoke().await
    }

    /// Revokes the lease (the registration and every key under the lease go at once); the
    /// process fences right after.
    pub async fn revoke(&self) -> Result<(), etcd_client::Error> {
        self.client.clone().lease_revoke(self.lease).await.map(|_| ())
    }
}

/// Keeps the lease alive every third of the TTL; each answer with the lease alive moves the
/// deadline. An answer that the lease is gone, or a broken stream that cannot be re-opened, fences.
async fn keep_alive(
    mut client: Client,
    lease: i64,
    ttl: Duration,
    deadline: Arc<Mutex<LeaseDeadline>>,
    fence: Arc<watch::Sender<bool>>,
) {
    let period = (ttl / 3).max(Duration::from_millis(100));
    loop {
        let Ok((mut keeper, mut answers)) = client.lease_keep_alive(lease).await else {
            tokio::time::sleep(period / 2).await;
            if fence.borrow().to_owned() {
                return;
            }
            continue; // the deadline watcher fences when time runs out
        };
        loop {
            let sent_at = Instant::now();
            if keeper.keep_alive().await.is_err() {
                break;
            }
            match tokio::time::timeout(period, answers.message()).await {
                Ok(Ok(Some(answer))) if answer.ttl() > 0 => {
                    deadline.lock().unwrap_or_else(|e| e.into_inner()).answered(sent_at);
                }
                Ok(Ok(Some(_))) => {
                    let _ = fence.send(true); // the lease is gone at etcd
                    return;
                }
                _ => break,
            }
            tokio::time::sleep(period).await;
        }
    }
}

/// Flips the fence the moment the deadline passes (it also catches a process that slept through
/// it: the first check after waking fires).
async fn watch_deadline(deadline: Arc<Mutex<LeaseDeadline>>, fence: Arc<watch::Sender<bool>>) {
    loop {
        let now = Instant::now();
        let valid = deadline.lock().unwrap_or_else(|e| e.into_inner()).valid(now);
        if !valid {
            let _ = fence.send(true);
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deadline_is_the_answered_send_time_plus_the_ttl_less_the_margin_and_never_goes_back() {
        let t0 = Instant::now();
        let mut d = LeaseDeadline::new(Duration::from_secs(10));
        assert!(!d.valid(t0), "nothing answered yet");
        d.answered(t0);
        assert_eq!(d.deadline(), Some(t0 + Duration::from_secs(9)));
        assert!(d.valid(t0 + Duration::from_millis(8_999)));
        assert!(!d.valid(t0 + Duration::from_secs(9)));
        d.answered(t0 + Duration::from_secs(3));
        assert_eq!(d.deadline(), Some(t0 + Duration::from_secs(12)));
        d.answered(t0 + Duration::from_secs(1)); // a late answer to an earlier keep-alive
        assert_eq!(d.deadline(), Some(t0 + Duration::from_secs(12)));
        let mut short = LeaseDeadline::new(Duration::from_secs(2));
        short.answered(t0);
        assert_eq!(short.deadline(), Some(t0 + Duration::from_millis(1_500)), "at least 500 ms of margin");
        let mut zero = LeaseDeadline::new(Duration::ZERO);
        zero.answered(t0);
        assert!(!zero.valid(t0), "a zero TTL fences at once");
    }

    #[test]
    fn every_prefix_ends_with_a_slash() {
        let keys = Keys::new("default");
        assert_eq!(keys.capture(&NodeId::new("n1")), "/tidb/cdc/default/__cdc_meta__/capture/n1");
        assert!(keys.captures().ends_with('/') && keys.owners().ends_with('/'));
        // Cluster "a" is not a prefix of cluster "ab" (the reference's F7).
        assert!(!Keys::new("ab").captures().starts_with(&Keys::new("a").captures()));
    }
}
