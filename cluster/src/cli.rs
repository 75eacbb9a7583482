//! The cluster's commands (`../shared/cluster-cli.md`): `node`, `changefeed …` and `status`.
//! Errors are one line on stderr; exit 2 on bad input, a refused request or etcd out of reach
//! within the timeout, 3 when a node fenced itself, 0 otherwise.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use dispatcher_core::coordinator::StoredChangefeed;
use dispatcher_core::host::SyntheticDefinition;
use dispatcher_core::ids::NodeId;
use dispatcher_core::span::TableSpan;
use serde_json::{json, Value};

use crate::admin::{self, hex, AdminAnswer, AdminCall, NodeStatus};
use crate::membership::{self, ClusterView};
use crate::node::{self, Exit, NodeOptions};
use crate::store;

/// How long a command waits for etcd and for the nodes it calls.
const TIMEOUT: Duration = Duration::from_secs(10);

/// dispatcher-core across processes.
#[derive(Parser, Debug)]
#[command(name = "dispatcher-core", bin_name = "dispatcher-core", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run one node until SIGTERM or SIGINT.
    Node(NodeArgs),
    /// Create, change and list changefeeds.
    #[command(subcommand)]
    Changefeed(Changefeed),
    /// Show the cluster: nodes, coordinator, maintainers, what every node runs.
    Status {
        #[command(flatten)]
        etcd: Etcd,
        /// One JSON object instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct Etcd {
    /// etcd client URLs, comma-separated.
    #[arg(long = "etcd", value_delimiter = ',', required = true)]
    urls: Vec<String>,
    /// The cluster's name in etcd.
    #[arg(long, default_value = "default")]
    cluster: String,
}

#[derive(Args, Debug)]
struct NodeArgs {
    /// Unique node name.
    #[arg(long)]
    id: String,
    /// The gRPC address other nodes dial.
    #[arg(long)]
    listen: String,
    #[command(flatten)]
    etcd: Etcd,
    /// Serve Prometheus text at http://HOST:PORT/metrics.
    #[arg(long)]
    metrics: Option<String>,
    /// The etcd lease TTL of this node's session.
    #[arg(long = "lease-ttl-s", default_value_t = 10)]
    lease_ttl_s: i64,
}

#[derive(Subcommand, Debug)]
enum Changefeed {
    /// Create a changefeed over synthetic tables 1..=N.
    Create {
        #[command(flatten)]
        etcd: Etcd,
        /// Its name.
        #[arg(long)]
        id: String,
        /// Tables.
        #[arg(long)]
        tables: i64,
        /// Equal spans per table.
        #[arg(long = "spans-per-table", default_value_t = 1)]
        spans_per_table: usize,
        /// Replicate in redo mode too.
        #[arg(long)]
        redo: bool,
    },
    /// Pause a changefeed.
    Pause(Named),
    /// Resume a paused changefeed.
    Resume(Named),
    /// Remove a changefeed for good.
    Remove(Named),
    /// List the stored changefeeds.
    List {
        #[command(flatten)]
        etcd: Etcd,
        /// JSON.
        #[arg(long)]
        json: bool,
    },
    /// Move a span to a node.
    Move {
        #[command(flatten)]
        span: SpanArgs,
        /// The node.
        #[arg(long)]
        to: String,
    },
    /// Split a span into equal parts.
    Split {
        #[command(flatten)]
        span: SpanArgs,
        /// Parts.
        #[arg(long, default_value_t = 2)]
        into: usize,
    },
    /// Merge adjacent spans of a table.
    Merge {
        #[command(flatten)]
        etcd: Etcd,
        /// The changefeed.
        #[arg(long)]
        id: String,
        /// The table.
        #[arg(long)]
        table: i64,
        /// The spans' indexes, comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        spans: Vec<usize>,
        /// `default` or `redo`.
        #[arg(long, default_value = "default")]
        mode: String,
    },
    /// Move the changefeed's maintainer to a node.
    MoveMaintainer {
        #[command(flatten)]
        named: Named,
        /// The node.
        #[arg(long)]
        to: String,
    },
}

#[derive(Args, Debug)]
struct Named {
    #[command(flatten)]
    etcd: Etcd,
    /// The changefeed.
    #[arg(long)]
    id: String,
}

#[derive(Args, Debug)]
struct SpanArgs {
    #[command(flatten)]
    etcd: Etcd,
    /// The changefeed.
    #[arg(long)]
    id: String,
    /// The table.
    #[arg(long)]
    table: i64,
    /// The span's index in key order (0-based).
    #[arg(long, default_value_t = 0)]
    span: usize,
    /// `default` or `redo`.
    #[arg(long, default_value = "default")]
    mode: String,
}

/// A command's failure: its exit code and one line.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// The line.
    pub message: String,
}

fn bad(message: impl Into<String>) -> Failure {
    Failure { code: 2, message: message.into() }
}

/// Runs a parsed command line.
pub async fn main(cli: Cli) -> Result<(), Failure> {
    match cli.command {
        Command::Node(args) => run_node(args).await,
        Command::Changefeed(c) => changefeed(c).await,
        Command::Status { etcd, json } => status(&etcd, json).await,
    }
}

async fn run_node(args: NodeArgs) -> Result<(), Failure> {
    if args.lease_ttl_s < 1 {
        return Err(bad("--lease-ttl-s must be at least 1"));
    }
    let opts = NodeOptions {
        id: NodeId::new(&args.id),
        listen: args.listen,
        etcd: args.etcd.urls,
        cluster: args.etcd.cluster,
        lease_ttl_s: args.lease_ttl_s,
        metrics: args.metrics,
    };
    let id = opts.id.clone();
    let ready = |addr: &str| println!("node {id} ready on {addr}");
    match node::run(opts, ready, stop_signal()).await {
        Ok(Exit::Stopped) => Ok(()),
        Ok(Exit::Fenced) => Err(Failure {
            code: 3,
            message: format!("node {id} fenced: its lease could not be renewed in time"),
        }),
        Err(e) => Err(bad(e.to_string())),
    }
}

async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

async fn connect(etcd: &Etcd) -> Result<etcd_client::Client, Failure> {
    let connect = etcd_client::Client::connect(&etcd.urls, None);
    match tokio::time::timeout(TIMEOUT, connect).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(bad(format!("etcd {}: {e}", etcd.urls.join(",")))),
        Err(_) => Err(bad(format!("etcd {} did not answer within {TIMEOUT:?}", etcd.urls.join(",")))),
    }
}

async fn view_of(client: &mut etcd_client::Client, etcd: &Etcd) -> Result<ClusterView, Failure> {
    let keys = crate::meta::Keys::new(&etcd.cluster);
    match tokio::time::timeout(TIMEOUT, membership::read(client, &keys)).await {
        Ok(Ok(view)) => Ok(view),
        Ok(Err(e)) => Err(bad(format!("etcd: {e}"))),
        Err(_) => Err(bad("etcd did not answer in time")),
    }
}

/// Errors worth asking again about (the coordinator or the maintainer is still starting).
fn transient(error: &str) -> bool {
    [
        "not initialized",
        "not the coordinator",
        "still bootstrapping",
        "operation in flight",
        "did not answer",
        "cannot reach",
    ]
    .iter()
    .any(|w| error.contains(w))
}

/// Sends `call` to the coordinator, or (with `span`) to the node whose maintainer runs the
/// changefeed `name`, asking again while the answer is transient, until the timeout.
async fn request(etcd: &Etcd, call: AdminCall, span: Option<&str>) -> Result<(), Failure> {
    let mut client = connect(etcd).await?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let outcome = request_once(&mut client, etcd, &call, span).await;
        match outcome {
            Ok(()) => return Ok(()),
            Err(e) if transient(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return Err(bad(e)),
        }
    }
}

async fn request_once(
    client: &mut etcd_client::Client,
    etcd: &Etcd,
    call: &AdminCall,
    span: Option<&str>,
) -> Result<(), String> {
    let view = view_of(client, etcd).await.map_err(|f| f.message)?;
    let leader = view.leader().ok_or("no coordinator is elected yet: not the coordinator")?;
    let address_of = |node: &NodeId| view.members.get(node).map(|r| r.address.clone());
    let coordinator =
        address_of(&leader.node).ok_or("the coordinator's node is not registered: cannot reach")?;
    let target = match span {
        None => coordinator,
        Some(name) => {
            let answer = admin::call(&coordinator, &AdminCall::Status, TIMEOUT).await?;
            let co = answer.status.and_then(|s| s.coordinator).ok_or("not the coordinator")?;
            if !co.initialized {
                return Err("the coordinator is not initialized yet".into());
            }
            let feed =
                co.changefeeds.iter().find(|f| f.name == name).ok_or(format!("unknown changefeed {name}"))?;
            let node = feed.node.as_ref().ok_or(format!("changefeed {name} has no maintainer running"))?;
            address_of(&NodeId::new(node)).ok_or(format!("node {node} is not registered: cannot reach"))?
        }
    };
    let answer = admin::call(&target, call, TIMEOUT).await?;
    answer.error.map_or(Ok(()), Err)
}

async fn changefeed(c: Changefeed) -> Result<(), Failure> {
    match c {
        Changefeed::Create { etcd, id, tables, spans_per_table, redo } => {
            if tables < 1 || spans_per_table < 1 {
                return Err(bad("--tables and --spans-per-table must be at least 1"));
            }
            request(&etcd, AdminCall::Create { name: id, tables, spans_per_table, redo }, None).await
        }
        Changefeed::Pause(n) => request(&n.etcd, AdminCall::Pause { name: n.id }, None).await,
        Changefeed::Resume(n) => request(&n.etcd, AdminCall::Resume { name: n.id }, None).await,
        Changefeed::Remove(n) => request(&n.etcd, AdminCall::Remove { name: n.id }, None).await,
        Changefeed::MoveMaintainer { named, to } => {
            request(&named.etcd, AdminCall::MoveMaintainer { name: named.id, to }, None).await
        }
        Changefeed::Move { span, to } => {
            let call = AdminCall::Move {
                name: span.id.clone(),
                table: span.table,
                span: span.span,
                to,
                mode: span.mode,
            };
            request(&span.etcd, call, Some(&span.id)).await
        }
        Changefeed::Split { span, into } => {
            if into < 2 {
                return Err(bad("--into must be at least 2"));
            }
            let call = AdminCall::Split {
                name: span.id.clone(),
                table: span.table,
                span: span.span,
                into,
                mode: span.mode,
            };
            request(&span.etcd, call, Some(&span.id)).await
        }
        Changefeed::Merge { etcd, id, table, spans, mode } => {
            let call = AdminCall::Merge { name: id.clone(), table, spans, mode };
            request(&etcd, call, Some(&id)).await
        }
        Changefeed::List { etcd, json } => {
            let mut client = connect(&etcd).await?;
            let feeds = load(&mut client, &etcd).await?;
            if json {
                let list: Vec<Value> = feeds.iter().map(stored_json).collect();
                println!("{}", Value::Array(list));
            } else {
                for f in &feeds {
                    println!(
                        "{}\t{}\tepoch {}\tcheckpoint {}",
                        f.id.name,
                        f.state.name(),
                        f.epoch.0,
                        f.checkpoint_ts
                    );
                }
            }
            Ok(())
        }
    }
}

async fn load(client: &mut etcd_client::Client, etcd: &Etcd) -> Result<Vec<StoredChangefeed>, Failure> {
    match tokio::time::timeout(TIMEOUT, store::load(client, &etcd.cluster)).await {
        Ok(Ok(feeds)) => Ok(feeds),
        Ok(Err(e)) => Err(bad(format!("etcd: {e}"))),
        Err(_) => Err(bad("etcd did not answer in time")),
    }
}

fn stored_json(f: &StoredChangefeed) -> Value {
    let def = SyntheticDefinition::decode(&f.config);
    json!({
        "id": f.id.name,
        "state": f.state.name(),
        "epoch": f.epoch.0,
        "checkpoint_ts": f.checkpoint_ts,
        "tables": def.map_or(0, |d| d.tables),
        "redo": def.is_some_and(|d| d.redo),
    })
}

/// The cluster as `status --json` shows it (cluster-cli.md).
async fn status(etcd: &Etcd, as_json: bool) -> Result<(), Failure> {
    let mut client = connect(etcd).await?;
    let view = view_of(&mut client, etcd).await?;
    let feeds = load(&mut client, etcd).await?;
    let calls = view.members.iter().map(|(id, r)| {
        let (id, address) = (id.clone(), r.address.clone());
        async move {
            let answer = admin::call(&address, &AdminCall::Status, Duration::from_secs(1)).await;
            (id, address, answer)
        }
    });
    let answers: Vec<(NodeId, String, Result<AdminAnswer, String>)> = futures_join(calls).await;
    let statuses: BTreeMap<String, NodeStatus> = answers
        .iter()
        .filter_map(|(id, _, a)| Some((id.to_string(), a.as_ref().ok()?.status.clone()?)))
        .collect();
    let alive = |id: &str| statuses.get(id).is_some_and(|s| !s.fenced);
    let nodes: Vec<Value> = answers
        .iter()
        .map(|(id, address, _)| {
            let s = statuses.get(id.as_str()).filter(|s| !s.fenced);
            json!({
                "id": id.to_string(),
                "addr": address,
                "alive": s.is_some(),
                "liveness": s.map_or("unknown", |s| s.liveness.as_str()),
                "dispatchers": s.map_or(Vec::new(), |s| s.dispatchers.clone()),
            })
        })
        .collect();
    let coordinator_view = statuses.values().filter_map(|s| s.coordinator.as_ref()).max_by_key(|c| c.version);
    let changefeeds: Vec<Value> = feeds
        .iter()
        .map(|f| {
            let name = f.id.name.as_str();
            let def = SyntheticDefinition::decode(&f.config);
            let hosted = statuses
                .iter()
                .filter(|(id, _)| alive(id))
                .flat_map(|(id, s)| s.maintainers.iter().map(move |m| (id, m)))
                .filter(|(_, m)| m.changefeed == name && m.lifecycle == "running")
                .max_by_key(|(_, m)| m.epoch);
            // A maintainer still bootstrapping has no view of the spans yet: its work is in
            // flight, and the tables come from the definition meanwhile.
            let bootstrapping = statuses
                .iter()
                .filter(|(id, _)| alive(id))
                .any(|(_, s)| s.maintainers.iter().any(|m| m.changefeed == name && m.lifecycle == "bootstrapping"));
            let co = coordinator_view.and_then(|c| c.changefeeds.iter().find(|c| c.name == name));
            let tables: Vec<Value> = match hosted {
                Some((_, m)) => m.tables.iter().map(|t| json!({"id": t.id, "start_key": t.start_key, "end_key": t.end_key})).collect(),
                None => (1..=def.map_or(0, |d| d.tables))
                    .map(|t| {
                        let whole = TableSpan::whole_table(0, t);
                        json!({"id": t, "start_key": hex(whole.start_key.as_bytes()), "end_key": hex(whole.end_key.as_bytes())})
                    })
                    .collect(),
            };
            let operators = hosted.map_or(0, |(_, m)| m.operators_in_flight + m.requests_waiting)
                + usize::from(bootstrapping) + usize::from(co.is_some_and(|c| c.operator.is_some()));
            json!({
                "id": name,
                "state": co.map_or(f.state.name(), |c| c.state.as_str()),
                "redo": def.is_some_and(|d| d.redo),
                "tables": tables,
                "maintainer": hosted.map(|(node, m)| json!({"node": node, "epoch": m.epoch})),
                "checkpoint_ts": hosted.map_or(f.checkpoint_ts, |(_, m)| m.checkpoint_ts),
                "persisted_checkpoint_ts": f.checkpoint_ts,
                "operators_in_flight": operators,
            })
        })
        .collect();
    let coordinator = view.leader().map(|l| json!({"node": l.node.to_string(), "revision": l.version}));
    let out = json!({ "coordinator": coordinator, "nodes": nodes, "changefeeds": changefeeds });
    if as_json {
        println!("{out}");
    } else {
        print_table(&out);
    }
    Ok(())
}

async fn futures_join<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        if let Ok(v) = h.await {
            out.push(v);
        }
    }
    out
}

fn print_table(status: &Value) {
    let co = &status["coordinator"];
    println!("coordinator: {} (revision {})", co["node"].as_str().unwrap_or("none"), co["revision"]);
    println!("\nNODE\tADDR\tALIVE\tLIVENESS\tDISPATCHERS");
    for n in status["nodes"].as_array().into_iter().flatten() {
        println!(
            "{}\t{}\t{}\t{}\t{}",
            n["id"].as_str().unwrap_or(""),
            n["addr"].as_str().unwrap_or(""),
            n["alive"],
            n["liveness"].as_str().unwrap_or(""),
            n["dispatchers"].as_array().map_or(0, Vec::len)
        );
    }
    println!("\nCHANGEFEED\tSTATE\tMAINTAINER\tEPOCH\tCHECKPOINT\tPERSISTED\tOPERATORS\tTABLES");
    for f in status["changefeeds"].as_array().into_iter().flatten() {
        let m = &f["maintainer"];
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            f["id"].as_str().unwrap_or(""),
            f["state"].as_str().unwrap_or(""),
            m["node"].as_str().unwrap_or("-"),
            m["epoch"],
            f["checkpoint_ts"],
            f["persisted_checkpoint_ts"],
            f["operators_in_flight"],
            f["tables"].as_array().map_or(0, Vec::len)
        );
    }
}
