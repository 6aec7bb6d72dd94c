//! Latency histogram with bounded relative error, cheap enough to record every record.
//!
//! Values are microseconds. Values below `2 * SUB` are stored exactly; above that each
//! power-of-two range is split into `SUB` equal buckets, so a reported percentile is
//! within 1/SUB (under 1%) of the true value. Min, max and count are exact.

/// Buckets per power of two above the exact range.
const SUB: u64 = 128;
const SUB_BITS: u32 = 7;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    min: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: Vec::new(),
            total: 0,
            min: u64::MAX,
            max: 0,
            sum: 0,
        }
    }

    fn index_of(v: u64) -> usize {
        if v < 2 * SUB {
            return v as usize;
        }
        // v has `bits` significant bits; keep the top SUB_BITS+1 of them.
        let bits = 64 - v.leading_zeros();
        let shift = bits - (SUB_BITS + 1);
        let mantissa = v >> shift; // in [SUB, 2*SUB)
        (2 * SUB + (shift as u64 - 1) * SUB + (mantissa - SUB)) as usize
    }

    /// Highest value that falls into bucket `idx`.
    fn upper_bound(idx: usize) -> u64 {
        let idx = idx as u64;
        if idx < 2 * SUB {
            return idx;
        }
        let rel = idx - 2 * SUB;
        let shift = rel / SUB + 1;
        let mantissa = rel % SUB + SUB;
        // u128 so the top bucket (values near u64::MAX) cannot overflow.
        let top = ((mantissa as u128 + 1) << shift) - 1;
        top.min(u64::MAX as u128) as u64
    }

    /// Records `n` occurrences of value `v`.
    pub fn record_n(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        let idx = Self::index_of(v);
        if idx >= self.counts.len() {
            self.counts.resize(idx + 1, 0);
        }
        self.counts[idx] += n;
        self.total += n;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        self.sum += v as u128 * n as u128;
    }

    pub fn record(&mut self, v: u64) {
        self.record_n(v, 1);
    }

    pub fn merge(&mut self, other: &Histogram) {
        if other.counts.len() > self.counts.len() {
            self.counts.resize(other.counts.len(), 0);
        }
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.total += other.total;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum += other.sum;
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// Value at quantile `q` in [0, 1] (nearest-rank), or 0 for an empty histogram.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (idx, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                // The bucket's top can exceed the largest value seen; never report more.
                return Self::upper_bound(idx).clamp(self.min, self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_zero() {
        let h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        assert_eq!(h.count(), 0);
        assert_eq!(h.mean(), 0.0);
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 1..=100 {
            h.record(v);
        }
        assert_eq!(h.quantile(0.5), 50);
        assert_eq!(h.quantile(0.99), 99);
        assert_eq!(h.quantile(1.0), 100);
        assert_eq!(h.quantile(0.0), 1);
        assert_eq!(h.max(), 100);
        assert!((h.mean() - 50.5).abs() < 1e-9);
    }

    #[test]
    fn index_and_bound_agree() {
        for v in (0..2_000_000u64)
            .step_by(37)
            .chain([u32::MAX as u64, 1 << 40])
        {
            let idx = Histogram::index_of(v);
            let hi = Histogram::upper_bound(idx);
            assert!(hi >= v, "v={v} idx={idx} hi={hi}");
            if idx > 0 {
                assert!(Histogram::upper_bound(idx - 1) < v, "v={v}");
            }
        }
    }

    #[test]
    fn large_values_within_one_percent() {
        let mut h = Histogram::new();
        for v in 1..=1_000_000u64 {
            h.record(v);
        }
        for (q, want) in [(0.5, 500_000.0), (0.99, 990_000.0), (0.999, 999_000.0)] {
            let got = h.quantile(q) as f64;
            assert!((got - want).abs() / want < 0.01, "q={q} got={got}");
        }
        assert_eq!(h.quantile(1.0), 1_000_000);
    }

    #[test]
    fn tail_is_seen() {
        let mut h = Histogram::new();
        h.record_n(1_000, 9_990);
        h.record_n(50_000, 10);
        assert!((1_000..=1_008).contains(&h.quantile(0.5)));
        assert!(h.quantile(0.99) < 1_010);
        let p999 = h.quantile(0.9991);
        assert!((49_500..=50_000).contains(&p999), "p99.9={p999}");
        assert_eq!(h.max(), 50_000);
    }

    #[test]
    fn merge_adds_up() {
        let mut a = Histogram::new();
        let mut b = Histogram::new();
        a.record_n(10, 5);
        b.record_n(1_000_000, 5);
        a.merge(&b);
        assert_eq!(a.count(), 10);
        assert_eq!(a.quantile(0.5), 10);
        assert_eq!(a.quantile(1.0), 1_000_000);
    }
}
