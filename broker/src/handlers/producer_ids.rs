//! InitProducerId (v0-5) for idempotent producers, served from this broker's
//! block of producer ids; AllocateProducerIds (v0) hands out those blocks on
//! the active controller.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    AllocateProducerIdsRequest, AllocateProducerIdsResponse, ApiKey, BrokerId,
    InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};

use super::forward::via_controller;
use crate::controller::Controller;
use crate::server::BrokerState;

pub const CONTROLLER_VERSIONS: &[(ApiKey, i16, i16)] = &[(ApiKey::AllocateProducerIds, 0, 0)];

pub async fn init_producer_id(
    state: &BrokerState,
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
    match next_producer_id(state).await {
        Ok(id) => response
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(code) => {
            tracing::warn!(code, "cannot allocate a producer id");
            // Retriable: the producer tries again instead of failing for good.
            response.with_error_code(ResponseError::CoordinatorLoadInProgress.code())
        }
    }
}

/// The next id of this broker's block, asking the controller for a new block
/// when it is used up.
async fn next_producer_id(state: &BrokerState) -> Result<i64, i16> {
    let mut block = state.producer_ids.lock().await;
    if let Some(id) = block.next() {
        return Ok(id);
    }
    let node = state.config.node_id;
    let epoch = state
        .image()
        .brokers
        .get(&node)
        .map(|b| b.epoch)
        .ok_or(ResponseError::BrokerIdNotRegistered.code())?;
    let request = AllocateProducerIdsRequest::default()
        .with_broker_id(BrokerId(node))
        .with_broker_epoch(epoch);
    let response = via_controller(state, request, |controller, request| {
        allocate_producer_ids(controller, 0, request)
    })
    .await;
    if response.error_code != 0 {
        return Err(response.error_code);
    }
    let start = response.producer_id_start.0;
    *block = start..start + i64::from(response.producer_id_len);
    block.next().ok_or(ResponseError::UnknownServerError.code())
}

pub async fn allocate_producer_ids(
    controller: &Controller,
    _version: i16,
    request: AllocateProducerIdsRequest,
) -> AllocateProducerIdsResponse {
    match controller.allocate_producer_ids(request.broker_id.0, request.broker_epoch) {
        Ok(block) => AllocateProducerIdsResponse::default()
            .with_producer_id_start(ProducerId(block.start))
            .with_producer_id_len((block.end - block.start) as i32),
        Err(e) => {
            let error = e.to_api_error();
            tracing::info!(broker = request.broker_id.0, %error, "producer id block refused");
            AllocateProducerIdsResponse::default()
                .with_error_code(error.code())
                .with_producer_id_start(ProducerId(-1))
        }
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::TransactionalId;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;
    use crate::controller::PRODUCER_ID_BLOCK_SIZE;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn idempotent_producers_get_distinct_ids_across_blocks_at_every_version() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::server::testing::broker_state(dir.path());
        let mut seen = std::collections::HashSet::new();
        for i in 0..PRODUCER_ID_BLOCK_SIZE + 3 {
            let version = (i % 6) as i16;
            let request = InitProducerIdRequest::default().with_transactional_id(None);
            let response = init_producer_id(&state, version, request).await;
            assert_eq!(response.error_code, 0);
            assert_eq!(response.producer_epoch, 0);
            assert!(seen.insert(response.producer_id.0), "id given twice");
            let mut buf = bytes::BytesMut::new();
            response.encode(&mut buf, version).unwrap();
        }
        assert_eq!(state.image().next_producer_id, 2 * PRODUCER_ID_BLOCK_SIZE);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn transactional_producers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::server::testing::broker_state(dir.path());
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))));
        let response = init_producer_id(&state, 4, request).await;
        assert_eq!(
            response.error_code,
            ResponseError::UnsupportedVersion.code()
        );
        assert_eq!(response.producer_id.0, -1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn blocks_go_only_to_current_registrations() {
        let dir = tempfile::tempdir().unwrap();
        let state = crate::server::testing::broker_state(dir.path());
        let epoch = state.image().brokers[&1].epoch;
        let ask = |broker, epoch| {
            AllocateProducerIdsRequest::default()
                .with_broker_id(BrokerId(broker))
                .with_broker_epoch(epoch)
        };
        let ok = allocate_producer_ids(&state.controller, 0, ask(1, epoch)).await;
        assert_eq!(
            (ok.error_code, ok.producer_id_len),
            (0, PRODUCER_ID_BLOCK_SIZE as i32)
        );
        let stale = allocate_producer_ids(&state.controller, 0, ask(1, epoch - 1)).await;
        assert_eq!(stale.error_code, ResponseError::StaleBrokerEpoch.code());
        let unknown = allocate_producer_ids(&state.controller, 0, ask(9, 0)).await;
        assert_eq!(
            unknown.error_code,
            ResponseError::BrokerIdNotRegistered.code()
        );
    }
}
