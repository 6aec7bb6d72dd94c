//! `partition.metadata`: the id of the topic a partition directory belongs to, as Kafka
//! writes it (KIP-516). Directory names carry only the topic's name, and a topic deleted
//! and created again under the same name must never be served from the old log: the id
//! tells the two apart, also after a restart.

use std::fs;
use std::io::Write;
use std::path::Path;

use uuid::Uuid;

use super::StorageError;
use crate::meta_properties::{base64_url, from_base64_url};

pub const FILE_NAME: &str = "partition.metadata";

/// The topic id recorded in `dir`, or None when the directory has none (written before
/// topic ids were recorded).
pub fn read(dir: &Path) -> Result<Option<Uuid>, StorageError> {
    let text = match fs::read_to_string(dir.join(FILE_NAME)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let corrupt = |what: &str| {
        StorageError::Io(std::io::Error::other(format!(
            "{}: {what}",
            dir.join(FILE_NAME).display()
        )))
    };
    let mut version = None;
    let mut topic_id = None;
    for line in text.lines() {
        match line.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("version", v)) => version = Some(v.to_string()),
            Some(("topic_id", v)) => topic_id = Some(v.to_string()),
            _ => {}
        }
    }
    if version.as_deref() != Some("0") {
        return Err(corrupt("unknown version, expected `version: 0`"));
    }
    let id = topic_id.ok_or_else(|| corrupt("no topic_id"))?;
    from_base64_url(&id)
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .map(Some)
        .ok_or_else(|| corrupt("topic_id is not a base64 topic id"))
}

/// Records `topic_id` in `dir`, durably: written aside, synced, then renamed over.
pub fn write(dir: &Path, topic_id: Uuid) -> Result<(), StorageError> {
    let tmp = dir.join(format!("{FILE_NAME}.tmp"));
    let mut file = fs::File::create(&tmp)?;
    write!(
        file,
        "version: 0\ntopic_id: {}\n",
        base64_url(topic_id.as_bytes())
    )?;
    file.sync_all()?;
    fs::rename(&tmp, dir.join(FILE_NAME))?;
    fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_topic_id_reads_back_and_a_missing_file_is_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), None);
        let id = Uuid::new_v4();
        write(dir.path(), id).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(id));
        let text = fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(text.starts_with("version: 0\ntopic_id: "), "{text}");
        assert_eq!(text.trim_end().len(), "version: 0\ntopic_id: ".len() + 22);
    }

    #[test]
    fn a_damaged_file_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "version: 1\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n",
            "version: 0\n",
            "version: 0\ntopic_id: not*base64\n",
            "version: 0\ntopic_id: AAAA\n",
        ] {
            fs::write(dir.path().join(FILE_NAME), bad).unwrap();
            let error = read(dir.path()).unwrap_err().to_string();
            assert!(error.contains(FILE_NAME), "{bad:?}: {error}");
        }
    }
}
