//! DeleteTopics: by name or by id.

use std::collections::HashSet;

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::error::{ApiError, ControllerError};
use super::names::InternalTopic;
use super::quorum::Controller;
use crate::metadata::records::RemoveTopicRecord;
use crate::metadata::{MetadataImage, MetadataRecord};

/// How a DeleteTopics item names its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicRef {
    Name(String),
    Id(Uuid),
}

/// A deleted topic, for responses that echo both name and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletedTopic {
    pub name: String,
    pub id: Uuid,
}

impl Controller {
    /// Deletes the valid topics in one batch; results in request order.
    pub fn delete_topics(
        &self,
        topics: Vec<TopicRef>,
    ) -> Result<Vec<Result<DeletedTopic, ApiError>>, ControllerError> {
        if !self.config().delete_topic_enable {
            let disabled = ApiError::new(
                ResponseError::TopicDeletionDisabled,
                "Topic deletion is disabled: delete.topic.enable=false.",
            );
            return Ok(topics.iter().map(|_| Err(disabled.clone())).collect());
        }
        let _writer = self.write();
        let image = self.image();
        let mut seen = HashSet::new();
        let mut records = Vec::new();
        let mut results = Vec::with_capacity(topics.len());
        for topic in &topics {
            let result = resolve(&image, topic).and_then(|deleted| {
                if !seen.insert(deleted.id) {
                    return Err(ApiError::new(
                        ResponseError::InvalidRequest,
                        format!("Topic '{}' is listed more than once.", deleted.name),
                    ));
                }
                records.push(MetadataRecord::RemoveTopic(RemoveTopicRecord {
                    topic_id: deleted.id,
                }));
                Ok(deleted)
            });
            results.push(result);
        }
        if !records.is_empty() {
            self.commit(&image, records)?;
            for deleted in results.iter().flatten() {
                tracing::info!(topic = %deleted.name, id = %deleted.id, "topic deleted");
            }
        }
        Ok(results)
    }
}

fn resolve(image: &MetadataImage, topic: &TopicRef) -> Result<DeletedTopic, ApiError> {
    let found = match topic {
        TopicRef::Name(name) => image.topic(name).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("Topic '{name}' does not exist."),
            )
        })?,
        TopicRef::Id(id) => image.topic_by_id(id).ok_or_else(|| {
            ApiError::new(
                ResponseError::UnknownTopicId,
                format!("Topic id {id} does not exist."),
            )
        })?,
    };
    if InternalTopic::is_internal(&found.name) {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            format!(
                "Topic '{}' is internal to the broker and cannot be deleted.",
                found.name
            ),
        ));
    }
    Ok(DeletedTopic {
        name: found.name.clone(),
        id: found.id,
    })
}
