//! The controller's [`MetadataLog`] on KRaft: a write is a Raft proposal,
//! answered once a majority of voters holds it and it is in the image.

use std::time::Duration;

use bytes::Bytes;

use super::driver::{ProposeError, RaftHandle};
use crate::controller::{MetadataLog, MetadataLogError};

pub struct RaftMetadataLog {
    raft: RaftHandle,
    /// How long a write may wait for its commit (a quorum that lost a
    /// majority answers nothing; the client gets REQUEST_TIMED_OUT and retries).
    commit_timeout: Duration,
}

impl RaftMetadataLog {
    pub fn new(raft: RaftHandle, commit_timeout: Duration) -> Self {
        RaftMetadataLog {
            raft,
            commit_timeout,
        }
    }
}

impl MetadataLog for RaftMetadataLog {
    fn append(&self, records: Vec<Bytes>, based_on: i64) -> Result<i64, MetadataLogError> {
        match self
            .raft
            .propose_blocking(records, based_on, self.commit_timeout)
        {
            Ok(Some(offset)) => Ok(offset),
            Ok(None) => Err(MetadataLogError::Timeout),
            Err(ProposeError::NotLeader | ProposeError::Stopped) => {
                Err(MetadataLogError::NotController)
            }
        }
    }
}
