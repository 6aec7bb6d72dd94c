//! Broker registration, heartbeats, fencing and controlled shutdown, with
//! the semantics of Kafka's QuorumController (KIP-631).

use kafka_protocol::error::ResponseError;
use uuid::Uuid;

use super::error::{ApiError, ControllerError};
use super::leadership::{elect_leaderless, leads_any, remove_broker};
use super::quorum::Controller;
use crate::metadata::image::METADATA_VERSION_FEATURE;
use crate::metadata::records::{
    BrokerEndpoint, BrokerFeature, BrokerRegistrationChangeRecord, RegisterBrokerRecord,
};
use crate::metadata::{BrokerImage, MetadataImage, MetadataRecord};

/// A BrokerRegistration request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerRegistration {
    pub broker_id: i32,
    pub cluster_id: String,
    /// Random per broker process start: tells a restart from a duplicate id.
    pub incarnation_id: Uuid,
    /// The client listener first: its address is the one clients are given.
    pub listeners: Vec<BrokerEndpoint>,
    pub features: Vec<BrokerFeature>,
    pub rack: Option<String>,
    pub is_migrating_zk_broker: bool,
}

/// A BrokerHeartbeat request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerHeartbeat {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// The last metadata offset the broker has applied.
    pub current_metadata_offset: i64,
    pub want_fence: bool,
    pub want_shut_down: bool,
}

/// The controller's answer to a heartbeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub in_controlled_shutdown: bool,
    pub should_shut_down: bool,
}

/// Where a broker stands, as Kafka's BrokerControlState.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BrokerState {
    Fenced,
    Unfenced,
    ControlledShutdown,
    ShutdownNow,
}

impl BrokerState {
    fn fenced(self) -> bool {
        matches!(self, BrokerState::Fenced | BrokerState::ShutdownNow)
    }
}

impl Controller {
    /// Registers a broker, fenced until its heartbeats show it caught up.
    /// Returns its broker epoch: the offset of its registration record.
    pub fn register_broker(
        &self,
        request: BrokerRegistration,
        now_ms: i64,
    ) -> Result<i64, ControllerError> {
        let mut writer = self.write();
        let image = self.image();
        check_registration(&image, &request)?;
        let id = request.broker_id;
        let mut records = Vec::new();
        if let Some(existing) = image.brokers.get(&id) {
            if existing.incarnation_id != request.incarnation_id
                && writer.sessions.is_live(id, existing.epoch, now_ms)
            {
                return Err(ApiError::new(
                    ResponseError::DuplicateBrokerRegistration,
                    "Another broker is registered with that broker id.",
                )
                .into());
            }
            // The new registration starts fenced: it may not keep leading.
            if !existing.fenced {
                records.extend(remove_broker(&image, id));
            }
        }
        let epoch = image.metadata_offset + records.len() as i64 + 1;
        records.push(MetadataRecord::RegisterBroker(RegisterBrokerRecord {
            broker_id: id,
            incarnation_id: request.incarnation_id,
            broker_epoch: epoch,
            endpoints: request.listeners,
            features: request.features,
            rack: request.rack,
            fenced: true,
            in_controlled_shutdown: false,
        }));
        self.commit(&image, records)?;
        writer.sessions.session(id, epoch, now_ms);
        tracing::info!(broker = id, epoch, incarnation = %request.incarnation_id, "broker registered");
        Ok(epoch)
    }

    /// Records a heartbeat and moves the broker on: unfenced once caught up
    /// with its registration, fenced on request, and through controlled
    /// shutdown (leaderships moved away) to shutting down.
    pub fn broker_heartbeat(
        &self,
        heartbeat: BrokerHeartbeat,
        now_ms: i64,
    ) -> Result<HeartbeatReply, ControllerError> {
        let mut writer = self.write();
        let image = self.image();
        let broker = registered(&image, heartbeat.broker_id, heartbeat.broker_epoch)?;
        let (id, epoch) = (broker.id, broker.epoch);
        let session = *writer.sessions.session(id, epoch, now_ms);
        let current = if broker.fenced {
            BrokerState::Fenced
        } else if session.shutdown_offset.is_some() {
            BrokerState::ControlledShutdown
        } else {
            BrokerState::Unfenced
        };
        // The broker epoch is the offset of its registration record, which
        // the broker must have applied before it may serve.
        let registered_at = epoch;
        let next = next_state(
            current,
            &heartbeat,
            registered_at,
            leads_any(&image, id),
            session
                .shutdown_offset
                .is_some_and(|offset| offset > writer.sessions.lowest_active_offset(&image)),
        );
        let records = match next {
            _ if next == current => Vec::new(),
            BrokerState::Fenced | BrokerState::ShutdownNow => fence_records(&image, broker),
            BrokerState::Unfenced => unfence_records(&image, broker),
            BrokerState::ControlledShutdown => shutdown_records(&image, broker),
        };
        let committed_offset = if records.is_empty() {
            image.metadata_offset
        } else {
            tracing::info!(broker = id, from = ?current, to = ?next, "broker state change");
            self.commit(&image, records)?.metadata_offset
        };
        let session = writer
            .sessions
            .touch(id, epoch, now_ms, heartbeat.current_metadata_offset);
        match next {
            BrokerState::ControlledShutdown => {
                session.shutdown_offset.get_or_insert(committed_offset);
            }
            BrokerState::Fenced => session.shutdown_offset = None,
            // It is going away: its next incarnation need not wait for this session.
            BrokerState::ShutdownNow => writer.sessions.end(id),
            BrokerState::Unfenced => {}
        }
        Ok(HeartbeatReply {
            is_caught_up: heartbeat.current_metadata_offset >= registered_at,
            is_fenced: next.fenced(),
            in_controlled_shutdown: next == BrokerState::ControlledShutdown,
            should_shut_down: next == BrokerState::ShutdownNow,
        })
    }

    /// Fences every unfenced broker not heard from for `broker.session.timeout.ms`
    /// and moves its leaderships away, one broker per batch so each fencing
    /// is visible before the next. Returns the fenced broker ids. The active
    /// controller calls this periodically.
    pub fn fence_stale_brokers(&self, now_ms: i64) -> Result<Vec<i32>, ControllerError> {
        let mut writer = self.write();
        let mut image = self.image();
        let mut stale = Vec::new();
        for broker in image.brokers.values().filter(|b| !b.fenced) {
            let session = *writer.sessions.session(broker.id, broker.epoch, now_ms);
            if writer.sessions.expired(&session, now_ms) {
                stale.push(broker.id);
            }
        }
        for id in &stale {
            tracing::info!(broker = id, "fencing broker: its session timed out");
            let records = fence_records(&image, &image.brokers[id]);
            image = self.commit(&image, records)?;
            writer.sessions.end(*id);
        }
        Ok(stale)
    }

    /// Starts every broker's session afresh; for a controller that just
    /// became active and cannot know when brokers last heartbeated.
    pub fn reset_broker_sessions(&self) {
        self.write().sessions.clear();
    }
}

/// Kafka's checks of a registration, before the duplicate check.
fn check_registration(image: &MetadataImage, request: &BrokerRegistration) -> Result<(), ApiError> {
    if request.cluster_id != image.cluster_id {
        return Err(ApiError::new(
            ResponseError::InconsistentClusterId,
            format!(
                "Expected cluster ID {}, but got cluster ID {}",
                image.cluster_id, request.cluster_id
            ),
        ));
    }
    if request.is_migrating_zk_broker {
        return Err(ApiError::new(
            ResponseError::BrokerIdNotRegistered,
            "Controller does not support registering ZK brokers.",
        ));
    }
    if request.listeners.is_empty() {
        return Err(ApiError::new(
            ResponseError::InvalidRequest,
            "A broker must register at least one listener.",
        ));
    }
    // A broker that names no metadata.version range supports only the first
    // KRaft one (level 1), as in Kafka.
    let (min, max) = request
        .features
        .iter()
        .find(|f| f.name == METADATA_VERSION_FEATURE)
        .map_or((1, 1), |f| {
            (f.min_supported_version, f.max_supported_version)
        });
    let finalized = image.metadata_version;
    if !(min..=max).contains(&finalized) {
        return Err(ApiError::new(
            ResponseError::UnsupportedVersion,
            format!(
                "Unable to register because the broker does not support version {finalized} of \
                 {METADATA_VERSION_FEATURE}. It wants a version between {min} and {max}, inclusive."
            ),
        ));
    }
    Ok(())
}

/// The broker's registration, if `epoch` is its current one.
fn registered(image: &MetadataImage, id: i32, epoch: i64) -> Result<&BrokerImage, ApiError> {
    let stale = |message: String| ApiError::new(ResponseError::StaleBrokerEpoch, message);
    let broker = image
        .brokers
        .get(&id)
        .ok_or_else(|| stale(format!("No broker registration found for broker id {id}")))?;
    if broker.epoch != epoch {
        return Err(stale(format!(
            "Expected broker epoch {}, but got broker epoch {epoch}",
            broker.epoch
        )));
    }
    Ok(broker)
}

/// Kafka's BrokerHeartbeatManager.calculateNextBrokerState. `must_wait`: in
/// controlled shutdown, the other brokers have not yet caught up with the
/// leadership moves.
fn next_state(
    current: BrokerState,
    heartbeat: &BrokerHeartbeat,
    registered_at: i64,
    leads: bool,
    must_wait: bool,
) -> BrokerState {
    match current {
        BrokerState::Fenced if heartbeat.want_shut_down => BrokerState::ShutdownNow,
        BrokerState::Fenced
            if !heartbeat.want_fence && heartbeat.current_metadata_offset >= registered_at =>
        {
            BrokerState::Unfenced
        }
        BrokerState::Fenced => BrokerState::Fenced,
        BrokerState::Unfenced if heartbeat.want_fence && heartbeat.want_shut_down => {
            BrokerState::ShutdownNow
        }
        BrokerState::Unfenced if heartbeat.want_fence => BrokerState::Fenced,
        BrokerState::Unfenced if heartbeat.want_shut_down && leads => {
            BrokerState::ControlledShutdown
        }
        BrokerState::Unfenced if heartbeat.want_shut_down => BrokerState::ShutdownNow,
        BrokerState::Unfenced => BrokerState::Unfenced,
        BrokerState::ControlledShutdown if leads || must_wait => BrokerState::ControlledShutdown,
        BrokerState::ControlledShutdown | BrokerState::ShutdownNow => BrokerState::ShutdownNow,
    }
}

fn registration_change(
    broker: &BrokerImage,
    fenced: i8,
    in_controlled_shutdown: i8,
) -> MetadataRecord {
    MetadataRecord::BrokerRegistrationChange(BrokerRegistrationChangeRecord {
        broker_id: broker.id,
        broker_epoch: broker.epoch,
        fenced,
        in_controlled_shutdown,
    })
}

/// Leaderships and ISR memberships moved away, then the broker fenced.
/// At metadata.version 3.3+ Kafka fences with BrokerRegistrationChangeRecord.
fn fence_records(image: &MetadataImage, broker: &BrokerImage) -> Vec<MetadataRecord> {
    let mut records = remove_broker(image, broker.id);
    if !broker.fenced {
        records.push(registration_change(broker, 1, 0));
    }
    records
}

/// The broker unfenced, then leaders for partitions that had none and it may lead.
fn unfence_records(image: &MetadataImage, broker: &BrokerImage) -> Vec<MetadataRecord> {
    let mut records = vec![registration_change(broker, -1, 0)];
    records.extend(elect_leaderless(image, broker.id));
    records
}

/// The broker marked as shutting down, then its leaderships and ISR
/// memberships moved away.
fn shutdown_records(image: &MetadataImage, broker: &BrokerImage) -> Vec<MetadataRecord> {
    let mut records = Vec::new();
    if !broker.in_controlled_shutdown {
        records.push(registration_change(broker, 0, 1));
    }
    records.extend(remove_broker(image, broker.id));
    records
}
