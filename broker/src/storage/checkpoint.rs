//! Offset checkpoint files in Kafka's text format: a version line `0`, a count
//! line, then one `topic partition offset` line per partition.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

use super::TopicPartition;

/// Writes the checkpoint atomically.
pub fn write(path: &Path, offsets: &BTreeMap<TopicPartition, i64>) -> io::Result<()> {
    let mut text = format!("0\n{}\n", offsets.len());
    for (tp, offset) in offsets {
        text.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
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

/// Reads a checkpoint; a missing file is empty, a malformed one is `InvalidData`.
pub fn read(path: &Path) -> io::Result<BTreeMap<TopicPartition, i64>> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e),
    };
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}", path.display()),
        )
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Err(bad("unsupported version"));
    }
    let count: usize = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| bad("bad count"))?;
    let mut offsets = BTreeMap::new();
    for line in lines.by_ref().take(count) {
        let mut parts = line.split(' ');
        let (Some(topic), Some(partition), Some(offset), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("malformed entry"));
        };
        let partition = partition.parse().map_err(|_| bad("bad partition"))?;
        let offset = offset.parse().map_err(|_| bad("bad offset"))?;
        offsets.insert(TopicPartition::new(topic, partition), offset);
    }
    if offsets.len() != count || lines.next().is_some() {
        return Err(bad("entry count does not match"));
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
