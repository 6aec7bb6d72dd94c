//! High watermarks survive restarts in each log dir's
//! `replication-offset-checkpoint`, in Kafka's offset checkpoint format.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::path::{Path, PathBuf};

use crate::storage::checkpoint;
use crate::storage::TopicPartition;

pub const FILE: &str = "replication-offset-checkpoint";

/// Every log dir's checkpointed high watermarks; an unreadable file counts
/// as empty (the high watermark then restarts at the log start, as in Kafka).
pub fn load(dirs: &[PathBuf]) -> HashMap<TopicPartition, i64> {
    dirs.iter()
        .flat_map(|dir| {
            checkpoint::read(&dir.join(FILE)).unwrap_or_else(|error| {
                tracing::warn!(dir = %dir.display(), %error, "ignoring unreadable high watermark checkpoint");
                BTreeMap::new()
            })
        })
        .collect()
}

/// Writes one file per log dir, each with the partitions whose logs are in it.
pub fn write(dirs: &[PathBuf], entries: &[(PathBuf, TopicPartition, i64)]) -> io::Result<()> {
    for dir in dirs {
        let offsets: BTreeMap<TopicPartition, i64> = entries
            .iter()
            .filter(|(log_dir, _, _)| log_dir.parent() == Some(Path::new(dir)))
            .map(|(_, tp, hw)| (tp.clone(), *hw))
            .collect();
        checkpoint::write(&dir.join(FILE), &offsets)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn high_watermarks_round_trip_per_log_dir() {
        let root = tempfile::tempdir().unwrap();
        let dirs = vec![root.path().join("a"), root.path().join("b")];
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap();
        }
        let t0 = TopicPartition::new("t", 0);
        let t1 = TopicPartition::new("my-topic", 1);
        write(
            &dirs,
            &[
                (dirs[0].join("t-0"), t0.clone(), 17),
                (dirs[1].join("my-topic-1"), t1.clone(), 4),
            ],
        )
        .unwrap();
        let text = std::fs::read_to_string(dirs[1].join(FILE)).unwrap();
        assert_eq!(text, "0\n1\nmy-topic 1 4\n");
        let loaded = load(&dirs);
        assert_eq!(loaded.len(), 2);
        assert_eq!((loaded[&t0], loaded[&t1]), (17, 4));
        std::fs::write(dirs[0].join(FILE), "garbage").unwrap();
        assert_eq!(load(&dirs).len(), 1);
    }
}
