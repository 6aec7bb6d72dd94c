//! The storage module's error type and its mapping to Kafka error codes.

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("corrupt message: {0}")]
    CorruptMessage(String),
    #[error("message too large: {0}")]
    MessageTooLarge(String),
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    #[error("out of order sequence: {0}")]
    OutOfOrderSequence(String),
    #[error("invalid producer epoch: {0}")]
    InvalidProducerEpoch(String),
    #[error("offset {requested} is outside the log range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        requested: i64,
        log_start: i64,
        log_end: i64,
    },
    /// A follower append whose batches do not continue the log: the fetcher
    /// has to truncate or reset its fetch offset.
    #[error("replicated batch at offset {offset} is below the next expected offset {expected}")]
    UnexpectedAppendOffset { offset: i64, expected: i64 },
    #[error("log is being deleted or was closed")]
    LogClosed,
    #[error("the log held for this partition is of an earlier topic of the same name and is being deleted")]
    StaleTopicLog,
    #[error("storage I/O error: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    /// The Kafka protocol error code a handler answers with.
    pub fn kafka_error_code(&self) -> i16 {
        match self {
            StorageError::CorruptMessage(_) => 2,
            StorageError::MessageTooLarge(_) => 10,
            StorageError::InvalidRecord(_) => 87,
            StorageError::OutOfOrderSequence(_) => 45,
            StorageError::InvalidProducerEpoch(_) => 47,
            StorageError::OffsetOutOfRange { .. } | StorageError::UnexpectedAppendOffset { .. } => {
                1
            }
            // NOT_LEADER_OR_FOLLOWER: the client refreshes metadata and retries.
            StorageError::LogClosed | StorageError::StaleTopicLog => 6,
            StorageError::Io(_) => 56,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_match_kafka() {
        let range = StorageError::OffsetOutOfRange {
            requested: 5,
            log_start: 0,
            log_end: 3,
        };
        assert_eq!(range.kafka_error_code(), 1);
        let overlap = StorageError::UnexpectedAppendOffset {
            offset: 3,
            expected: 5,
        };
        assert_eq!(overlap.kafka_error_code(), 1);
        assert_eq!(
            StorageError::CorruptMessage(String::new()).kafka_error_code(),
            2
        );
        assert_eq!(
            StorageError::MessageTooLarge(String::new()).kafka_error_code(),
            10
        );
        assert_eq!(
            StorageError::OutOfOrderSequence(String::new()).kafka_error_code(),
            45
        );
        assert_eq!(
            StorageError::InvalidProducerEpoch(String::new()).kafka_error_code(),
            47
        );
        assert_eq!(
            StorageError::InvalidRecord(String::new()).kafka_error_code(),
            87
        );
        assert_eq!(
            StorageError::Io(std::io::Error::other("x")).kafka_error_code(),
            56
        );
    }
}
