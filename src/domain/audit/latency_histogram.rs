//! A histogram of call durations (µs) over fixed log-spaced buckets: four per
//! power of two, so a percentile read from it is within 25 % of the true
//! value. Fixed buckets make histograms of different days mergeable by
//! adding counts, so daily rollups answer p50/p99 over any window.

use std::{collections::BTreeMap, fmt::Write, sync::LazyLock};

/// Powers of two covered: the last bucket starts at 2^37 µs (≈ 38 hours).
const OCTAVES: u32 = 38;

/// Lower edges of the buckets, ascending; bucket `i` holds
/// `[EDGES[i], EDGES[i + 1])`, the last one everything above.
static EDGES: LazyLock<Vec<i64>> = LazyLock::new(|| {
    let mut edges = vec![0];
    for octave in 0..OCTAVES {
        for quarter in 0..4 {
            let edge = (1_i64 << octave) * (4 + quarter) / 4;
            if edges.last() != Some(&edge) {
                edges.push(edge);
            }
        }
    }
    edges
});

/// The bucket of a duration; negative durations count as zero.
pub fn bucket_of(duration_us: i64) -> usize {
    EDGES.partition_point(|&edge| edge <= duration_us).max(1) - 1
}

/// The largest duration a bucket holds (its lower edge for the last one):
/// what a percentile falling in it reports.
fn bucket_top(bucket: usize) -> i64 {
    EDGES.get(bucket + 1).map_or(EDGES[bucket], |next| next - 1)
}

/// The same bucketing as [`bucket_of`] as an SQL expression over the column
/// `duration_us` (integer comparisons only, identical on both engines),
/// `-1` where it is NULL. A balanced search: a handful of comparisons a row.
pub fn bucket_sql() -> &'static str {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "CASE WHEN duration_us IS NULL THEN -1 ELSE {} END",
            search(0, EDGES.len())
        )
    });
    &SQL
}

/// The bucket among `EDGES[lo..hi]` of a duration known to be in them.
fn search(lo: usize, hi: usize) -> String {
    if hi - lo == 1 {
        return lo.to_string();
    }
    let mid = (lo + hi) / 2;
    format!(
        "CASE WHEN duration_us < {} THEN {} ELSE {} END",
        EDGES[mid],
        search(lo, mid),
        search(mid, hi)
    )
}

/// Counts per bucket; empty buckets are absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram(BTreeMap<usize, i64>);

#[derive(Debug, thiserror::Error)]
#[error("malformed duration histogram {0:?}")]
pub struct Malformed(String);

impl Histogram {
    pub fn add(&mut self, bucket: usize, count: i64) {
        if count > 0 && bucket < EDGES.len() {
            *self.0.entry(bucket).or_default() += count;
        }
    }

    pub fn record(&mut self, duration_us: i64) {
        self.add(bucket_of(duration_us), 1);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (&bucket, &count) in &other.0 {
            self.add(bucket, count);
        }
    }

    /// The duration at quantile `q` (0 < q ≤ 1): the top of the bucket
    /// holding it. `None` when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Option<i64> {
        let total: i64 = self.0.values().sum();
        if total == 0 {
            return None;
        }
        // The rank of the value at q, 1-based: ceil without float drift.
        let rank = ((q * total as f64).ceil() as i64).clamp(1, total);
        let mut seen = 0;
        self.0.iter().find_map(|(&bucket, &count)| {
            seen += count;
            (seen >= rank).then(|| bucket_top(bucket))
        })
    }

    /// `bucket:count` pairs, comma-separated, ascending.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        for (bucket, count) in &self.0 {
            if !out.is_empty() {
                out.push(',');
            }
            let _ = write!(out, "{bucket}:{count}");
        }
        out
    }

    pub fn decode(text: &str) -> Result<Histogram, Malformed> {
        let mut histogram = Histogram::default();
        for pair in text.split(',').filter(|p| !p.is_empty()) {
            let parsed = pair
                .split_once(':')
                .and_then(|(b, c)| Some((b.parse::<usize>().ok()?, c.parse::<i64>().ok()?)));
            match parsed {
                Some((bucket, count)) if bucket < EDGES.len() && count > 0 => {
                    histogram.add(bucket, count)
                }
                _ => return Err(Malformed(text.to_owned())),
            }
        }
        Ok(histogram)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_within_a_quarter_of_their_values() {
        for v in [1_i64, 2, 3, 7, 100, 999, 12_345, 1_000_000, 60_000_000] {
            let b = bucket_of(v);
            assert!(EDGES[b] <= v && v <= bucket_top(b), "{v} in bucket {b}");
            assert!(
                bucket_top(b) as f64 <= v as f64 * 1.25,
                "{v}: {}",
                bucket_top(b)
            );
        }
        assert_eq!(bucket_of(-5), 0);
        assert_eq!(bucket_of(0), 0);
        assert_eq!(bucket_of(i64::MAX), EDGES.len() - 1);
    }

    #[test]
    fn quantiles_read_the_bucket_holding_the_rank() {
        let mut h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for v in 1..=100 {
            h.record(v);
        }
        let p50 = h.quantile(0.5).expect("p50");
        let p99 = h.quantile(0.99).expect("p99");
        assert!((50..=62).contains(&p50), "{p50}");
        assert!((99..=124).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), Some(bucket_top(bucket_of(100))));
    }

    #[test]
    fn merging_two_days_equals_recording_both() {
        let (mut a, mut b, mut both) = (
            Histogram::default(),
            Histogram::default(),
            Histogram::default(),
        );
        for v in [3, 40, 500, 500, 7_000] {
            a.record(v);
            both.record(v);
        }
        for v in [40, 90_000] {
            b.record(v);
            both.record(v);
        }
        a.merge(&b);
        assert_eq!(a, both);
        assert_eq!(Histogram::decode(&a.encode()).expect("decode"), both);
    }

    #[test]
    fn malformed_text_is_refused() {
        for text in ["1", "x:1", "1:-2", "1:0", "99999:1", "1:2,,3"] {
            assert!(Histogram::decode(text).is_err(), "{text} refused");
        }
        assert_eq!(Histogram::decode("").expect("empty"), Histogram::default());
    }
}
