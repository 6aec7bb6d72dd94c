//! One segment: `<base>.log` with its `.index` and `.timeindex`.
//!
//! Appends are positional writes by the single appender of the partition; the
//! committed size is published after the write so readers can `pread` without
//! a lock.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

use super::batch::{self, BatchError, BatchHeader, PatchableBatch, HEADER_LEN, LOG_OVERHEAD};
use super::index::{IndexFile, OffsetEntry, TimeEntry};

/// `<20-digit offset>.<ext>`, Kafka's file naming.
pub fn file_name(offset: i64, ext: &str) -> String {
    format!("{offset:020}.{ext}")
}

/// Parses the base offset out of a `<20-digit offset>.<ext>` file name.
pub fn parse_file_name(name: &str, ext: &str) -> Option<i64> {
    let stem = name.strip_suffix(ext)?.strip_suffix('.')?;
    if stem.len() != 20 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Removes the `.log`, `.index` and `.timeindex` files of a segment.
pub fn delete_files(dir: &Path, base_offset: i64) -> io::Result<()> {
    for ext in ["log", "index", "timeindex"] {
        match fs::remove_file(dir.join(file_name(base_offset, ext))) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// Index settings a segment needs from the log config.
#[derive(Debug, Clone, Copy)]
pub struct IndexConfig {
    pub interval_bytes: u32,
    pub max_index_bytes: u32,
}

/// Bookkeeping updated under the segment's lock on every append.
struct Tail {
    offset_index: IndexFile<OffsetEntry>,
    time_index: IndexFile<TimeEntry>,
    bytes_since_index: u64,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    next_offset: i64,
}

pub struct Segment {
    base_offset: i64,
    dir: PathBuf,
    file: File,
    size: AtomicU64,
    created_ms: i64,
    tail: RwLock<Tail>,
}

impl Segment {
    /// Creates an empty segment, replacing files of the same base offset.
    pub fn create(dir: &Path, base_offset: i64, cfg: IndexConfig, now_ms: i64) -> io::Result<Self> {
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .write(true)
            .truncate(true)
            .open(dir.join(file_name(base_offset, "log")))?;
        let tail = Tail::empty(dir, base_offset, cfg)?;
        Ok(Segment {
            base_offset,
            dir: dir.to_path_buf(),
            file,
            size: AtomicU64::new(0),
            created_ms: now_ms,
            tail: RwLock::new(tail),
        })
    }

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

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }

    /// Committed bytes of the `.log` file.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    pub fn created_ms(&self) -> i64 {
        self.created_ms
    }

    /// The offset after the last batch (the base offset when empty).
    pub fn next_offset(&self) -> i64 {
        self.tail.read().next_offset
    }

    /// Largest timestamp in the segment, -1 when empty.
    pub fn max_timestamp(&self) -> i64 {
        self.tail.read().max_timestamp
    }

    /// The last offset of the batch holding the largest timestamp.
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.tail.read().offset_of_max_timestamp
    }

    pub fn index_full(&self) -> bool {
        let tail = self.tail.read();
        tail.offset_index.is_full() || tail.time_index.is_full()
    }

    /// Writes validated batches (offsets already assigned) at the end.
    pub fn append(&self, batches: &[PatchableBatch<'_>], cfg: IndexConfig) -> io::Result<()> {
        let start = self.size();
        let mut end = start;
        for b in batches {
            self.file.write_all_at(&b.head, end)?;
            self.file.write_all_at(b.body, end + HEADER_LEN as u64)?;
            end += (HEADER_LEN + b.body.len()) as u64;
        }
        let mut tail = self.tail.write();
        let mut position = start;
        for b in batches {
            tail.on_batch(self.base_offset, position, &b.header(), cfg)?;
            position += (HEADER_LEN + b.body.len()) as u64;
        }
        drop(tail);
        self.size.store(end, Ordering::Release);
        Ok(())
    }

    /// Up to `len` bytes from `position` (fewer at the end of the file).
    pub fn read_at(&self, position: u64, len: usize) -> io::Result<Bytes> {
        let len = len.min(self.size().saturating_sub(position) as usize);
        let mut buf = BytesMut::zeroed(len);
        let mut done = 0;
        while done < len {
            match self.file.read_at(&mut buf[done..], position + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        buf.truncate(done);
        Ok(buf.freeze())
    }

    /// The header of the batch at `position`, `None` past the end or on a short header.
    pub fn header_at(&self, position: u64) -> io::Result<Option<BatchHeader>> {
        if position + HEADER_LEN as u64 > self.size() {
            return Ok(None);
        }
        Ok(BatchHeader::parse(&self.read_at(position, HEADER_LEN)?))
    }

    /// Calls `f` with every batch header from `position` on until it returns false.
    pub fn for_each_header(
        &self,
        mut position: u64,
        mut f: impl FnMut(u64, &BatchHeader) -> bool,
    ) -> io::Result<()> {
        while let Some(header) = self.header_at(position)? {
            if header.batch_length <= 0 || !f(position, &header) {
                break;
            }
            position += header.total_len() as u64;
        }
        Ok(())
    }

    /// Position and header of the first batch whose last offset is >= `offset`.
    pub fn find_batch(&self, offset: i64) -> io::Result<Option<(u64, BatchHeader)>> {
        let start = self.index_position(offset);
        let mut found = None;
        self.for_each_header(start, |pos, h| {
            if h.last_offset() >= offset {
                found = Some((pos, *h));
                false
            } else {
                true
            }
        })?;
        Ok(found)
    }

    /// A position at or before the batch holding `offset`, from the offset index.
    fn index_position(&self, offset: i64) -> u64 {
        let tail = self.tail.read();
        let entries = tail.offset_index.entries();
        let rel = offset - self.base_offset;
        let i = entries.partition_point(|e| i64::from(e.relative_offset) <= rel);
        if i == 0 {
            0
        } else {
            u64::from(entries[i - 1].position)
        }
    }

    /// A position at or before the first batch holding a timestamp >= `ts`.
    pub fn time_position(&self, ts: i64) -> u64 {
        let tail = self.tail.read();
        let entries = tail.time_index.entries();
        let i = entries.partition_point(|e| e.timestamp < ts);
        let offset = if i == 0 {
            return 0;
        } else {
            self.base_offset + i64::from(entries[i - 1].relative_offset)
        };
        drop(tail);
        self.index_position(offset)
    }

    /// Removes every batch whose last offset is >= `offset`; returns bytes removed.
    pub fn truncate_to(&self, offset: i64) -> io::Result<u64> {
        let Some((position, cut)) = self.find_batch(offset)? else {
            return Ok(0);
        };
        let old = self.size();
        self.file.set_len(position)?;
        self.size.store(position, Ordering::Release);
        let mut tail = self.tail.write();
        let keep = tail
            .offset_index
            .entries()
            .partition_point(|e| u64::from(e.position) < position);
        tail.offset_index.truncate(keep)?;
        let rel = cut.base_offset - self.base_offset;
        let keep = tail
            .time_index
            .entries()
            .partition_point(|e| i64::from(e.relative_offset) < rel);
        tail.time_index.truncate(keep)?;
        drop(tail);
        self.load_tail()?;
        Ok(old - position)
    }

    /// Records the final largest timestamp so the time index covers the whole
    /// segment once it stops being the active one.
    pub fn seal(&self) -> io::Result<()> {
        let mut tail = self.tail.write();
        let (ts, at) = (tail.max_timestamp, tail.offset_of_max_timestamp);
        tail.append_time_entry(self.base_offset, ts, at)?;
        drop(tail);
        self.flush()
    }

    pub fn flush(&self) -> io::Result<()> {
        self.file.sync_data()?;
        let mut tail = self.tail.write();
        tail.offset_index.flush()?;
        tail.time_index.flush()
    }

    /// Removes the segment's files; open readers keep their file handle.
    pub fn delete_files(&self) -> io::Result<()> {
        delete_files(&self.dir, self.base_offset)
    }

    /// Recomputes next offset and largest timestamp from the indexes plus a scan
    /// of the batches after the last offset index entry.
    fn load_tail(&self) -> io::Result<()> {
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

impl Tail {
    fn empty(dir: &Path, base_offset: i64, cfg: IndexConfig) -> io::Result<Tail> {
        Ok(Tail {
            offset_index: IndexFile::create(
                &dir.join(file_name(base_offset, "index")),
                cfg.max_index_bytes,
            )?,
            time_index: IndexFile::create(
                &dir.join(file_name(base_offset, "timeindex")),
                cfg.max_index_bytes,
            )?,
            bytes_since_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: base_offset,
            next_offset: base_offset,
        })
    }

    fn on_batch(
        &mut self,
        base_offset: i64,
        position: u64,
        h: &BatchHeader,
        cfg: IndexConfig,
    ) -> io::Result<()> {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.offset_of_max_timestamp = h.last_offset();
        }
        // Kafka's rule: index the batch that starts after more than an interval of bytes.
        if self.bytes_since_index > u64::from(cfg.interval_bytes) && !self.offset_index.is_full() {
            let relative_offset = (h.last_offset() - base_offset) as u32;
            self.offset_index.append(OffsetEntry {
                relative_offset,
                position: position as u32,
            })?;
            let (ts, at) = (self.max_timestamp, self.offset_of_max_timestamp);
            self.append_time_entry(base_offset, ts, at)?;
            self.bytes_since_index = 0;
        }
        self.bytes_since_index += h.total_len() as u64;
        self.next_offset = h.next_offset();
        Ok(())
    }

    fn append_time_entry(&mut self, base_offset: i64, ts: i64, at: i64) -> io::Result<()> {
        let newer = self.time_index.last().is_none_or(|e| ts > e.timestamp);
        if ts >= 0 && newer && !self.time_index.is_full() {
            self.time_index.append(TimeEntry {
                timestamp: ts,
                relative_offset: (at - base_offset) as u32,
            })?;
        }
        Ok(())
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
    use super::super::batch::testutil::simple;
    use super::*;

    const CFG: IndexConfig = IndexConfig {
        interval_bytes: 100,
        max_index_bytes: 1024,
    };

    /// Appends `n` batches of 3 records, offsets assigned from the segment end.
    fn fill(seg: &Segment, n: usize) {
        for i in 0..n {
            let raw = simple(3, 1_000 + i as i64);
            let mut b = PatchableBatch::new(&raw).unwrap();
            b.set_base_offset(seg.next_offset());
            seg.append(&[b], CFG).unwrap();
        }
    }

    #[test]
    fn file_names_are_twenty_digits() {
        assert_eq!(file_name(42, "log"), "00000000000000000042.log");
        assert_eq!(parse_file_name("00000000000000000042.log", "log"), Some(42));
        assert_eq!(parse_file_name("42.log", "log"), None);
        assert_eq!(parse_file_name("00000000000000000042.index", "log"), None);
    }

    #[test]
    fn index_lookup_finds_the_batch_holding_an_offset() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 100, CFG, 0).unwrap();
        fill(&seg, 20);
        assert!(!seg.tail.read().offset_index.entries().is_empty());
        for offset in [100, 101, 102, 103, 130, 159] {
            let (pos, h) = seg.find_batch(offset).unwrap().unwrap();
            assert!(h.base_offset <= offset && offset <= h.last_offset());
            assert_eq!(seg.header_at(pos).unwrap().unwrap(), h);
        }
        assert!(seg.find_batch(160).unwrap().is_none());
        assert_eq!(seg.next_offset(), 160);
        assert_eq!(seg.max_timestamp(), 1_019);
        assert_eq!(seg.offset_of_max_timestamp(), 159);
    }

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

    #[test]
    fn truncate_to_drops_batches_from_the_one_holding_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 0, CFG, 0).unwrap();
        fill(&seg, 20);
        let removed = seg.truncate_to(31).unwrap();
        assert!(removed > 0);
        assert_eq!(seg.next_offset(), 30);
        assert!(seg.find_batch(30).unwrap().is_none());
        assert_eq!(seg.max_timestamp(), 1_009);
        fill(&seg, 1);
        assert_eq!(seg.find_batch(30).unwrap().unwrap().1.base_offset, 30);
    }

    #[test]
    fn time_position_starts_at_or_before_the_match() {
        let dir = tempfile::tempdir().unwrap();
        let seg = Segment::create(dir.path(), 0, CFG, 0).unwrap();
        fill(&seg, 20);
        let pos = seg.time_position(1_010);
        let mut first = None;
        seg.for_each_header(pos, |_, h| {
            if h.max_timestamp >= 1_010 {
                first = Some(h.base_offset);
                return false;
            }
            true
        })
        .unwrap();
        assert_eq!(first, Some(30));
        assert!(pos > 0);
    }
}
