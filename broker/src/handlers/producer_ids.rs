//! InitProducerId (v0-5) for idempotent producers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::controller::Controller;

pub async fn init_producer_id(
    controller: &Controller,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let response = InitProducerIdResponse::default();
    if let Some(transactional_id) = &request.transactional_id {
        // Transactions are not supported yet. UNSUPPORTED_VERSION is fatal and
        // not retried: the Java producer fails initTransactions() with "The
        // version of API is not supported", librdkafka with an unsupported-feature
        // error. COORDINATOR_NOT_AVAILABLE would make both retry until timeout,
        // and TRANSACTIONAL_ID_AUTHORIZATION_FAILED would blame ACLs.
        tracing::info!(transactional_id = %transactional_id.0.as_str(), version, "transactional producer refused: transactions are not supported");
        return response.with_error_code(ResponseError::UnsupportedVersion.code());
    }
    // An idempotent producer (re)initializing, including the v3+ epoch bump
    // after an unknown-producer error, simply gets a fresh id with epoch 0.
    match controller.allocate_producer_id() {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "cannot allocate a producer id");
            // Retriable: the producer tries again instead of failing for good.
            response.with_error_code(ResponseError::CoordinatorLoadInProgress.code())
        }
    }
}

#[cfg(test)]
mod tests {

    use kafka_protocol::messages::TransactionalId;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;
    use crate::config::BrokerConfig;
    use crate::controller::MemoryMetadataLog;

    #[tokio::test]
    async fn idempotent_producers_get_distinct_ids_at_every_version() {
        let c = MemoryMetadataLog::new().open_controller(&BrokerConfig::default());
        let mut seen = Vec::new();
        for version in 0..=5 {
            let request = InitProducerIdRequest::default().with_transactional_id(None);
            let response = init_producer_id(&c, version, request).await;
            assert_eq!(response.error_code, 0);
            assert_eq!(response.producer_epoch, 0);
            assert!(!seen.contains(&response.producer_id.0));
            seen.push(response.producer_id.0);
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).unwrap();
        }
    }

    #[tokio::test]
    async fn transactional_producers_are_refused() {
        let c = MemoryMetadataLog::new().open_controller(&BrokerConfig::default());
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))));
        let response = init_producer_id(&c, 4, request).await;
        assert_eq!(
            response.error_code,
            ResponseError::UnsupportedVersion.code()
        );
        assert_eq!(response.producer_id.0, -1);
    }
}
