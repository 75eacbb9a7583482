//! Regions: what the upstream's storage knows about a key range (its region boundaries and how
//! many bytes each region took lately), behind a trait the embedder implements, and the two ways
//! a span is cut at region boundaries: into chunks of equal region count, or into pieces of equal
//! written bytes.

use crate::ids::Ts;
use crate::span::{Key, TableSpan};

/// One upstream region as seen from a span: its key range and the bytes written to it lately.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Region {
    /// Inclusive start key.
    pub start_key: Key,
    /// Exclusive end key (empty: unbounded).
    pub end_key: Key,
    /// Bytes written to the region over the source's recent window (any fixed window: only the
    /// ratios between regions matter).
    pub written_bytes: u64,
}

/// Where the maintainer learns a table's regions. The maintainer is sans-IO and calls this from
/// inside [`Maintainer::step`](crate::maintainer::Maintainer::step): an implementation answers
/// from what it already holds (a cache it refreshes on its own thread) and never blocks, so a
/// slow region service can delay a split but never the maintainer (the reference queries its
/// placement driver under the span controller's lock, its hazard H7).
pub trait RegionSource: Send {
    /// The regions overlapping `span`, in key order. An error (or an answer that does not tile
    /// the span) means "no split now"; the maintainer asks again at a later round.
    fn regions(&self, span: &TableSpan) -> Result<Vec<Region>, String>;

    /// How far, in milliseconds, `checkpoint` is behind the upstream's present (the reference
    /// asks PD's clock), `now_ms` being the maintainer's clock; a source that keeps its own
    /// clock may ignore it. `None` (the default): unknown, and merges are not gated on lag.
    fn lag_ms(&self, now_ms: u64, checkpoint: Ts) -> Option<u64> {
        let _ = (now_ms, checkpoint);
        None
    }
}

/// A source that knows nothing: every span is one region with no writes. The default, so a
/// maintainer without a region source never splits by regions and cuts hot spans evenly.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoRegions;

impl RegionSource for NoRegions {
    fn regions(&self, span: &TableSpan) -> Result<Vec<Region>, String> {
        Ok(vec![Region {
            start_key: span.start_key.clone(),
            end_key: span.end_key.clone(),
            written_bytes: 0,
        }])
    }
}

/// The regions of `span` clamped to it, if they tile it exactly: sorted, consecutive, no gap,
/// no overlap, the first starting at or before the span's start and the last ending at or after
/// its end. `None` otherwise (the reference rejects overlaps but not gaps, its H12).
pub fn clamp(span: &TableSpan, regions: &[Region]) -> Option<Vec<Region>> {
    let after = |end: &Key, key: &Key| end.is_empty() || key < end; // end > key
    let mut out: Vec<Region> = Vec::with_capacity(regions.len());
    for r in regions {
        if !after(&r.end_key, &span.start_key) || !after(&span.end_key, &r.start_key) {
            continue; // outside the span
        }
        let start = if r.start_key < span.start_key { span.start_key.clone() } else { r.start_key.clone() };
        let end = match (r.end_key.is_empty(), span.end_key.is_empty()) {
            (true, _) => span.end_key.clone(),
            (false, true) => r.end_key.clone(),
            (false, false) => r.end_key.clone().min(span.end_key.clone()),
        };
        if let Some(prev) = out.last() {
            if prev.end_key != start {
                return None; // a gap or an overlap
            }
        } else if start != span.start_key {
            return None; // the span's start is not covered
        }
        if !end.is_empty() && start >= end {
            return None;
        }
        out.push(Region { start_key: start, end_key: end, written_bytes: r.written_bytes });
    }
    (out.last()?.end_key == span.end_key).then_some(out)
}

fn pieces_of(span: &TableSpan, regions: &[Region], cuts: &[usize]) -> Vec<TableSpan> {
    // `cuts` are the indexes of the regions that start a piece after the first.
    let mut starts = vec![span.start_key.clone()];
    starts.extend(cuts.iter().map(|i| regions[*i].start_key.clone()));
    let mut ends: Vec<Key> = starts[1..].to_vec();
    ends.push(span.end_key.clone());
    starts
        .into_iter()
        .zip(ends)
        .map(|(start_key, end_key)| TableSpan {
            keyspace_id: span.keyspace_id,
            table_id: span.table_id,
            start_key,
            end_key,
        })
        .collect()
}

/// Cuts `span` into `pieces` chunks of consecutive regions, as equal in region count as can be
/// (the first `regions mod pieces` chunks one region larger). `None` when the regions do not tile
/// the span or there are fewer regions than pieces, or `pieces < 2`.
pub fn by_region_count(span: &TableSpan, regions: &[Region], pieces: usize) -> Option<Vec<TableSpan>> {
    let regions = clamp(span, regions)?;
    if pieces < 2 || regions.len() < pieces {
        return None;
    }
    let (base, extra) = (regions.len() / pieces, regions.len() % pieces);
    let mut cuts = Vec::with_capacity(pieces - 1);
    let mut at = 0;
    for i in 0..pieces - 1 {
        at += base + usize::from(i < extra);
        cuts.push(at);
    }
    Some(pieces_of(span, &regions, &cuts))
}

/// Cuts `span` at region boundaries into at most `pieces` pieces of as equal written bytes as the
/// boundaries allow (each region weighs its bytes plus one, so idle regions still count). Piece
/// `k` ends at the boundary nearest to `k/pieces` of the total weight, never reusing a boundary,
/// so the result has between 2 and `pieces` non-empty pieces. `None` when the regions do not tile
/// the span, there is a single region, or `pieces < 2`.
pub fn by_written_bytes(span: &TableSpan, regions: &[Region], pieces: usize) -> Option<Vec<TableSpan>> {
    let regions = clamp(span, regions)?;
    if pieces < 2 || regions.len() < 2 {
        return None;
    }
    let weights: Vec<u128> = regions.iter().map(|r| u128::from(r.written_bytes) + 1).collect();
    let total: u128 = weights.iter().sum();
    // prefix[i] = weight of regions[..i]; boundary i (1 ..= len-1) is the start of regions[i].
    let mut prefix = Vec::with_capacity(regions.len() + 1);
    prefix.push(0u128);
    for w in &weights {
        prefix.push(prefix.last().copied().unwrap_or(0) + w);
    }
    let pieces = pieces.min(regions.len());
    let mut cuts: Vec<usize> = Vec::with_capacity(pieces - 1);
    for k in 1..pieces {
        let goal = total * k as u128 / pieces as u128;
        let lowest = cuts.last().map_or(1, |c| c + 1);
        let highest = regions.len() - (pieces - k); // leave a region for every piece after
        if lowest > highest {
            break;
        }
        // The boundary in [lowest, highest] nearest the goal (the first of equals).
        let i = (lowest..=highest).min_by_key(|i| prefix[*i].abs_diff(goal)).unwrap_or(lowest);
        cuts.push(i);
    }
    (!cuts.is_empty()).then(|| pieces_of(span, &regions, &cuts))
}

/// How many pieces a new table of `regions` regions is cut into before it is first placed (the
/// reference's pre-split): one when region checks are off (`threshold == 0`) or the table has at
/// most `threshold` regions; otherwise chunks of at most `per_span` regions, at most 1,000.
pub fn presplit_pieces(regions: u64, threshold: u64, per_span: u64) -> usize {
    if threshold == 0 || regions <= threshold {
        return 1;
    }
    let per_span = per_span.clamp(1, threshold.max(1));
    let chunks = regions.div_ceil(per_span);
    usize::try_from(chunks.min(1_000)).unwrap_or(1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    const END: u128 = 1 << 64;

    fn regions(table: i64, count: u128, bytes: impl Fn(u128) -> u64) -> Vec<Region> {
        (0..count)
            .map(|i| {
                let s = TableSpan::at_positions(0, table, i * END / count, (i + 1) * END / count).unwrap();
                Region { start_key: s.start_key, end_key: s.end_key, written_bytes: bytes(i) }
            })
            .collect()
    }

    fn tiles(span: &TableSpan, pieces: &[TableSpan]) -> bool {
        pieces.first().is_some_and(|p| p.start_key == span.start_key)
            && pieces.last().is_some_and(|p| p.end_key == span.end_key)
            && pieces.windows(2).all(|w| w[0].is_followed_by(&w[1]))
            && pieces.iter().all(TableSpan::is_valid)
    }

    #[test]
    fn region_count_chunks_are_even_and_tile_the_span() {
        let span = TableSpan::whole_table(0, 7);
        let r = regions(7, 10, |_| 0);
        let p = by_region_count(&span, &r, 3).unwrap();
        assert!(tiles(&span, &p));
        assert_eq!(p.len(), 3);
        // 4, 3, 3 regions.
        assert_eq!(p[1].start_key, r[4].start_key);
        assert_eq!(p[2].start_key, r[7].start_key);
        assert!(by_region_count(&span, &r, 11).is_none(), "fewer regions than pieces");
        assert!(by_region_count(&span, &r, 1).is_none());
    }

    #[test]
    fn written_bytes_cuts_follow_the_weight_not_the_width() {
        let span = TableSpan::whole_table(0, 7);
        // Region 9 of 10 takes almost every write: the cuts crowd around it.
        let r = regions(7, 10, |i| if i == 9 { 1_000_000 } else { 10 });
        let p = by_written_bytes(&span, &r, 4).unwrap();
        assert!(tiles(&span, &p));
        assert!(p.len() >= 2 && p.len() <= 4);
        assert_eq!(p.last().unwrap().start_key, r[9].start_key, "the hot region alone at the end");
        // Even writes: even pieces.
        let r = regions(7, 8, |_| 100);
        let p = by_written_bytes(&span, &r, 4).unwrap();
        let starts: Vec<_> = p.iter().map(|s| s.start_key.clone()).collect();
        assert_eq!(
            starts,
            [r[0].start_key.clone(), r[2].start_key.clone(), r[4].start_key.clone(), r[6].start_key.clone()]
        );
    }

    #[test]
    fn a_single_region_or_a_broken_tiling_gives_no_split() {
        let span = TableSpan::whole_table(0, 7);
        let one = regions(7, 1, |_| 5);
        assert!(by_written_bytes(&span, &one, 4).is_none(), "one region cannot be cut (H2's case)");
        let mut gap = regions(7, 4, |_| 5);
        gap.remove(2);
        assert!(by_written_bytes(&span, &gap, 2).is_none(), "a gap is refused (H12)");
        assert!(by_region_count(&span, &gap, 2).is_none());
        let mut overlap = regions(7, 4, |_| 5);
        overlap[2].start_key = overlap[1].start_key.clone();
        assert!(clamp(&span, &overlap).is_none());
    }

    #[test]
    fn regions_are_clamped_to_a_part_of_the_table() {
        let part = TableSpan::at_positions(0, 7, END / 8, END / 2).unwrap();
        let r = regions(7, 4, |i| i as u64);
        let c = clamp(&part, &r).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].start_key, part.start_key);
        assert_eq!(c[1].end_key, part.end_key);
        let p = by_region_count(&part, &r, 2).unwrap();
        assert!(tiles(&part, &p));
    }

    #[test]
    fn presplit_counts_follow_the_reference() {
        assert_eq!(presplit_pieces(10_000, 10_000, 100), 1, "at the threshold: not split");
        assert_eq!(presplit_pieces(10_001, 10_000, 100), 101);
        assert_eq!(presplit_pieces(20_000, 10_000, 100), 200);
        assert_eq!(presplit_pieces(5_000_000, 10_000, 100), 1_000, "capped");
        assert_eq!(presplit_pieces(50_000, 0, 100), 1, "region checks off");
    }
}
