//! Snapshot transfer (KIP-630): the leader serves FetchSnapshot in chunks; a follower sent to
//! a snapshot downloads it chunk by chunk, installs it, then resumes fetching after it.

use bytes::Bytes;

use super::log::RaftLog;
use super::messages::{ErrorCode, FetchSnapshotRequest, FetchSnapshotResponse};
use super::node::{RaftError, RaftNode, RoleState, SnapshotDownload};

impl<L: RaftLog> RaftNode<L> {
    pub(super) fn fetch_snapshot_request(
        &self,
        download: &SnapshotDownload,
    ) -> FetchSnapshotRequest {
        FetchSnapshotRequest {
            cluster_id: Some(self.config.cluster_id.clone()),
            replica_id: self.config.node_id,
            max_bytes: self.config.snapshot_chunk_bytes,
            current_leader_epoch: self.election.epoch,
            snapshot_id: download.id,
            position: i64::try_from(download.position).unwrap_or(i64::MAX),
        }
    }

    pub(super) fn handle_fetch_snapshot_request(
        &mut self,
        request: &FetchSnapshotRequest,
        now: u64,
    ) -> Result<FetchSnapshotResponse, RaftError> {
        let mut response = FetchSnapshotResponse {
            error: ErrorCode::NONE,
            partition_error: ErrorCode::NONE,
            snapshot_id: request.snapshot_id,
            current_leader: self.leader_and_epoch(),
            size: -1,
            position: request.position,
            bytes: Bytes::new(),
        };
        if !self.cluster_id_matches(&request.cluster_id) {
            response.error = ErrorCode::INCONSISTENT_CLUSTER_ID;
            return Ok(response);
        }
        if let Some(error) = self.validate_leader_only(request.current_leader_epoch) {
            response.partition_error = error;
            return Ok(response);
        }
        let Some(size) = self.log.snapshot_size(request.snapshot_id) else {
            response.partition_error = ErrorCode::SNAPSHOT_NOT_FOUND;
            return Ok(response);
        };
        // Kafka requires position < size; an empty snapshot is served as one empty chunk.
        let position = u64::try_from(request.position)
            .ok()
            .filter(|&position| position < size || (position == 0 && size == 0));
        let Some(position) = position else {
            response.partition_error = ErrorCode::POSITION_OUT_OF_RANGE;
            return Ok(response);
        };
        let max_bytes = request.max_bytes.min(self.config.snapshot_chunk_bytes) as usize;
        let Some(bytes) = self
            .log
            .read_snapshot(request.snapshot_id, position, max_bytes)?
        else {
            response.partition_error = ErrorCode::SNAPSHOT_NOT_FOUND;
            return Ok(response);
        };
        let leader_end = self.log.end_offset();
        if let (RoleState::Leader(leader), true) = (&mut self.role, request.replica_id >= 0) {
            leader.record_fetch(request.replica_id, None, leader_end, now);
        }
        response.size = i64::try_from(size).unwrap_or(i64::MAX);
        response.bytes = bytes;
        Ok(response)
    }

    pub(super) fn handle_fetch_snapshot_response(
        &mut self,
        from: i32,
        response: FetchSnapshotResponse,
        now: u64,
    ) -> Result<(), RaftError> {
        let error = response.partition_error;
        if !response.error.is_none() {
            self.back_off(from, now);
            return Ok(());
        }
        if self.handle_common_response(error, response.current_leader, now) {
            if !error.is_none() {
                self.back_off(from, now);
            }
            return Ok(());
        }
        let from_leader = self.election.leader_id == Some(from);
        let RoleState::Follower(follower) = &mut self.role else {
            return Ok(());
        };
        let Some(download) = follower.download.as_mut().filter(|_| from_leader) else {
            return Ok(());
        };
        if error == ErrorCode::SNAPSHOT_NOT_FOUND || error == ErrorCode::POSITION_OUT_OF_RANGE {
            // The leader moved on to a newer snapshot: a plain fetch will name it.
            follower.download = None;
            return Ok(());
        }
        if !error.is_none() {
            self.back_off(from, now);
            return Ok(());
        }
        let length = response.bytes.len() as u64;
        let size = u64::try_from(response.size).ok().filter(|&size| {
            download.size.is_none_or(|known| known == size) && download.position + length <= size
        });
        let continues = response.snapshot_id == download.id
            && u64::try_from(response.position) == Ok(download.position);
        let Some(size) = size.filter(|_| continues) else {
            tracing::warn!(
                ?download,
                "inconsistent snapshot chunk; restarting the download"
            );
            follower.download = None;
            return Ok(());
        };
        let (id, position) = (download.id, download.position);
        download.position += length;
        download.size = Some(size);
        let complete = download.position == size;
        if complete {
            follower.download = None;
        } else if length == 0 {
            self.back_off(from, now);
        }
        self.log
            .write_snapshot_chunk(id, size, position, response.bytes)?;
        if complete {
            self.log.install_snapshot(id)?;
            // A snapshot only ever covers committed entries.
            self.advance_high_watermark(id.offset);
            tracing::info!(?id, "installed a snapshot from the leader");
        }
        self.reset_fetch_timeout(now);
        Ok(())
    }
}
