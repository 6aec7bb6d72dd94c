//! UnregisterBroker (KIP-631), run on the active controller (brokers forward
//! the request there).

use kafka_protocol::messages::{UnregisterBrokerRequest, UnregisterBrokerResponse};
use kafka_protocol::protocol::StrBytes;

use crate::controller::Controller;

pub async fn unregister_broker(
    controller: &Controller,
    request: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    match controller.unregister_broker(request.broker_id.0) {
        Ok(()) => UnregisterBrokerResponse::default(),
        Err(error) => {
            let e = error.to_api_error();
            failed(e.code(), &e.message)
        }
    }
}

pub fn failed(code: i16, text: &str) -> UnregisterBrokerResponse {
    UnregisterBrokerResponse::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(text.to_string())))
}
