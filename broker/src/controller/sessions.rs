//! Broker sessions: when the active controller last heard from each broker.
//! Kept in memory only; a newly active controller starts every broker's
//! session afresh, as Kafka's does.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use crate::metadata::MetadataImage;

/// Milliseconds on a clock that never jumps, for session deadlines.
pub fn monotonic_ms() -> i64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as i64
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Session {
    /// The registration this session belongs to.
    epoch: i64,
    last_contact_ms: i64,
    /// The metadata offset the broker last reported; -1 before any heartbeat.
    pub metadata_offset: i64,
    /// Set in controlled shutdown: the offset the other brokers must reach
    /// (to know the new leaders) before this one may stop.
    pub shutdown_offset: Option<i64>,
}

pub(super) struct BrokerSessions {
    timeout_ms: i64,
    sessions: HashMap<i32, Session>,
}

impl BrokerSessions {
    pub fn new(timeout_ms: u64) -> Self {
        BrokerSessions {
            timeout_ms: i64::try_from(timeout_ms).unwrap_or(i64::MAX),
            sessions: HashMap::new(),
        }
    }

    /// Forgets every session: each broker's starts again when next looked at.
    pub fn clear(&mut self) {
        self.sessions.clear();
    }

    /// The session of broker `id` registered at `epoch`. One this controller
    /// has not seen yet (or of an older registration) starts now.
    pub fn session(&mut self, id: i32, epoch: i64, now_ms: i64) -> &mut Session {
        let fresh = Session {
            epoch,
            last_contact_ms: now_ms,
            metadata_offset: -1,
            shutdown_offset: None,
        };
        let session = self.sessions.entry(id).or_insert(fresh);
        if session.epoch != epoch {
            *session = fresh;
        }
        session
    }

    /// Records a heartbeat.
    pub fn touch(
        &mut self,
        id: i32,
        epoch: i64,
        now_ms: i64,
        metadata_offset: i64,
    ) -> &mut Session {
        let session = self.session(id, epoch, now_ms);
        session.last_contact_ms = now_ms;
        session.metadata_offset = metadata_offset;
        session
    }

    pub fn expired(&self, session: &Session, now_ms: i64) -> bool {
        now_ms.saturating_sub(session.last_contact_ms) > self.timeout_ms
    }

    /// Whether broker `id` registered at `epoch` is still heard from.
    pub fn is_live(&mut self, id: i32, epoch: i64, now_ms: i64) -> bool {
        let session = *self.session(id, epoch, now_ms);
        !self.expired(&session, now_ms)
    }

    /// Ends a session now (the broker was fenced or is leaving), so that
    /// another incarnation may register without waiting for it to expire.
    pub fn end(&mut self, id: i32) {
        if let Some(session) = self.sessions.get_mut(&id) {
            session.last_contact_ms = i64::MIN;
            session.shutdown_offset = None;
        }
    }

    /// The lowest metadata offset reported by the active brokers (unfenced,
    /// not shutting down); an active broker not heard from counts as -1.
    pub fn lowest_active_offset(&self, image: &MetadataImage) -> i64 {
        image
            .active_brokers()
            .map(|b| {
                self.sessions
                    .get(&b.id)
                    .filter(|s| s.epoch == b.epoch && s.shutdown_offset.is_none())
                    .map_or(-1, |s| s.metadata_offset)
            })
            .min()
            .unwrap_or(i64::MAX)
    }
}
