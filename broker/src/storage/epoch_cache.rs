//! The leader epoch cache: the first offset written in each leader epoch,
//! as Kafka's `LeaderEpochFileCache` keeps it. Followers ask the leader for
//! the end of an epoch (OffsetForLeaderEpoch) to find where their log
//! diverged; the cache answers without reading the log.
//!
//! Persisted as `leader-epoch-checkpoint` in the partition directory, in
//! Kafka's format: `0`, the entry count, then `epoch startOffset` lines.

use std::io;
use std::path::Path;

use super::checkpoint;

pub const CHECKPOINT_FILE: &str = "leader-epoch-checkpoint";

/// Epoch and offset of an OffsetForLeaderEpoch answer that knows nothing.
pub const UNDEFINED_EPOCH: i32 = -1;
pub const UNDEFINED_EPOCH_OFFSET: i64 = -1;

/// The first offset of one leader epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochEntry {
    pub epoch: i32,
    pub start_offset: i64,
}

/// Entries ascending in both epoch and start offset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaderEpochCache {
    entries: Vec<EpochEntry>,
}

impl LeaderEpochCache {
    pub fn latest_epoch(&self) -> Option<i32> {
        self.entries.last().map(|e| e.epoch)
    }

    /// Where the latest epoch starts.
    pub fn latest_start_offset(&self) -> Option<i64> {
        self.entries.last().map(|e| e.start_offset)
    }

    /// Records that `epoch` starts at `start_offset`. An epoch already known
    /// keeps its first offset unless the new one is lower. Entries that would
    /// break monotonicity (epoch or start offset not below the new entry's)
    /// are dropped first, as Kafka does. Negative values are ignored.
    /// Returns whether the cache changed.
    pub fn assign(&mut self, epoch: i32, start_offset: i64) -> bool {
        if epoch < 0 || start_offset < 0 {
            return false;
        }
        if let Some(last) = self.entries.last() {
            if last.epoch == epoch && last.start_offset <= start_offset {
                return false;
            }
        }
        let keep = self
            .entries
            .iter()
            .rposition(|e| e.epoch < epoch && e.start_offset < start_offset)
            .map_or(0, |i| i + 1);
        let removed = self.entries.split_off(keep);
        // Replacing the entry of the same start offset is the expected case
        // (no data was written in it); anything more means divergent history.
        if removed.len() > 1
            || removed
                .first()
                .is_some_and(|e| e.start_offset != start_offset)
        {
            tracing::warn!(
                epoch,
                start_offset,
                ?removed,
                "new leader epoch truncated conflicting entries"
            );
        }
        self.entries.push(EpochEntry {
            epoch,
            start_offset,
        });
        true
    }

    /// Drops every entry starting at or after `end_offset` (the log was
    /// truncated there). Returns whether the cache changed.
    pub fn truncate_from_end(&mut self, end_offset: i64) -> bool {
        if end_offset < 0 {
            return false;
        }
        let keep = self
            .entries
            .partition_point(|e| e.start_offset < end_offset);
        let changed = keep < self.entries.len();
        self.entries.truncate(keep);
        changed
    }

    /// Drops entries wholly below `start_offset` (the log start moved) and
    /// moves the entry covering it to start there. Returns whether the cache changed.
    pub fn truncate_from_start(&mut self, start_offset: i64) -> bool {
        let covered = self
            .entries
            .partition_point(|e| e.start_offset <= start_offset);
        let Some(covering) = covered.checked_sub(1) else {
            return false;
        };
        let changed = covering > 0 || self.entries[covering].start_offset != start_offset;
        self.entries.drain(..covering);
        self.entries[0].start_offset = start_offset;
        changed
    }

    /// Kafka's `endOffsetFor`: the largest epoch at or below `requested` and
    /// the offset where it ends (the next epoch's start, or `log_end` for the
    /// latest epoch). A requested epoch below every entry ends where the first
    /// entry starts (the log before it is gone); an epoch above every entry,
    /// a negative one and an empty cache give (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET).
    pub fn end_offset_for(&self, requested: i32, log_end: i64) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);
        if requested < 0 {
            return UNDEFINED;
        }
        if self.latest_epoch() == Some(requested) {
            return (requested, log_end);
        }
        let higher = self.entries.partition_point(|e| e.epoch <= requested);
        let Some(next) = self.entries.get(higher) else {
            return UNDEFINED;
        };
        match higher.checked_sub(1) {
            Some(floor) => (self.entries[floor].epoch, next.start_offset),
            None => (requested, next.start_offset),
        }
    }

    /// Reads the checkpoint in `dir`: `None` when there is none,
    /// `InvalidData` when it is malformed. Entries are assigned in file order,
    /// so an out-of-order file still yields a monotonic cache.
    pub fn read(dir: &Path) -> io::Result<Option<LeaderEpochCache>> {
        let path = dir.join(CHECKPOINT_FILE);
        let Some(lines) = checkpoint::read_entries::<2>(&path)? else {
            return Ok(None);
        };
        let mut cache = LeaderEpochCache::default();
        for [epoch, offset] in lines {
            let epoch = epoch
                .parse()
                .map_err(|_| checkpoint::malformed(&path, "bad epoch"))?;
            let offset = offset
                .parse()
                .map_err(|_| checkpoint::malformed(&path, "bad start offset"))?;
            cache.assign(epoch, offset);
        }
        Ok(Some(cache))
    }

    /// Writes the checkpoint in `dir` atomically.
    pub fn write(&self, dir: &Path) -> io::Result<()> {
        let lines: Vec<String> = self
            .entries
            .iter()
            .map(|e| format!("{} {}", e.epoch, e.start_offset))
            .collect();
        checkpoint::write_entries(&dir.join(CHECKPOINT_FILE), &lines)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    const UNDEFINED: (i32, i64) = (UNDEFINED_EPOCH, UNDEFINED_EPOCH_OFFSET);

    fn cache(entries: &[(i32, i64)]) -> LeaderEpochCache {
        let mut c = LeaderEpochCache::default();
        for &(epoch, offset) in entries {
            c.assign(epoch, offset);
        }
        c
    }

    fn pairs(c: &LeaderEpochCache) -> Vec<(i32, i64)> {
        c.entries
            .iter()
            .map(|e| (e.epoch, e.start_offset))
            .collect()
    }

    #[test]
    fn an_epoch_keeps_its_first_offset() {
        let mut c = cache(&[(2, 6)]);
        assert!(!c.assign(2, 10));
        assert_eq!(pairs(&c), [(2, 6)]);
        assert_eq!(c.latest_epoch(), Some(2));
    }

    #[test]
    fn a_lower_offset_for_the_latest_epoch_truncates() {
        let mut c = cache(&[(5, 11), (6, 12), (7, 13)]);
        assert!(c.assign(7, 12));
        assert_eq!(pairs(&c), [(5, 11), (7, 12)]);
        assert_eq!(c.end_offset_for(5, 0), (5, 12));
        assert_eq!(c.end_offset_for(6, 0), (5, 12));
    }

    #[test]
    fn epochs_and_offsets_stay_monotonic() {
        // A new epoch at the same start offset replaces the old one.
        assert_eq!(pairs(&cache(&[(2, 9), (3, 9)])), [(3, 9)]);
        // A lower start offset drops later entries.
        assert_eq!(pairs(&cache(&[(2, 6), (3, 5)])), [(3, 5)]);
        // A lower epoch drops entries of higher epochs.
        let c = cache(&[(1, 5), (2, 6), (1, 7)]);
        assert_eq!(pairs(&c), [(1, 7)]);
        assert_eq!(c.end_offset_for(1, 8), (1, 8));
        assert_eq!(c.end_offset_for(2, 8), UNDEFINED);
        // Negative epochs and offsets are not entries.
        let mut c = cache(&[(1, 5)]);
        assert!(!c.assign(-1, 9));
        assert!(!c.assign(2, -1));
        assert_eq!(pairs(&c), [(1, 5)]);
    }

    #[test]
    fn end_offsets_follow_kafka() {
        assert_eq!(LeaderEpochCache::default().end_offset_for(7, 0), UNDEFINED);
        assert_eq!(
            LeaderEpochCache::default().end_offset_for(-1, 73),
            UNDEFINED
        );

        let c = cache(&[(0, 10), (2, 13), (4, 17)]);
        assert_eq!(c.end_offset_for(-1, 20), UNDEFINED);
        assert_eq!(c.end_offset_for(0, 20), (0, 13));
        // An epoch without entry: the largest epoch below it, the next one's start.
        assert_eq!(c.end_offset_for(1, 20), (0, 13));
        assert_eq!(c.end_offset_for(2, 20), (2, 17));
        assert_eq!(c.end_offset_for(3, 20), (2, 17));
        // The latest epoch ends at the log end.
        assert_eq!(c.end_offset_for(4, 20), (4, 20));
        assert_eq!(c.end_offset_for(5, 20), UNDEFINED);

        // Older than the first entry: the first entry's start, with the requested epoch.
        let c = cache(&[(5, 11), (6, 12), (7, 13)]);
        assert_eq!(c.end_offset_for(4, 0), (4, 11));
    }

    #[test]
    fn leader_changes_are_tracked() {
        let mut c = cache(&[(0, 0), (1, 0)]);
        assert_eq!(c.end_offset_for(1, 0), (1, 0));
        // Epoch 0 was replaced; as an epoch below the first it ends where that starts.
        assert_eq!(c.end_offset_for(0, 0), (0, 0));
        c.assign(2, 5);
        assert_eq!(c.end_offset_for(2, 10), (2, 10));
        assert_eq!(c.end_offset_for(1, 10), (1, 5));
        assert_eq!(c.end_offset_for(0, 10), (0, 0));
    }

    #[test]
    fn truncate_from_end_drops_entries_at_or_after_the_offset() {
        let mut c = cache(&[(2, 6), (3, 8), (4, 11)]);
        assert!(!c.truncate_from_end(-1));
        assert!(!c.truncate_from_end(12));
        assert!(c.truncate_from_end(9));
        assert_eq!(pairs(&c), [(2, 6), (3, 8)]);
        assert!(c.truncate_from_end(8));
        assert_eq!(pairs(&c), [(2, 6)]);
        assert!(c.truncate_from_end(0));
        assert!(c.entries.is_empty());
        assert!(!c.truncate_from_end(7));
    }

    #[test]
    fn truncate_from_start_moves_the_covering_entry() {
        let base = [(2, 6), (3, 8), (4, 11)];
        let after = |offset| {
            let mut c = cache(&base);
            let changed = c.truncate_from_start(offset);
            (changed, pairs(&c))
        };
        assert_eq!(after(-1), (false, base.to_vec()));
        assert_eq!(after(1), (false, base.to_vec()));
        assert_eq!(after(6), (false, base.to_vec()));
        assert_eq!(after(8), (true, vec![(3, 8), (4, 11)]));
        assert_eq!(after(9), (true, vec![(3, 9), (4, 11)]));
        assert_eq!(after(11), (true, vec![(4, 11)]));
        assert_eq!(after(15), (true, vec![(4, 15)]));
        let mut c = cache(&[(0, 0), (1, 7), (2, 10)]);
        assert!(c.truncate_from_start(5));
        assert_eq!(pairs(&c), [(0, 5), (1, 7), (2, 10)]);
        assert!(!LeaderEpochCache::default().truncate_from_start(7));
    }

    #[test]
    fn checkpoint_round_trips_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(LeaderEpochCache::read(dir.path()).unwrap(), None);
        let c = cache(&[(2, 6), (3, 8), (4, 11)]);
        c.write(dir.path()).unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n3\n2 6\n3 8\n4 11\n");
        assert_eq!(LeaderEpochCache::read(dir.path()).unwrap(), Some(c));
        LeaderEpochCache::default().write(dir.path()).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "0\n0\n");
        assert_eq!(
            LeaderEpochCache::read(dir.path()).unwrap(),
            Some(LeaderEpochCache::default())
        );
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn malformed_checkpoints_are_invalid_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CHECKPOINT_FILE);
        for text in [
            "",
            "1\n0\n",
            "0\n2\n1 5\n",
            "0\n1\n1 x\n",
            "0\n1\nx 5\n",
            "0\n1\n1 5 7\n",
            "0\n1\n1  5\n",
            "0\n0\n1 5\n",
        ] {
            fs::write(&path, text).unwrap();
            let err = LeaderEpochCache::read(dir.path()).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{text:?}");
        }
    }
}
