//! Sparse index files of a segment: `.index` (relative offset u32, position u32)
//! and `.timeindex` (timestamp i64, relative offset u32), big-endian like Kafka.
//!
//! Entries are kept in memory (a few bytes per `index.interval.bytes` of log)
//! and appended to the file; the file is only read when a segment is opened.
//! The file is opened for writing on the first change only: an idle partition's
//! segment then holds one descriptor (its `.log`) instead of three, which is what
//! lets a broker host 10,000 partitions under a 20,000 open-files limit.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

/// One fixed-size entry of an index file.
pub trait IndexEntry: Copy {
    const SIZE: usize;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(b: &[u8]) -> Self;
}

/// `.index` entry: a batch's last offset (relative to the segment) and its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetEntry {
    pub relative_offset: u32,
    pub position: u32,
}

/// `.timeindex` entry: the largest timestamp so far and the offset it was seen at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl IndexEntry for OffsetEntry {
    const SIZE: usize = 8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
        out.extend_from_slice(&self.position.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        OffsetEntry {
            relative_offset: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            position: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        }
    }
}

impl IndexEntry for TimeEntry {
    const SIZE: usize = 12;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.relative_offset.to_be_bytes());
    }
    fn decode(b: &[u8]) -> Self {
        let mut ts = [0u8; 8];
        ts.copy_from_slice(&b[..8]);
        TimeEntry {
            timestamp: i64::from_be_bytes(ts),
            relative_offset: u32::from_be_bytes([b[8], b[9], b[10], b[11]]),
        }
    }
}

/// An index file and its entries.
pub struct IndexFile<E: IndexEntry> {
    path: PathBuf,
    /// Open once something was written; `None` while the file is as loaded or created.
    file: Option<File>,
    entries: Vec<E>,
    max_entries: usize,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Creates an empty index file, replacing any existing one.
    pub fn create(path: &Path, max_bytes: u32) -> io::Result<Self> {
        OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(path)?;
        Ok(IndexFile {
            path: path.to_path_buf(),
            file: None,
            entries: Vec::new(),
            max_entries: (max_bytes as usize / E::SIZE).max(1),
        })
    }

    /// Loads an existing index; `Ok(None)` when missing or not a whole number of entries.
    pub fn load(path: &Path, max_bytes: u32) -> io::Result<Option<Self>> {
        let mut file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let mut raw = Vec::new();
        file.read_to_end(&mut raw)?;
        if raw.len() % E::SIZE != 0 {
            return Ok(None);
        }
        let entries = raw.chunks_exact(E::SIZE).map(E::decode).collect();
        Ok(Some(IndexFile {
            path: path.to_path_buf(),
            file: None,
            entries,
            max_entries: (max_bytes as usize / E::SIZE).max(1),
        }))
    }

    pub fn entries(&self) -> &[E] {
        &self.entries
    }

    pub fn last(&self) -> Option<E> {
        self.entries.last().copied()
    }

    pub fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    pub fn append(&mut self, entry: E) -> io::Result<()> {
        let mut buf = Vec::with_capacity(E::SIZE);
        entry.encode(&mut buf);
        let at = (self.entries.len() * E::SIZE) as u64;
        std::os::unix::fs::FileExt::write_all_at(self.writable()?, &buf, at)?;
        self.entries.push(entry);
        Ok(())
    }

    /// Keeps only the first `len` entries.
    pub fn truncate(&mut self, len: usize) -> io::Result<()> {
        if len < self.entries.len() {
            self.entries.truncate(len);
            self.writable()?.set_len((len * E::SIZE) as u64)?;
        }
        Ok(())
    }

    /// Syncs what was written; a file never written since it was opened has nothing to sync.
    pub fn flush(&mut self) -> io::Result<()> {
        match &self.file {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }

    /// Whether a descriptor is held (only after a change).
    #[cfg(test)]
    pub fn is_open(&self) -> bool {
        self.file.is_some()
    }

    fn writable(&mut self) -> io::Result<&File> {
        if self.file.is_none() {
            self.file = Some(OpenOptions::new().write(true).open(&self.path)?);
        }
        Ok(self.file.as_ref().expect("opened above"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = IndexFile::<OffsetEntry>::create(&path, 16).unwrap();
        index
            .append(OffsetEntry {
                relative_offset: 3,
                position: 100,
            })
            .unwrap();
        assert!(!index.is_full());
        index
            .append(OffsetEntry {
                relative_offset: 9,
                position: 400,
            })
            .unwrap();
        assert!(index.is_full());
        let loaded = IndexFile::<OffsetEntry>::load(&path, 16).unwrap().unwrap();
        assert_eq!(loaded.entries(), index.entries());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
    }

    #[test]
    fn no_descriptor_is_held_until_the_first_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut index = IndexFile::<OffsetEntry>::create(&path, 64).unwrap();
        assert!(!index.is_open());
        index.flush().unwrap();
        let entry = OffsetEntry {
            relative_offset: 1,
            position: 10,
        };
        index.append(entry).unwrap();
        assert!(index.is_open());
        index.flush().unwrap();
        let mut loaded = IndexFile::<OffsetEntry>::load(&path, 64).unwrap().unwrap();
        assert!(!loaded.is_open());
        assert_eq!(loaded.entries(), &[entry]);
        // a loaded index appends after what it read
        loaded
            .append(OffsetEntry {
                relative_offset: 2,
                position: 20,
            })
            .unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 16);
        assert_eq!(
            IndexFile::<OffsetEntry>::load(&path, 64)
                .unwrap()
                .unwrap()
                .entries()
                .len(),
            2
        );
    }

    #[test]
    fn torn_or_missing_files_are_reported_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        assert!(IndexFile::<TimeEntry>::load(&path, 1200).unwrap().is_none());
        std::fs::write(&path, [0u8; 13]).unwrap();
        assert!(IndexFile::<TimeEntry>::load(&path, 1200).unwrap().is_none());
        std::fs::write(&path, [0u8; 24]).unwrap();
        assert_eq!(
            IndexFile::<TimeEntry>::load(&path, 1200)
                .unwrap()
                .unwrap()
                .entries()
                .len(),
            2
        );
    }

    #[test]
    fn truncate_shrinks_file_and_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut index = IndexFile::<TimeEntry>::create(&path, 1200).unwrap();
        for i in 0..3 {
            index
                .append(TimeEntry {
                    timestamp: i,
                    relative_offset: i as u32,
                })
                .unwrap();
        }
        index.truncate(1).unwrap();
        assert_eq!(index.entries().len(), 1);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 12);
    }
}
