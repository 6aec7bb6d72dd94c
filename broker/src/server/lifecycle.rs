//! The broker's side of KIP-631: register with the active controller, then
//! heartbeat every `broker.heartbeat.interval.ms` with the metadata offset
//! applied so far, and on shutdown ask for a controlled shutdown so that
//! leaderships move away before the process stops.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::broker_registration_request::{Feature, Listener};
use kafka_protocol::messages::{BrokerHeartbeatRequest, BrokerId, BrokerRegistrationRequest};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::client::ControllerChannel;
use crate::config::BrokerConfig;
use crate::controller::METADATA_VERSION;
use crate::metadata::image::METADATA_VERSION_FEATURE;

/// Where this broker stands with the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LifecycleState {
    Registering,
    Fenced {
        epoch: i64,
        caught_up: bool,
    },
    Unfenced {
        epoch: i64,
        caught_up: bool,
    },
    ControlledShutdown {
        epoch: i64,
    },
    /// The controller let it go, it stopped before registering, or no controller
    /// answered while it was shutting down.
    ShutDown,
}

impl LifecycleState {
    /// Ready to serve: unfenced and caught up with the metadata log.
    pub fn is_ready(&self) -> bool {
        matches!(
            self,
            LifecycleState::Unfenced {
                caught_up: true,
                ..
            }
        )
    }
}

/// What the broker registers with.
#[derive(Debug, Clone)]
pub struct LifecycleConfig {
    pub node_id: i32,
    pub cluster_id: String,
    /// New for every process start, so the controller tells a restart from
    /// two brokers sharing an id.
    pub incarnation_id: Uuid,
    /// `(name, advertised host, port)`, the client listener first.
    pub listeners: Vec<(String, String, u16)>,
    pub rack: Option<String>,
    pub heartbeat_interval: Duration,
}

impl LifecycleConfig {
    pub fn from_broker(config: &BrokerConfig, cluster_id: String) -> Self {
        let client = config.client_listener().map(|l| l.name.clone());
        let mut listeners: Vec<(String, String, u16)> = config
            .listeners
            .iter()
            .filter(|l| !config.controller_listener_names.contains(&l.name))
            .map(|l| {
                let (host, port) = config.advertised_address(l);
                (l.name.clone(), host, port)
            })
            .collect();
        listeners.sort_by_key(|(name, _, _)| Some(name) != client.as_ref());
        LifecycleConfig {
            node_id: config.node_id,
            cluster_id,
            incarnation_id: Uuid::new_v4(),
            listeners,
            rack: config.rack.clone(),
            heartbeat_interval: Duration::from_millis(config.broker_heartbeat_interval_ms),
        }
    }

    fn registration(&self) -> BrokerRegistrationRequest {
        BrokerRegistrationRequest::default()
            .with_broker_id(BrokerId(self.node_id))
            .with_cluster_id(StrBytes::from_string(self.cluster_id.clone()))
            .with_incarnation_id(self.incarnation_id)
            .with_listeners(
                self.listeners
                    .iter()
                    .map(|(name, host, port)| {
                        Listener::default()
                            .with_name(StrBytes::from_string(name.clone()))
                            .with_host(StrBytes::from_string(host.clone()))
                            .with_port(*port)
                            .with_security_protocol(0)
                    })
                    .collect(),
            )
            .with_features(vec![Feature::default()
                .with_name(StrBytes::from_static_str(METADATA_VERSION_FEATURE))
                .with_min_supported_version(METADATA_VERSION)
                .with_max_supported_version(METADATA_VERSION)])
            .with_rack(self.rack.clone().map(StrBytes::from_string))
    }
}

/// How often a broker heartbeats while it waits to be unfenced or let go.
const TRANSITION_HEARTBEAT: Duration = Duration::from_millis(100);

/// Heartbeats in a row that no controller answers before a shutting-down broker stops
/// without the controller's consent. With no active controller nothing can move its
/// leaderships, so waiting longer only delays the stop: it happens to the last nodes of a
/// cluster stopped all at once, whose quorum is gone. Two attempts (each up to a heartbeat
/// interval) outlast a controller failover.
const SHUTDOWN_UNANSWERED_HEARTBEATS: u32 = 2;

/// The applied metadata offset, reported in every heartbeat.
pub type MetadataOffset = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The running registration-and-heartbeat task. Dropping it stops the task
/// without telling the controller (as a crash would).
pub struct BrokerLifecycle {
    state: watch::Receiver<LifecycleState>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl BrokerLifecycle {
    pub fn start(
        config: LifecycleConfig,
        channel: Arc<ControllerChannel>,
        metadata_offset: MetadataOffset,
    ) -> Self {
        let (state_tx, state) = watch::channel(LifecycleState::Registering);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(run(config, channel, metadata_offset, state_tx, shutdown_rx));
        BrokerLifecycle {
            state,
            shutdown,
            task,
        }
    }

    pub fn state(&self) -> watch::Receiver<LifecycleState> {
        self.state.clone()
    }

    /// Asks the controller for a controlled shutdown and waits, at most
    /// `timeout`, until it lets the broker go. Returns the last state.
    pub async fn shutdown(self, timeout: Duration) -> LifecycleState {
        self.shutdown.send_replace(true);
        let mut state = self.state.clone();
        let done =
            tokio::time::timeout(timeout, state.wait_for(|s| *s == LifecycleState::ShutDown))
                .await
                .is_ok();
        if !done {
            tracing::warn!(
                ?timeout,
                "the controller did not confirm the controlled shutdown in time"
            );
        }
        let last = *state.borrow();
        last
    }
}

impl Drop for BrokerLifecycle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn run(
    config: LifecycleConfig,
    channel: Arc<ControllerChannel>,
    metadata_offset: MetadataOffset,
    state: watch::Sender<LifecycleState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let interval = config.heartbeat_interval;
    'register: loop {
        state.send_replace(LifecycleState::Registering);
        let Some(epoch) = register(&config, &channel, &mut shutdown).await else {
            state.send_replace(LifecycleState::ShutDown);
            return;
        };
        state.send_replace(LifecycleState::Fenced {
            epoch,
            caught_up: false,
        });
        let mut unanswered_while_stopping = 0;
        loop {
            let want_shut_down = *shutdown.borrow_and_update();
            let heartbeat = BrokerHeartbeatRequest::default()
                .with_broker_id(BrokerId(config.node_id))
                .with_broker_epoch(epoch)
                .with_current_metadata_offset(metadata_offset())
                .with_want_fence(false)
                .with_want_shut_down(want_shut_down);
            match channel.send(&heartbeat, interval).await {
                Ok(reply) if reply.error_code == 0 => {
                    unanswered_while_stopping = 0;
                    let next = if reply.should_shut_down {
                        LifecycleState::ShutDown
                    } else if want_shut_down && !reply.is_fenced {
                        LifecycleState::ControlledShutdown { epoch }
                    } else if reply.is_fenced {
                        LifecycleState::Fenced {
                            epoch,
                            caught_up: reply.is_caught_up,
                        }
                    } else {
                        LifecycleState::Unfenced {
                            epoch,
                            caught_up: reply.is_caught_up,
                        }
                    };
                    if next != *state.borrow() {
                        tracing::info!(state = ?next, "broker lifecycle");
                    }
                    state.send_replace(next);
                    if next == LifecycleState::ShutDown {
                        return;
                    }
                }
                Ok(reply) if reply.error_code == ResponseError::StaleBrokerEpoch.code() => {
                    tracing::warn!(
                        epoch,
                        "the controller no longer knows this registration; registering again"
                    );
                    continue 'register;
                }
                Ok(reply) => tracing::warn!(error = reply.error_code, "heartbeat refused"),
                Err(error) => {
                    tracing::warn!(%error, "heartbeat failed");
                    if want_shut_down {
                        unanswered_while_stopping += 1;
                        if unanswered_while_stopping >= SHUTDOWN_UNANSWERED_HEARTBEATS {
                            tracing::warn!(
                                "no active controller answers; stopping without a controlled shutdown"
                            );
                            state.send_replace(LifecycleState::ShutDown);
                            return;
                        }
                    }
                }
            }
            // Heartbeat again after the interval, or at once when asked to shut
            // down; while unfencing or shutting down, soon, so neither waits long.
            let settled = !want_shut_down
                && matches!(
                    *state.borrow(),
                    LifecycleState::Unfenced {
                        caught_up: true,
                        ..
                    }
                );
            let wait = if settled {
                interval
            } else {
                interval.min(TRANSITION_HEARTBEAT)
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                Ok(()) = shutdown.changed() => {}
            }
        }
    }
}

/// Registers until the controller accepts (the broker epoch), or returns
/// `None` if shutdown is asked for first.
async fn register(
    config: &LifecycleConfig,
    channel: &ControllerChannel,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<i64> {
    let request = config.registration();
    let mut failures = 0;
    while !*shutdown.borrow() {
        let failure = match channel.send(&request, config.heartbeat_interval).await {
            Ok(reply) if reply.error_code == 0 => {
                tracing::info!(epoch = reply.broker_epoch, "registered with the controller");
                return Some(reply.broker_epoch);
            }
            Ok(reply) => ResponseError::try_from_code(reply.error_code)
                .map_or(format!("error {}", reply.error_code), |e| format!("{e:?}")),
            Err(error) => error.to_string(),
        };
        failures += 1;
        let wait = crate::client::backoff(
            Duration::from_millis(100),
            config.heartbeat_interval,
            failures,
        );
        tracing::warn!(%failure, ?wait, "broker registration failed; retrying");
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            Ok(()) = shutdown.changed() => {}
        }
    }
    None
}

#[cfg(test)]
mod tests;
