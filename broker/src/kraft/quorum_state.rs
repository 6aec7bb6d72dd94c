//! The `quorum-state` file in the metadata partition directory: the Raft
//! election state (epoch, vote, known leader) that must survive a restart so
//! a node never votes twice in one epoch. Kafka's JSON layout (data_version 0),
//! so Kafka's tools read it.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::raft::ElectionState;
use crate::storage::checkpoint::write_atomically;

pub const FILE_NAME: &str = "quorum-state";

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QuorumStateData {
    cluster_id: String,
    leader_id: i32,
    leader_epoch: i32,
    voted_id: i32,
    applied_offset: i64,
    current_voters: Vec<Voter>,
    #[serde(rename = "data_version")]
    data_version: i16,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Voter {
    voter_id: i32,
}

pub struct QuorumStateFile {
    path: PathBuf,
    cluster_id: String,
    voters: Vec<i32>,
}

impl QuorumStateFile {
    pub fn new(partition_dir: &Path, cluster_id: &str, voters: &[i32]) -> Self {
        QuorumStateFile {
            path: partition_dir.join(FILE_NAME),
            cluster_id: cluster_id.to_string(),
            voters: voters.to_vec(),
        }
    }

    /// The stored state; a missing file is a node that never took part in an election.
    pub fn read(&self) -> io::Result<ElectionState> {
        let text = match std::fs::read(&self.path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(ElectionState::default()),
            Err(e) => return Err(e),
        };
        let data: QuorumStateData = serde_json::from_slice(&text).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} is not a valid quorum state: {e}", self.path.display()),
            )
        })?;
        if !data.cluster_id.is_empty() && data.cluster_id != self.cluster_id {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} belongs to cluster {}, not {}",
                    self.path.display(),
                    data.cluster_id,
                    self.cluster_id
                ),
            ));
        }
        let known = |id: i32| (id >= 0).then_some(id);
        Ok(ElectionState {
            epoch: data.leader_epoch,
            voted_for: known(data.voted_id),
            leader_id: known(data.leader_id),
        })
    }

    /// Durably replaces the stored state (fsync before returning).
    pub fn write(&self, state: &ElectionState) -> io::Result<()> {
        let data = QuorumStateData {
            cluster_id: self.cluster_id.clone(),
            leader_id: state.leader_id.unwrap_or(-1),
            leader_epoch: state.epoch,
            voted_id: state.voted_for.unwrap_or(-1),
            applied_offset: 0,
            current_voters: self
                .voters
                .iter()
                .map(|&voter_id| Voter { voter_id })
                .collect(),
            data_version: 0,
        };
        let json = serde_json::to_vec(&data).map_err(io::Error::other)?;
        write_atomically(&self.path, &json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_kafka_layout() {
        let dir = tempfile::tempdir().unwrap();
        let file = QuorumStateFile::new(dir.path(), "abc", &[1, 2, 3]);
        assert_eq!(file.read().unwrap(), ElectionState::default());
        let state = ElectionState {
            epoch: 7,
            voted_for: Some(2),
            leader_id: None,
        };
        file.write(&state).unwrap();
        assert_eq!(file.read().unwrap(), state);
        let text = std::fs::read_to_string(dir.path().join(FILE_NAME)).unwrap();
        assert!(text.contains(r#""leaderId":-1"#), "{text}");
        assert!(text.contains(r#""currentVoters":[{"voterId":1},{"voterId":2},{"voterId":3}]"#));
        assert!(text.contains(r#""data_version":0"#));
    }

    #[test]
    fn garbage_and_foreign_clusters_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE_NAME), b"{not json").unwrap();
        let err = QuorumStateFile::new(dir.path(), "abc", &[1])
            .read()
            .unwrap_err();
        assert!(
            err.to_string().contains("not a valid quorum state"),
            "{err}"
        );

        QuorumStateFile::new(dir.path(), "other", &[1])
            .write(&ElectionState::default())
            .unwrap();
        let err = QuorumStateFile::new(dir.path(), "abc", &[1])
            .read()
            .unwrap_err();
        assert!(
            err.to_string().contains("belongs to cluster other"),
            "{err}"
        );
    }
}
