//! Opening a segment: trust its indexes after a sanity check, or validate
//! every batch, truncate a torn or corrupt tail and rebuild the indexes.

use std::fs::OpenOptions;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;

use super::{file_name, IndexConfig, Segment, Tail};
use crate::storage::batch::{self, BatchError, LOG_OVERHEAD};
use crate::storage::index::{IndexFile, OffsetEntry, TimeEntry};

impl Segment {
    /// Opens an existing segment. With `recover` (or when an index is missing or
    /// fails its sanity check) every batch is validated, a torn or corrupt tail is
    /// truncated and the indexes are rebuilt. Returns the bytes truncated.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        cfg: IndexConfig,
        recover: bool,
        now_ms: i64,
    ) -> io::Result<(Self, u64)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.join(file_name(base_offset, "log")))?;
        let size = file.metadata()?.len();
        let loaded = if recover {
            None
        } else {
            let offsets = IndexFile::load(
                &dir.join(file_name(base_offset, "index")),
                cfg.max_index_bytes,
            )?;
            let times = IndexFile::load(
                &dir.join(file_name(base_offset, "timeindex")),
                cfg.max_index_bytes,
            )?;
            offsets.zip(times)
        };
        let sane = loaded.filter(|(o, t)| indexes_sane(o, t, size));
        let rebuild = sane.is_none();
        let tail = match sane {
            Some((offset_index, time_index)) => Tail {
                offset_index,
                time_index,
                bytes_since_index: 0,
                max_timestamp: -1,
                offset_of_max_timestamp: base_offset,
                next_offset: base_offset,
            },
            None => Tail::empty(dir, base_offset, cfg)?,
        };
        let mut segment = Segment {
            base_offset,
            dir: dir.to_path_buf(),
            file,
            size: AtomicU64::new(size),
            created_ms: now_ms,
            tail: RwLock::new(tail),
        };
        let truncated = if rebuild {
            if !recover {
                tracing::warn!(base_offset, dir = %dir.display(), "index missing or corrupt, rebuilding");
            }
            segment.recover(cfg)?
        } else {
            segment.load_tail()?;
            0
        };
        Ok((segment, truncated))
    }

    /// Recomputes next offset and largest timestamp from the indexes plus a scan
    /// of the batches after the last offset index entry.
    pub(super) fn load_tail(&self) -> io::Result<()> {
        let (start, mut max_ts, mut max_at) = {
            let tail = self.tail.read();
            let start = tail
                .offset_index
                .last()
                .map_or(0, |e| u64::from(e.position));
            match tail.time_index.last() {
                Some(e) => (
                    start,
                    e.timestamp,
                    self.base_offset + i64::from(e.relative_offset),
                ),
                None => (start, -1, self.base_offset),
            }
        };
        let mut next = self.base_offset;
        let mut bytes_after = 0;
        self.for_each_header(start, |_, h| {
            if h.max_timestamp > max_ts {
                max_ts = h.max_timestamp;
                max_at = h.last_offset();
            }
            next = h.next_offset();
            bytes_after += h.total_len() as u64;
            true
        })?;
        let mut tail = self.tail.write();
        if next == self.base_offset {
            if let Some(e) = tail.offset_index.last() {
                next = self.base_offset + i64::from(e.relative_offset) + 1;
            }
        }
        tail.next_offset = next;
        tail.max_timestamp = max_ts;
        tail.offset_of_max_timestamp = max_at;
        tail.bytes_since_index = bytes_after;
        Ok(())
    }

    /// Validates every batch, truncates at the first invalid one and rebuilds
    /// both indexes. Returns the number of bytes truncated.
    fn recover(&mut self, cfg: IndexConfig) -> io::Result<u64> {
        let file_size = self.size();
        let mut tail = Tail::empty(&self.dir, self.base_offset, cfg)?;
        let mut position = 0u64;
        let mut reason = None;
        while position < file_size {
            let head = self.read_at(position, LOG_OVERHEAD)?;
            if head.len() < LOG_OVERHEAD {
                reason = Some(BatchError::Truncated);
                break;
            }
            let length = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
            let remaining = file_size - position;
            let total = LOG_OVERHEAD as u64 + length.max(0) as u64;
            let raw = self.read_at(position, total.min(remaining) as usize)?;
            let header = match batch::validate(&raw, remaining as usize, false) {
                Ok(h) => h,
                Err(BatchError::TooLarge(_)) => {
                    reason = Some(BatchError::Truncated);
                    break;
                }
                Err(e) => {
                    reason = Some(e);
                    break;
                }
            };
            if header.base_offset < tail.next_offset {
                reason = Some(BatchError::Corrupt(format!(
                    "offset {} goes backwards (expected >= {})",
                    header.base_offset, tail.next_offset
                )));
                break;
            }
            tail.on_batch(self.base_offset, position, &header, cfg)?;
            position += header.total_len() as u64;
        }
        if let Some(reason) = reason {
            tracing::warn!(
                base_offset = self.base_offset,
                dir = %self.dir.display(),
                position,
                ?reason,
                "truncating invalid tail of segment"
            );
            self.file.set_len(position)?;
            self.file.sync_data()?;
        }
        self.size.store(position, Ordering::Release);
        *self.tail.get_mut() = tail;
        Ok(file_size - position)
    }
}

/// Cheap checks Kafka also does: entries increase and point inside the log.
fn indexes_sane(
    offsets: &IndexFile<OffsetEntry>,
    times: &IndexFile<TimeEntry>,
    log_size: u64,
) -> bool {
    let o = offsets.entries();
    let t = times.entries();
    o.windows(2)
        .all(|w| w[0].relative_offset < w[1].relative_offset && w[0].position < w[1].position)
        && o.iter().all(|e| u64::from(e.position) < log_size)
        && t.windows(2).all(|w| {
            w[0].timestamp < w[1].timestamp && w[0].relative_offset <= w[1].relative_offset
        })
}
#[cfg(test)]
mod tests {
    use super::super::tests::{fill, CFG};
    use super::*;

    #[test]
    fn reopen_uses_indexes_and_rebuilds_corrupt_ones() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 0, CFG, 0).unwrap();
        fill(&seg, 20);
        seg.seal().unwrap();
        let entries = seg.tail.read().offset_index.entries().to_vec();
        drop(seg);

        let (seg, cut) = Segment::open(dir.path(), 0, CFG, false, 0).unwrap();
        assert_eq!(cut, 0);
        assert_eq!(seg.next_offset(), 60);
        assert_eq!(seg.max_timestamp(), 1_019);
        drop(seg);

        // Entries out of order fail the sanity check and are rebuilt.
        std::fs::write(
            dir.path().join(file_name(0, "index")),
            [0, 0, 0, 9, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 0],
        )
        .unwrap();
        let (seg, _) = Segment::open(dir.path(), 0, CFG, false, 0).unwrap();
        assert_eq!(seg.tail.read().offset_index.entries(), &entries[..]);
        drop(seg);

        std::fs::remove_file(dir.path().join(file_name(0, "timeindex"))).unwrap();
        let (seg, _) = Segment::open(dir.path(), 0, CFG, false, 0).unwrap();
        assert_eq!(seg.tail.read().offset_index.entries(), &entries[..]);
        assert!(dir.path().join(file_name(0, "timeindex")).exists());
        assert_eq!(seg.find_batch(31).unwrap().unwrap().1.base_offset, 30);
    }

    #[test]
    fn recovery_truncates_torn_and_corrupt_tails() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 0, CFG, 0).unwrap();
        fill(&seg, 5);
        let good = seg.size();
        let batch_len = good / 5;
        drop(seg);
        let path = dir.path().join(file_name(0, "log"));

        // A torn last batch.
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(good - 7).unwrap();
        let (seg, cut) = Segment::open(dir.path(), 0, CFG, true, 0).unwrap();
        assert_eq!(cut, batch_len - 7);
        assert_eq!(seg.size(), good - batch_len);
        assert_eq!(seg.next_offset(), 12);
        drop(seg);

        // Garbage after the last valid batch.
        let mut bytes = std::fs::read(&path).unwrap();
        let valid = bytes.len() as u64;
        bytes.extend_from_slice(&[0xAB; 100]);
        std::fs::write(&path, &bytes).unwrap();
        let (seg, cut) = Segment::open(dir.path(), 0, CFG, true, 0).unwrap();
        assert_eq!(cut, 100);
        assert_eq!(seg.size(), valid);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), valid);
        assert_eq!(seg.next_offset(), 12);
    }
}
