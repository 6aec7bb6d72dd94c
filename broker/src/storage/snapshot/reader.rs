//! Reads and checks a whole snapshot before handing out any of its records:
//! every batch's CRC and offsets, the SnapshotHeader first and the
//! SnapshotFooter last. A snapshot that fails any check yields nothing.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use kafka_protocol::records::{Record, RecordBatchDecoder};

use super::error::io_error;
use super::id::FileKind;
use super::{SnapshotError, SnapshotId, MAX_BATCH_BYTES};
use crate::storage::batch::{self, BatchError, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::storage::control_records::{self as control, SNAPSHOT_FOOTER, SNAPSHOT_HEADER};

/// One metadata record value of a snapshot, at its offset within the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    pub offset: i64,
    pub value: Bytes,
}

/// A complete, intact snapshot, read in full.
#[derive(Debug)]
pub struct SnapshotReader {
    id: SnapshotId,
    path: PathBuf,
    last_contained_log_timestamp: i64,
    records: Vec<SnapshotRecord>,
}

impl SnapshotReader {
    /// Reads snapshot `id` of `dir`; any damage is an error naming file and byte.
    pub fn open(dir: &Path, id: SnapshotId) -> Result<Self, SnapshotError> {
        Self::read_file(&id.path(dir, FileKind::Complete), id)
    }

    pub(super) fn read_file(path: &Path, id: SnapshotId) -> Result<Self, SnapshotError> {
        let file = File::open(path).map_err(io_error(path))?;
        let size = file.metadata().map_err(io_error(path))?.len();
        let mut input = BufReader::new(file);
        let mut framing = Framing::default();
        let mut position = 0;
        while position < size {
            let corrupt = |reason: String| SnapshotError::Corrupt {
                path: path.to_path_buf(),
                position,
                reason,
            };
            let raw = read_batch(&mut input, size - position).map_err(|e| match e {
                BatchRead::Io(source) => io_error(path)(source),
                BatchRead::Bad(reason) => corrupt(reason),
            })?;
            let header = batch::validate(&raw, MAX_BATCH_BYTES, true).map_err(|e| {
                corrupt(match e {
                    BatchError::Truncated => "batch truncated".into(),
                    BatchError::TooLarge(n) => format!("batch of {n} bytes is too large"),
                    BatchError::Corrupt(reason) => reason,
                })
            })?;
            let records = RecordBatchDecoder::decode(&mut Bytes::from(raw))
                .map_err(|e| corrupt(format!("undecodable batch: {e:#}")))?
                .records;
            framing.add_batch(&header, records).map_err(corrupt)?;
            position += header.total_len() as u64;
        }
        let last_contained_log_timestamp =
            framing.finish().map_err(|reason| SnapshotError::Corrupt {
                path: path.to_path_buf(),
                position,
                reason,
            })?;
        Ok(SnapshotReader {
            id,
            path: path.to_path_buf(),
            last_contained_log_timestamp,
            records: framing.records,
        })
    }

    pub fn id(&self) -> SnapshotId {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn set_path(&mut self, path: PathBuf) {
        self.path = path;
    }

    /// Append time of the last log record the snapshot covers.
    pub fn last_contained_log_timestamp(&self) -> i64 {
        self.last_contained_log_timestamp
    }

    /// The data records, in order.
    pub fn records(&self) -> &[SnapshotRecord] {
        &self.records
    }
}

enum BatchRead {
    Io(std::io::Error),
    Bad(String),
}

/// Reads the batch starting here, `remaining` bytes before the end of the file;
/// its length is checked before anything is allocated for it.
fn read_batch(input: &mut impl Read, remaining: u64) -> Result<Vec<u8>, BatchRead> {
    if remaining < LOG_OVERHEAD as u64 {
        return Err(BatchRead::Bad(format!(
            "truncated: {remaining} byte(s) left, less than a batch"
        )));
    }
    let mut head = [0u8; LOG_OVERHEAD];
    input.read_exact(&mut head).map_err(BatchRead::Io)?;
    let length = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
    let total = usize::try_from(length)
        .ok()
        .map(|l| l + LOG_OVERHEAD)
        .filter(|&t| (HEADER_LEN..=MAX_BATCH_BYTES).contains(&t))
        .ok_or_else(|| BatchRead::Bad(format!("invalid batch length {length}")))?;
    if total as u64 > remaining {
        return Err(BatchRead::Bad(format!(
            "truncated: batch of {total} bytes, {remaining} left in the file"
        )));
    }
    let mut raw = vec![0u8; total];
    raw[..LOG_OVERHEAD].copy_from_slice(&head);
    input
        .read_exact(&mut raw[LOG_OVERHEAD..])
        .map_err(BatchRead::Io)?;
    Ok(raw)
}

/// Tracks the structure of the batches seen so far.
#[derive(Default)]
struct Framing {
    header_timestamp: Option<i64>,
    footer_seen: bool,
    next_offset: i64,
    records: Vec<SnapshotRecord>,
}

impl Framing {
    fn add_batch(&mut self, header: &BatchHeader, records: Vec<Record>) -> Result<(), String> {
        if self.footer_seen {
            return Err("batch after the SnapshotFooter".into());
        }
        if header.base_offset != self.next_offset {
            return Err(format!(
                "batch starts at offset {}, expected {}",
                header.base_offset, self.next_offset
            ));
        }
        if self.header_timestamp.is_none() && !header.is_control() {
            return Err("the first batch does not hold a SnapshotHeader".into());
        }
        self.next_offset = header.next_offset();
        for record in records {
            if self.footer_seen {
                return Err("record after the SnapshotFooter".into());
            }
            if header.is_control() {
                self.add_control(&record)?;
            } else {
                let value = record
                    .value
                    .ok_or_else(|| format!("record {} has no value", record.offset))?;
                self.records.push(SnapshotRecord {
                    offset: record.offset,
                    value,
                });
            }
        }
        Ok(())
    }

    fn add_control(&mut self, record: &Record) -> Result<(), String> {
        match control::record_type(record.key.as_deref())? {
            SNAPSHOT_HEADER if self.header_timestamp.is_none() && record.offset == 0 => {
                self.header_timestamp = Some(control::header_timestamp(record.value.as_deref())?);
            }
            SNAPSHOT_HEADER => return Err("SnapshotHeader is not the first record".into()),
            _ if self.header_timestamp.is_none() => {
                return Err("the first record is not a SnapshotHeader".into())
            }
            SNAPSHOT_FOOTER => {
                control::check_footer(record.value.as_deref())?;
                self.footer_seen = true;
            }
            // KRaftVersion and Voters records: Raft's business, not the metadata's.
            _ => {}
        }
        Ok(())
    }

    /// The header's timestamp, once the footer closed the snapshot.
    fn finish(&self) -> Result<i64, String> {
        match (self.header_timestamp, self.footer_seen) {
            (Some(timestamp), true) => Ok(timestamp),
            (None, _) => Err("no SnapshotHeader: the file is empty".into()),
            (Some(_), false) => Err("no SnapshotFooter: the snapshot is incomplete".into()),
        }
    }
}
