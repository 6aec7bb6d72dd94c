//! Controller errors: per-item Kafka errors and failures of the controller itself.

use kafka_protocol::error::ResponseError;

use super::log::MetadataLogError;
use crate::metadata::ApplyError;

/// A request item the controller refused, as the Kafka error code and message
/// the client will see.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error:?}: {message}")]
pub struct ApiError {
    pub error: ResponseError,
    pub message: String,
}

impl ApiError {
    pub fn new(error: ResponseError, message: impl Into<String>) -> Self {
        ApiError {
            error,
            message: message.into(),
        }
    }

    pub fn code(&self) -> i16 {
        self.error.code()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error(transparent)]
    Log(#[from] MetadataLogError),
    #[error("metadata record at offset {offset} does not fit the metadata: {source}")]
    Apply { offset: i64, source: ApplyError },
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ControllerError {
    /// What a client is told when the whole operation failed.
    pub fn to_api_error(&self) -> ApiError {
        match self {
            ControllerError::Api(e) => e.clone(),
            // Clients rediscover the controller and retry, as with Kafka.
            ControllerError::Log(MetadataLogError::NotController) => {
                ApiError::new(ResponseError::NotController, self.to_string())
            }
            ControllerError::Log(MetadataLogError::Timeout) => {
                ApiError::new(ResponseError::RequestTimedOut, self.to_string())
            }
            other => ApiError::new(ResponseError::UnknownServerError, other.to_string()),
        }
    }
}
