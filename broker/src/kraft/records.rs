//! Raft batches as Kafka record batches, the bytes that go into the
//! `__cluster_metadata` log and over the wire: a data batch holds one
//! metadata record per Kafka record (value only); a leader change is a
//! control batch with one LeaderChangeMessage record, as Kafka writes it.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::leader_change_message::Voter;
use kafka_protocol::messages::{BrokerId, LeaderChangeMessage};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::records::{Compression, RecordBatchDecoder};

use crate::raft::{Batch, BatchKind};
use crate::storage::batch::{encode, BatchFrame};
use crate::storage::control_records::{self, LEADER_CHANGE};

/// Version of the LeaderChangeMessage we write (no directory ids: KIP-853 is not used).
const LEADER_CHANGE_VERSION: i16 = 0;

#[derive(Debug, thiserror::Error)]
#[error("metadata log batch cannot be read: {0}")]
pub struct RecordsError(String);

fn error(e: impl std::fmt::Display) -> RecordsError {
    RecordsError(e.to_string())
}

/// Encodes one batch with its offsets and leader epoch.
pub fn encode_batch(batch: &Batch, timestamp: i64) -> Result<Bytes, RecordsError> {
    let frame = |control| BatchFrame {
        base_offset: batch.base_offset,
        leader_epoch: batch.epoch,
        control,
        timestamp,
        compression: Compression::None,
    };
    match &batch.kind {
        BatchKind::Data(records) => {
            let pairs: Vec<_> = records.iter().map(|r| (None, Some(r.clone()))).collect();
            encode(&pairs, frame(false)).map_err(error)
        }
        BatchKind::LeaderChange { leader_id, voters } => {
            let message = LeaderChangeMessage::default()
                .with_version(LEADER_CHANGE_VERSION)
                .with_leader_id(BrokerId(*leader_id))
                .with_voters(
                    voters
                        .iter()
                        .map(|&id| Voter::default().with_voter_id(id))
                        .collect(),
                );
            let mut value = BytesMut::new();
            message
                .encode(&mut value, LEADER_CHANGE_VERSION)
                .map_err(error)?;
            let key = control_records::key(LEADER_CHANGE);
            encode(&[(Some(key), Some(value.freeze()))], frame(true)).map_err(error)
        }
    }
}

/// Encodes consecutive batches into one buffer, as a fetch response carries them.
pub fn encode_batches(batches: &[Batch], timestamp: i64) -> Result<Bytes, RecordsError> {
    let mut out = BytesMut::new();
    for batch in batches {
        out.extend_from_slice(&encode_batch(batch, timestamp)?);
    }
    Ok(out.freeze())
}

/// Decodes every batch in `bytes`; any other control record than a leader
/// change, or a record without a value, is an error.
pub fn decode_batches(bytes: Bytes) -> Result<Vec<Batch>, RecordsError> {
    let mut buf = bytes;
    let sets = RecordBatchDecoder::decode_all(&mut buf).map_err(error)?;
    let mut batches = Vec::with_capacity(sets.len());
    for set in sets {
        let Some(first) = set.records.first() else {
            continue;
        };
        let (base_offset, epoch) = (first.offset, first.partition_leader_epoch);
        let kind = if first.control {
            let record_type = control_records::record_type(first.key.as_deref()).map_err(error)?;
            if record_type != LEADER_CHANGE {
                return Err(RecordsError(format!(
                    "unexpected control record type {record_type} at offset {base_offset}"
                )));
            }
            let mut value = first
                .value
                .clone()
                .ok_or_else(|| RecordsError("leader change without a value".into()))?;
            let version = i16::from_be_bytes(
                value
                    .get(..2)
                    .and_then(|v| v.try_into().ok())
                    .ok_or_else(|| RecordsError("leader change too short".into()))?,
            );
            let message = LeaderChangeMessage::decode(&mut value, version).map_err(error)?;
            BatchKind::LeaderChange {
                leader_id: message.leader_id.0,
                voters: message.voters.iter().map(|v| v.voter_id).collect(),
            }
        } else {
            let records = set
                .records
                .into_iter()
                .map(|r| {
                    r.value.ok_or_else(|| {
                        RecordsError(format!(
                            "metadata record at offset {} has no value",
                            r.offset
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            BatchKind::Data(records)
        };
        batches.push(Batch {
            base_offset,
            epoch,
            kind,
        });
    }
    Ok(batches)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_round_trip_with_offsets_and_epochs() {
        let batches = vec![
            Batch {
                base_offset: 7,
                epoch: 3,
                kind: BatchKind::LeaderChange {
                    leader_id: 2,
                    voters: vec![1, 2, 3],
                },
            },
            Batch {
                base_offset: 8,
                epoch: 3,
                kind: BatchKind::Data(vec![Bytes::from_static(b"a"), Bytes::from_static(b"bc")]),
            },
        ];
        let bytes = encode_batches(&batches, 1_000).unwrap();
        assert_eq!(decode_batches(bytes.clone()).unwrap(), batches);
        // Kafka's layout: the leader change is a control batch (attributes bit 5).
        let attributes = i16::from_be_bytes([bytes[21], bytes[22]]);
        assert_ne!(attributes & 0x20, 0);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let bytes = encode_batches(
            &[Batch {
                base_offset: 0,
                epoch: 1,
                kind: BatchKind::Data(vec![Bytes::from_static(b"x")]),
            }],
            0,
        )
        .unwrap();
        for cut in [1, 20, bytes.len() - 1] {
            assert!(decode_batches(bytes.slice(..cut)).is_err(), "cut at {cut}");
        }
    }
}
