//! Checkpoint files in Kafka's text format: a version line `0`, a count line,
//! then one entry per line. Offset checkpoints hold `topic partition offset`
//! entries; the leader epoch checkpoint holds `epoch startOffset` entries.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::TopicPartition;

/// Writes the entries atomically.
pub fn write_entries(path: &Path, entries: &[String]) -> io::Result<()> {
    let mut text = format!("0\n{}\n", entries.len());
    for entry in entries {
        text.push_str(entry);
        text.push('\n');
    }
    write_atomically(path, text.as_bytes())
}

/// Replaces `path` so that a crash leaves either the old or the new content:
/// temp file, fsync, rename, fsync of the directory.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(data)?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The entries of a checkpoint, each split at single spaces into `FIELDS`
/// parts; `None` when the file does not exist, `InvalidData` when malformed.
pub fn read_entries<const FIELDS: usize>(path: &Path) -> io::Result<Option<Vec<[String; FIELDS]>>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Err(malformed(path, "unsupported version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| malformed(path, "bad count"))?;
    let entries = lines
        .map(|line| {
            let parts: Vec<String> = line.split(' ').map(str::to_string).collect();
            <[String; FIELDS]>::try_from(parts).map_err(|_| malformed(path, "malformed entry"))
        })
        .collect::<io::Result<Vec<_>>>()?;
    if entries.len() != count {
        return Err(malformed(path, "entry count does not match"));
    }
    Ok(Some(entries))
}

/// The error for a checkpoint that cannot be parsed.
pub fn malformed(path: &Path, what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {what}", path.display()),
    )
}

/// Writes an offset checkpoint of the log dir.
pub fn write(path: &Path, offsets: &BTreeMap<TopicPartition, i64>) -> io::Result<()> {
    let entries: Vec<String> = offsets
        .iter()
        .map(|(tp, offset)| format!("{} {} {offset}", tp.topic, tp.partition))
        .collect();
    write_entries(path, &entries)
}

/// Reads an offset checkpoint; a missing file is empty, a malformed one is `InvalidData`.
pub fn read(path: &Path) -> io::Result<BTreeMap<TopicPartition, i64>> {
    let mut offsets = BTreeMap::new();
    for [topic, partition, offset] in read_entries::<3>(path)?.unwrap_or_default() {
        let partition = partition
            .parse()
            .map_err(|_| malformed(path, "bad partition"))?;
        let offset = offset.parse().map_err(|_| malformed(path, "bad offset"))?;
        if offsets
            .insert(TopicPartition::new(topic, partition), offset)
            .is_some()
        {
            return Err(malformed(path, "duplicate partition"));
        }
    }
    Ok(offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafka_format() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point-offset-checkpoint");
        let mut offsets = BTreeMap::new();
        offsets.insert(TopicPartition::new("a-b", 0), 42);
        offsets.insert(TopicPartition::new("c", 3), 7);
        write(&path, &offsets).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "0\n2\na-b 0 42\nc 3 7\n"
        );
        assert_eq!(read(&path).unwrap(), offsets);
        assert!(!path.with_extension("tmp").exists());
    }

    #[test]
    fn missing_is_empty_and_malformed_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cp");
        assert!(read(&path).unwrap().is_empty());
        for text in [
            "1\n0\n",
            "0\n2\na 0 1\n",
            "0\n1\na x 1\n",
            "0\n1\na 0 1 2\n",
            "0\n0\nextra\n",
        ] {
            fs::write(&path, text).unwrap();
            assert_eq!(
                read(&path).unwrap_err().kind(),
                io::ErrorKind::InvalidData,
                "{text:?}"
            );
        }
    }
}
