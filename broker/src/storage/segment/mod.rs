//! One segment: `<base>.log` with its `.index` and `.timeindex`.
//!
//! Appends are positional writes by the single appender of the partition; the
//! committed size is published after the write so readers can `pread` without
//! a lock.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;

mod recover;

use super::batch::{BatchHeader, PatchableBatch, HEADER_LEN};
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

const EXTENSIONS: [&str; 3] = ["log", "index", "timeindex"];
const DELETED_SUFFIX: &str = ".deleted";

fn ignore_missing(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Removes the `.log`, `.index` and `.timeindex` files of a segment.
pub fn delete_files(dir: &Path, base_offset: i64) -> io::Result<()> {
    for ext in EXTENSIONS {
        ignore_missing(fs::remove_file(dir.join(file_name(base_offset, ext))))?;
    }
    Ok(())
}

/// Unlinks every `*.deleted` file in `dir` (see [`Segment::mark_deleted`]).
pub fn purge_deleted(dir: &Path) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.ends_with(DELETED_SUFFIX) {
            ignore_missing(fs::remove_file(&path))?;
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
        // One pwritev for the whole request: per-call overhead in the page
        // cache dominated produce profiles when head and body went separately.
        let parts: Vec<&[u8]> = batches.iter().flat_map(|b| [&b.head[..], b.body]).collect();
        write_all_vectored_at(&self.file, &parts, start)?;
        let end = start + parts.iter().map(|p| p.len() as u64).sum::<u64>();
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
        // Read straight into uninitialised capacity: zeroing fetch-sized buffers
        // first showed up as a tenth of the broker's time in consume profiles.
        let mut buf = BytesMut::with_capacity(len);
        let fd = self.file.as_raw_fd();
        while buf.len() < len {
            let filled = buf.len();
            let spare = &mut buf.spare_capacity_mut()[..len - filled];
            // SAFETY: pread writes at most `spare.len()` bytes into memory we own,
            // and only the count it reports is marked initialised below.
            let n = unsafe {
                libc::pread(
                    fd,
                    spare.as_mut_ptr().cast(),
                    spare.len(),
                    (position + filled as u64) as libc::off_t,
                )
            };
            match n {
                0 => break,
                n if n > 0 => unsafe { buf.set_len(filled + n as usize) },
                _ => {
                    let error = io::Error::last_os_error();
                    if error.kind() != io::ErrorKind::Interrupted {
                        return Err(error);
                    }
                }
            }
        }
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

    /// Renames the segment's files to `<name>.deleted`: cheap under the log's
    /// lock, and a crash before [`purge_deleted`] never brings the segment back.
    /// Open readers keep their file handle.
    pub fn mark_deleted(&self) -> io::Result<()> {
        for ext in EXTENSIONS {
            let name = file_name(self.base_offset, ext);
            let to = self.dir.join(format!("{name}{DELETED_SUFFIX}"));
            ignore_missing(fs::rename(self.dir.join(name), to))?;
        }
        Ok(())
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

/// Writes every part, in order, at `offset`, with as few `pwritev` calls as
/// the kernel allows (it may write less than asked; the rest is retried).
fn write_all_vectored_at(file: &File, parts: &[&[u8]], mut offset: u64) -> io::Result<()> {
    const MAX_IOVECS: usize = 1024;
    let mut pending: Vec<&[u8]> = parts.iter().copied().filter(|p| !p.is_empty()).collect();
    let mut first = 0;
    while first < pending.len() {
        let chunk = &pending[first..pending.len().min(first + MAX_IOVECS)];
        let iovecs: Vec<libc::iovec> = chunk
            .iter()
            .map(|p| libc::iovec {
                iov_base: p.as_ptr() as *mut libc::c_void,
                iov_len: p.len(),
            })
            .collect();
        // SAFETY: every iovec points into a live borrowed slice of its stated length.
        let written = unsafe {
            libc::pwritev(
                file.as_raw_fd(),
                iovecs.as_ptr(),
                iovecs.len() as libc::c_int,
                offset as libc::off_t,
            )
        };
        if written < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if written == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote nothing",
            ));
        }
        offset += written as u64;
        let mut left = written as usize;
        while left > 0 {
            let part = pending[first];
            if left >= part.len() {
                left -= part.len();
                first += 1;
            } else {
                pending[first] = &part[left..];
                left = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::batch::testutil::simple;

    pub(super) const CFG: IndexConfig = IndexConfig {
        interval_bytes: 100,
        max_index_bytes: 1024,
    };

    /// Appends `n` batches of 3 records, offsets assigned from the segment end.
    pub(super) fn fill(seg: &Segment, n: usize) {
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
