//! Memory per dispatcher: what one manager holds for each dispatcher it runs (registry record,
//! status slot, span-set entry, journal cell), measured by a counting global allocator, not
//! estimated from type sizes.
//!
//! Run: `cargo bench --bench memory` (prints a small table; `-- N` for another count than
//! 1,000,000). Results and the machine: BENCHMARKS.md.

#![allow(missing_docs, clippy::disallowed_methods)] // reason: bench harness; timing reads the clock

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use dispatcher_core::node::{CreateTicket, Effect};
use dispatcher_core::span::TableSpan;

mod support;

/// The system allocator, counting live bytes (requested sizes; malloc's own per-block overhead
/// is not in it, see BENCHMARKS.md).
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static BLOCKS: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        BLOCKS.fetch_sub(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> (isize, isize) {
    (LIVE.load(Ordering::Relaxed), BLOCKS.load(Ordering::Relaxed))
}

/// Resident set size of the process (Linux `/proc/self/statm`, pages of 4 KiB), 0 elsewhere.
fn rss() -> isize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm.split_whitespace().nth(1).and_then(|p| p.parse::<isize>().ok()).map_or(0, |p| p * 4096)
}

/// A span of the shape TiDB keys have: `t` + 8-byte table id + `_r` + 8-byte row handle, 19 bytes
/// per key, 16 spans per table.
fn span(i: u64) -> TableSpan {
    let table = (i / 16) as i64 + 1;
    let key = |row: u64| {
        let mut k = TableSpan::whole_table(0, table).start_key.to_vec();
        k.extend_from_slice(b"_r");
        k.extend_from_slice(&(row << 59).to_be_bytes());
        k
    };
    TableSpan::new(0, table, key(i % 16), key(i % 16 + 1)).unwrap()
}

fn main() {
    let n: u64 = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(1_000_000);
    let mt = support::maintainer();
    let dm = support::bootstrapped();
    let (base, base_blocks) = live();
    let base_rss = rss();
    let started = Instant::now();
    // Every create admitted and in flight (journal entry held), tickets kept by the "embedder".
    let mut tickets: Vec<CreateTicket> = Vec::with_capacity(n as usize);
    for i in 0..n {
        for effect in dm.handle_schedule(&mt, support::create(i, span(i))).effects {
            if let Effect::Create(ticket) = effect {
                tickets.push(ticket);
            }
        }
    }
    let tickets_bytes = (tickets.capacity() * std::mem::size_of::<CreateTicket>()) as isize;
    let (in_flight, in_flight_blocks) = live();
    let in_flight_rss = rss();
    for ticket in &tickets {
        dm.commit_create(ticket).expect("commits");
    }
    drop(tickets);
    let (running, running_blocks) = live();
    // Two complete rounds' sweeps: the spans' idle journal cells leave the index.
    dm.operators().sweep_idle();
    dm.operators().sweep_idle();
    let (swept, swept_blocks) = live();
    let elapsed = started.elapsed();
    assert_eq!(dm.registry().len() as u64, n);
    let per = |bytes: isize| bytes as f64 / n as f64;
    let mib = |bytes: isize| bytes as f64 / (1024.0 * 1024.0);
    println!("dispatchers: {n} (in one manager; built in {elapsed:.2?})");
    println!("| state | bytes per dispatcher | blocks per dispatcher | total |");
    println!("|---|---|---|---|");
    let rows = [
        (
            "created, create in flight (journal entry held)",
            in_flight - base - tickets_bytes,
            in_flight_blocks - base_blocks,
        ),
        ("running, journal cells still indexed", running - base, running_blocks - base_blocks),
        ("running, idle cells swept", swept - base, swept_blocks - base_blocks),
    ];
    for (state, bytes, blocks) in rows {
        println!("| {state} | {:.0} | {:.1} | {:.0} MiB |", per(bytes), blocks as f64 / n as f64, mib(bytes));
    }
    println!("(requested bytes; the embedder's tickets, {:.0} B each, not counted)", per(tickets_bytes));
    println!(
        "resident set growth while every create was in flight: {:.0} MiB ({:.0} B per dispatcher, tickets and malloc overhead included)",
        mib(in_flight_rss - base_rss),
        per(in_flight_rss - base_rss)
    );
}
