//! Per-partition record batches waiting to be sent, with a sticky partitioner.
//!
//! Like Kafka's default partitioner for keyless records, records stick to one
//! partition until its batch is full or sent, then move to the next one. That keeps
//! batches large, which matters more for throughput than spreading every record.

use std::time::{Duration, Instant};

use bytes::Bytes;

/// A batch being filled for one partition.
#[derive(Debug)]
pub struct PendingBatch {
    pub partition: i32,
    pub values: Vec<Bytes>,
    /// When each record was handed to the producer; latency is measured from here.
    pub enqueued: Vec<Instant>,
    /// Sum of value sizes, compared against the batch size limit.
    pub bytes: usize,
    pub created: Instant,
}

#[derive(Debug)]
pub struct Accumulator {
    partitions: Vec<i32>,
    slots: Vec<Option<PendingBatch>>,
    current: usize,
    batch_size: usize,
    linger: Duration,
}

impl Accumulator {
    /// `first` picks the starting partition slot so that parallel producers do not all
    /// begin on the same partition.
    pub fn new(partitions: Vec<i32>, batch_size: usize, linger: Duration, first: usize) -> Self {
        assert!(!partitions.is_empty(), "at least one partition");
        let n = partitions.len();
        Self {
            slots: (0..n).map(|_| None).collect(),
            current: first % n,
            partitions,
            batch_size: batch_size.max(1),
            linger,
        }
    }

    fn is_full(batch: &PendingBatch, batch_size: usize) -> bool {
        batch.bytes >= batch_size
    }

    /// True when the partition the next record would go to has no room: the producer
    /// should wait for a send to finish instead of buffering more.
    pub fn is_full_ahead(&self) -> bool {
        self.slots[self.current]
            .as_ref()
            .is_some_and(|b| Self::is_full(b, self.batch_size))
    }

    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(Option::is_none)
    }

    /// Adds one record to the sticky partition's batch.
    pub fn append(&mut self, value: Bytes, now: Instant) {
        let partition = self.partitions[self.current];
        let batch = self.slots[self.current].get_or_insert_with(|| PendingBatch {
            partition,
            values: Vec::new(),
            enqueued: Vec::new(),
            bytes: 0,
            created: now,
        });
        batch.bytes += value.len();
        batch.values.push(value);
        batch.enqueued.push(now);
        if Self::is_full(batch, self.batch_size) {
            self.advance();
        }
    }

    /// Moves to the next partition, skipping full batches when one has room.
    fn advance(&mut self) {
        let n = self.partitions.len();
        for step in 1..=n {
            let i = (self.current + step) % n;
            let full = self.slots[i]
                .as_ref()
                .is_some_and(|b| Self::is_full(b, self.batch_size));
            if !full {
                self.current = i;
                return;
            }
        }
        // Every batch is full: stay; is_full_ahead() now tells the producer to wait.
        self.current = (self.current + 1) % n;
    }

    fn is_ready(&self, batch: &PendingBatch, now: Instant, flush: bool) -> bool {
        flush
            || Self::is_full(batch, self.batch_size)
            || now.saturating_duration_since(batch.created) >= self.linger
    }

    /// Whether any batch accepted by `select` (a partition filter, e.g. one leader's
    /// partitions) can be sent now. `flush` makes every non-empty batch ready.
    pub fn has_ready(&self, now: Instant, flush: bool, select: impl Fn(i32) -> bool) -> bool {
        self.slots
            .iter()
            .flatten()
            .any(|b| select(b.partition) && self.is_ready(b, now, flush))
    }

    /// Removes and returns the ready batches accepted by `select`.
    pub fn drain_ready(
        &mut self,
        now: Instant,
        flush: bool,
        select: impl Fn(i32) -> bool,
    ) -> Vec<PendingBatch> {
        let mut out = Vec::new();
        for i in 0..self.slots.len() {
            let ready = self.slots[i]
                .as_ref()
                .is_some_and(|b| select(b.partition) && self.is_ready(b, now, flush));
            if ready {
                out.extend(self.slots[i].take());
                if i == self.current {
                    // Kafka's sticky partitioner also moves on once its batch is sent.
                    self.advance();
                }
            }
        }
        out
    }

    /// When the oldest waiting batch's linger time runs out.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.slots
            .iter()
            .flatten()
            .map(|b| b.created + self.linger)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn val(n: usize) -> Bytes {
        Bytes::from(vec![b'x'; n])
    }

    #[test]
    fn sticks_until_full_then_moves_on() {
        let t = Instant::now();
        let mut acc = Accumulator::new(vec![0, 1, 2], 300, Duration::from_secs(1), 0);
        for _ in 0..3 {
            acc.append(val(100), t);
        }
        // Partition 0 is full, the next record goes to partition 1.
        acc.append(val(100), t);
        let ready = acc.drain_ready(t, false, |_| true);
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0].partition, 0);
        assert_eq!(ready[0].values.len(), 3);
        assert_eq!(ready[0].bytes, 300);
        let rest = acc.drain_ready(t, true, |_| true);
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].partition, 1);
        assert!(acc.is_empty());
    }

    #[test]
    fn linger_makes_partial_batches_ready() {
        let t = Instant::now();
        let mut acc = Accumulator::new(vec![7], 1 << 20, Duration::from_millis(5), 0);
        acc.append(val(10), t);
        assert!(!acc.has_ready(t, false, |_| true));
        assert_eq!(acc.next_deadline(), Some(t + Duration::from_millis(5)));
        let later = t + Duration::from_millis(5);
        assert!(acc.has_ready(later, false, |_| true));
        let b = acc.drain_ready(later, false, |_| true);
        assert_eq!(b[0].partition, 7);
        assert_eq!(b[0].enqueued, vec![t]);
        assert_eq!(acc.next_deadline(), None);
    }

    #[test]
    fn zero_linger_sends_at_once() {
        let t = Instant::now();
        let mut acc = Accumulator::new(vec![0, 1], 1000, Duration::ZERO, 1);
        acc.append(val(1), t);
        let b = acc.drain_ready(t, false, |_| true);
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].partition, 1, "starts on the requested slot");
    }

    #[test]
    fn full_ahead_when_every_batch_is_full() {
        let t = Instant::now();
        let mut acc = Accumulator::new(vec![0, 1], 100, Duration::from_secs(1), 0);
        acc.append(val(100), t);
        assert!(!acc.is_full_ahead());
        acc.append(val(100), t);
        assert!(
            acc.is_full_ahead(),
            "wrapped around onto the full batch of partition 0"
        );
        acc.drain_ready(t, false, |p| p == 0);
        assert!(!acc.is_full_ahead(), "moved to the emptied partition 0");
        acc.append(val(50), t);
        assert_eq!(acc.drain_ready(t, true, |_| true).len(), 2);
    }

    #[test]
    fn select_filters_by_partition() {
        let t = Instant::now();
        let mut acc = Accumulator::new(vec![0, 1], 10, Duration::ZERO, 0);
        acc.append(val(10), t); // fills 0
        acc.append(val(10), t); // fills 1
        assert!(acc.has_ready(t, false, |p| p == 1));
        let only1 = acc.drain_ready(t, false, |p| p == 1);
        assert_eq!(only1.len(), 1);
        assert_eq!(only1[0].partition, 1);
        assert!(!acc.is_empty());
    }
}
