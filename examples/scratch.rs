#![allow(missing_docs, clippy::disallowed_methods)]
use dispatcher_core::ids::Mode;
use dispatcher_core::node::OpKey;
use dispatcher_core::span::TableSpan;
use dispatcher_core::sync::Map;
use std::time::Instant;

fn span(i: u64) -> TableSpan {
    TableSpan::new(0, (i / 16) as i64 + 1, (i % 16).to_be_bytes().to_vec(), (i % 16 + 1).to_be_bytes().to_vec()).unwrap()
}

fn main() {
    let keys: Vec<OpKey> = (0..1024).map(|i| OpKey { mode: Mode::Default, span: span(i) }).collect();
    let map: Map<OpKey, u64> = Map::new();
    for (i, k) in keys.iter().enumerate() {
        map.compute(k.clone(), |_| dispatcher_core::sync::Op::<u64, ()>::Insert(i as u64));
    }
    let n = 5_000_000;
    let t = Instant::now();
    let mut s = 0;
    for i in 0..n {
        s += map.with(&keys[i % 1024], |v| *v).unwrap();
    }
    println!("map.with: {:.1} ns ({s})", t.elapsed().as_nanos() as f64 / n as f64);
    let small: Map<u64, u64> = Map::new();
    for i in 0..1024u64 { small.compute(i, |_| dispatcher_core::sync::Op::<u64, ()>::Insert(i)); }
    let t = Instant::now();
    for i in 0..n { s += small.with(&((i % 1024) as u64), |v| *v).unwrap(); }
    println!("u64 map.with: {:.1} ns ({s})", t.elapsed().as_nanos() as f64 / n as f64);
}
