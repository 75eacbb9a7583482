//! The session against a real etcd (Debian's etcd-server 3.4, installed by `scripts/setup`): the
//! one `.ci/run` starts (`DC_TEST_ETCD`), each test under its own cluster name, or else one each
//! test starts on free loopback ports with a temporary data directory. The test that kills etcd
//! always starts its own.

use std::time::{Duration, Instant};

use dispatcher_cluster::harness::Etcd;
use dispatcher_cluster::meta::{Keys, Session, SessionError};
use dispatcher_cluster::store::{campaign, EtcdStore};
use dispatcher_core::coordinator::{FeedState, MetaError, MetaOp, MetaValue, Progress, StoredChangefeed};
use dispatcher_core::ids::{ChangefeedId, Epoch, NodeId};

async fn registered(etcd: &Etcd, keys: &Keys, node: &str) -> bool {
    let mut client = etcd_client::Client::connect(etcd.endpoints(), None).await.unwrap();
    let got = client.get(keys.capture(&NodeId::new(node)), None).await.unwrap();
    !got.kvs().is_empty()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_registers_under_its_lease_once_and_a_second_live_process_is_refused() {
    let etcd = Etcd::shared("register");
    let keys = Keys::new(&etcd.cluster);
    let n1 = NodeId::new("n1");
    let first = Session::start(&etcd.endpoints(), &keys, &n1, "{}", 5).await.unwrap();
    assert!(first.valid());
    assert!(first.incarnation() > 0);
    assert!(registered(&etcd, &keys, "n1").await);
    let second = Session::start(&etcd.endpoints(), &keys, &n1, "{}", 5).await;
    assert!(matches!(second, Err(SessionError::Duplicate(_))), "{:?}", second.err());
    // Closing revokes the lease: the registration goes at once, and the id can register again
    // under a new incarnation.
    let incarnation = first.incarnation();
    first.close().await.unwrap();
    assert!(!registered(&etcd, &keys, "n1").await);
    let again = Session::start(&etcd.endpoints(), &keys, &n1, "{}", 5).await.unwrap();
    assert!(again.incarnation() > incarnation);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_kept_alive_outlives_its_ttl() {
    let etcd = Etcd::shared("alive");
    let keys = Keys::new(&etcd.cluster);
    let session = Session::start(&etcd.endpoints(), &keys, &NodeId::new("n1"), "{}", 2).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(session.valid());
    assert!(!*session.fenced().borrow());
    assert!(registered(&etcd, &keys, "n1").await);
}

/// K8: etcd goes away; the process fences itself within its TTL, before the lease could have
/// expired there, and stays fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_cannot_renew_fences_itself_before_its_lease_can_expire() {
    let mut etcd = Etcd::start("fence");
    let keys = Keys::new(&etcd.cluster);
    let session = Session::start(&etcd.endpoints(), &keys, &NodeId::new("n1"), "{}", 3).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(session.valid());
    let cut = Instant::now();
    etcd.kill();
    let mut fenced = session.fenced();
    tokio::time::timeout(Duration::from_secs(4), fenced.wait_for(|f| *f))
        .await
        .expect("fenced in time")
        .unwrap();
    // The last answered keep-alive was sent before the cut: the fence fell at most TTL - margin
    // (2.5 s) after it, so within 3 s of the cut.
    assert!(cut.elapsed() < Duration::from_secs(3), "{:?}", cut.elapsed());
    assert!(!session.valid());
}

fn feed(name: &str) -> StoredChangefeed {
    StoredChangefeed {
        id: ChangefeedId { high: 1, low: 2, name: name.into(), keyspace: "default".into() },
        config: b"{}".to_vec(),
        state: FeedState::Normal,
        epoch: Epoch(0),
        checkpoint_ts: 100,
        progress: Progress::None,
    }
}

/// K1 and K2: the coordinator is the session whose campaign key has the lowest create revision;
/// its store's writes are guarded by that key, so once it lost the key they change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_elected_coordinators_writes_are_guarded_by_its_key_and_a_deposed_one_writes_nothing() {
    let etcd = Etcd::shared("elect");
    let keys = Keys::new(&etcd.cluster);
    let s1 = Session::start(&etcd.endpoints(), &keys, &NodeId::new("n1"), "{}", 5).await.unwrap();
    let s2 = Session::start(&etcd.endpoints(), &keys, &NodeId::new("n2"), "{}", 5).await.unwrap();
    let lead1 = campaign(&s1, &keys, &NodeId::new("n1")).await.unwrap();
    let mut store1 = EtcdStore::new(s1.client(), &etcd.cluster, lead1.clone());
    let id = feed("cf").id;
    assert_eq!(store1.run(MetaOp::Create(feed("cf"))).await, Ok(MetaValue::Done));
    assert_eq!(store1.run(MetaOp::Create(feed("cf"))).await, Err(MetaError::Conflict));
    assert_eq!(
        store1.run(MetaOp::BumpEpoch { changefeed: id.clone() }).await,
        Ok(MetaValue::Bumped(Epoch(1)))
    );
    assert_eq!(
        store1.run(MetaOp::BumpEpoch { changefeed: id.clone() }).await,
        Ok(MetaValue::Bumped(Epoch(2)))
    );
    let save = |ts| MetaOp::SaveCheckpoints(vec![(id.clone(), ts)]);
    store1.run(save(500)).await.unwrap();
    store1.run(save(400)).await.unwrap(); // K11: never down
    let pause = MetaOp::SetLifecycle {
        changefeed: id.clone(),
        state: FeedState::Stopped,
        progress: Progress::Stopping,
    };
    store1.run(pause).await.unwrap();
    store1.run(save(600)).await.unwrap(); // keeps the lifecycle (the reference's H2)
    let Ok(MetaValue::Loaded(all)) = store1.run(MetaOp::LoadAll).await else { panic!() };
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].epoch, all[0].checkpoint_ts, all[0].state, all[0].progress),
        (Epoch(2), 600, FeedState::Stopped, Progress::Stopping)
    );
    // n2 campaigns behind n1 and wins only when n1's session ends.
    let keys2 = keys.clone();
    let n2 = tokio::spawn(async move {
        let lead = campaign(&s2, &keys2, &NodeId::new("n2")).await.unwrap();
        (s2, lead)
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!n2.is_finished(), "n1 still leads");
    s1.close().await.unwrap();
    let (s2, lead2) = tokio::time::timeout(Duration::from_secs(10), n2).await.unwrap().unwrap();
    assert!(lead2.revision > lead1.revision, "K2: a later election has a higher version");
    // The deposed store changes nothing.
    assert_eq!(store1.run(MetaOp::BumpEpoch { changefeed: id.clone() }).await, Err(MetaError::Deposed));
    assert_eq!(store1.run(MetaOp::Delete { changefeed: id.clone() }).await, Err(MetaError::Deposed));
    let mut store2 = EtcdStore::new(s2.client(), &etcd.cluster, lead2);
    assert_eq!(
        store2.run(MetaOp::BumpEpoch { changefeed: id.clone() }).await,
        Ok(MetaValue::Bumped(Epoch(3)))
    );
    assert_eq!(store2.run(MetaOp::Delete { changefeed: id.clone() }).await, Ok(MetaValue::Done));
    assert_eq!(store2.run(MetaOp::LoadAll).await, Ok(MetaValue::Loaded(Vec::new())));
}

/// K11 in batches: the checkpoints of 150 changefeeds in one request go in two transactions of at
/// most 100 (etcd refuses more than 128 operations), only upward, the progress kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_of_many_changefeeds_are_written_in_batches_and_only_up() {
    let etcd = Etcd::shared("checkpoints");
    let keys = Keys::new(&etcd.cluster);
    let s1 = Session::start(&etcd.endpoints(), &keys, &NodeId::new("n1"), "{}", 5).await.unwrap();
    let lead = campaign(&s1, &keys, &NodeId::new("n1")).await.unwrap();
    let mut store = EtcdStore::new(s1.client(), &etcd.cluster, lead);
    let names: Vec<String> = (0..150).map(|i| format!("cf{i}")).collect();
    for name in &names {
        assert_eq!(store.run(MetaOp::Create(feed(name))).await, Ok(MetaValue::Done));
    }
    let stopping = feed("cf7").id;
    let lifecycle = MetaOp::SetLifecycle {
        changefeed: stopping,
        state: FeedState::Stopped,
        progress: Progress::Stopping,
    };
    assert_eq!(store.run(lifecycle).await, Ok(MetaValue::Done));
    // Even indexes go up to 200; odd ones try to go down to 50.
    let list = names
        .iter()
        .enumerate()
        .map(|(i, n)| (feed(n).id, if i.is_multiple_of(2) { 200 } else { 50 }))
        .collect();
    assert_eq!(store.run(MetaOp::SaveCheckpoints(list)).await, Ok(MetaValue::Done));
    let Ok(MetaValue::Loaded(all)) = store.run(MetaOp::LoadAll).await else { panic!("load") };
    assert_eq!(all.len(), 150);
    for f in all {
        let i: usize = f.id.name[2..].parse().unwrap();
        assert_eq!(f.checkpoint_ts, if i.is_multiple_of(2) { 200 } else { 100 }, "{}", f.id.name);
        let progress = if i == 7 { Progress::Stopping } else { Progress::None };
        assert_eq!(f.progress, progress, "{}: a checkpoint write keeps the progress", f.id.name);
    }
}
