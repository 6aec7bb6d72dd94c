//! Errors of the group coordinator, each mapped to the Kafka error code a client sees.

use kafka_protocol::error::ResponseError;

/// A failure of the `__consumer_offsets` storage behind [`crate::group::OffsetsStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OffsetsStoreError {
    #[error("partition {0} of __consumer_offsets is not available")]
    Unavailable(i32),
    #[error("__consumer_offsets storage failed: {0}")]
    Storage(String),
}

/// Why the coordinator refused a request; `code()` is what goes on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("the group id is not valid")]
    InvalidGroupId,
    #[error("the coordinator is not available")]
    CoordinatorNotAvailable,
    #[error("the coordinator is loading its groups")]
    CoordinatorLoadInProgress,
    #[error("this broker does not lead the group's __consumer_offsets partition")]
    NotCoordinator,
    #[error("unknown member id")]
    UnknownMemberId,
    #[error("illegal generation")]
    IllegalGeneration,
    #[error("the group is rebalancing")]
    RebalanceInProgress,
    #[error("the member's protocols do not match the group's")]
    InconsistentGroupProtocol,
    #[error("session timeout outside group.min/max.session.timeout.ms")]
    InvalidSessionTimeout,
    #[error("a member id is required; rejoin with `{0}`")]
    MemberIdRequired(String),
    #[error("the group has reached group.max.size")]
    GroupMaxSizeReached,
    #[error("another member uses this group.instance.id")]
    FencedInstanceId,
    #[error("the group is not empty")]
    NonEmptyGroup,
    #[error("the group does not exist")]
    GroupIdNotFound,
    #[error("the group is subscribed to the topic")]
    GroupSubscribedToTopic,
    #[error("the offset metadata is too large")]
    OffsetMetadataTooLarge,
    #[error("the topic or partition does not exist")]
    UnknownTopicOrPartition,
    #[error(transparent)]
    Store(#[from] OffsetsStoreError),
}

impl GroupError {
    /// The Kafka error code for this error.
    pub fn code(&self) -> i16 {
        let error = match self {
            GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
            GroupError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            GroupError::NotCoordinator => ResponseError::NotCoordinator,
            GroupError::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
            GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
            GroupError::IllegalGeneration => ResponseError::IllegalGeneration,
            GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
            GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
            GroupError::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
            GroupError::MemberIdRequired(_) => ResponseError::MemberIdRequired,
            GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
            GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
            GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
            GroupError::GroupIdNotFound => ResponseError::GroupIdNotFound,
            GroupError::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
            GroupError::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
            // Kafka answers a failed __consumer_offsets write with a retriable
            // coordinator error so that the client retries or rediscovers.
            GroupError::Store(_) => ResponseError::CoordinatorNotAvailable,
        };
        error.code()
    }
}
