//! Outbound requests in flight: one at a time per destination, each with a timeout, and a
//! backoff after a failure. Responses that do not match the request in flight (late,
//! duplicated, or from before a state change) are recognised and dropped, as Kafka's
//! RequestManager does.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy)]
struct InFlight {
    id: u64,
    deadline: u64,
}

#[derive(Debug, Default)]
pub(super) struct RequestTracker {
    next_id: u64,
    in_flight: BTreeMap<i32, InFlight>,
    backoff_until: BTreeMap<i32, u64>,
}

impl RequestTracker {
    /// `first_id` should differ between incarnations of a node so that no response meant for
    /// an earlier incarnation can match.
    pub(super) fn new(first_id: u64) -> Self {
        RequestTracker {
            next_id: first_id,
            ..Self::default()
        }
    }

    /// Whether a new request may go to `to` now.
    pub(super) fn is_ready(&self, to: i32, now: u64) -> bool {
        !self.in_flight.contains_key(&to) && self.backoff_until.get(&to).is_none_or(|&t| t <= now)
    }

    pub(super) fn has_in_flight(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Registers a request to `to` and returns its id.
    pub(super) fn start(&mut self, to: i32, now: u64, timeout_ms: u64) -> u64 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        self.backoff_until.remove(&to);
        self.in_flight.insert(
            to,
            InFlight {
                id,
                deadline: now.saturating_add(timeout_ms),
            },
        );
        id
    }

    /// Accepts the response `id` from `from` if it answers the request in flight.
    pub(super) fn complete(&mut self, from: i32, id: u64) -> bool {
        match self.in_flight.get(&from) {
            Some(request) if request.id == id => {
                self.in_flight.remove(&from);
                true
            }
            _ => false,
        }
    }

    /// The request `id` to `to` failed (or its answer was useless): retry after `until`.
    pub(super) fn fail(&mut self, to: i32, id: u64, until: u64) {
        if self.complete(to, id) {
            self.back_off(to, until);
        }
    }

    pub(super) fn back_off(&mut self, to: i32, until: u64) {
        self.backoff_until.insert(to, until);
    }

    /// Abandons requests whose time is up (their destinations back off until
    /// `backoff_until`) and forgets elapsed backoffs.
    pub(super) fn expire(&mut self, now: u64, backoff_until: u64) {
        self.backoff_until.retain(|_, until| *until > now);
        let expired: Vec<i32> = self
            .in_flight
            .iter()
            .filter(|(_, request)| request.deadline <= now)
            .map(|(&to, _)| to)
            .collect();
        for to in expired {
            self.in_flight.remove(&to);
            self.backoff_until.insert(to, backoff_until);
        }
    }

    /// Forgets everything in flight: after a state change old answers no longer apply.
    pub(super) fn reset(&mut self) {
        self.in_flight.clear();
        self.backoff_until.clear();
    }

    /// The earliest time something here changes on its own.
    pub(super) fn next_deadline(&self) -> Option<u64> {
        let timeouts = self.in_flight.values().map(|request| request.deadline);
        timeouts.chain(self.backoff_until.values().copied()).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_per_destination_and_only_its_answer_counts() {
        let mut tracker = RequestTracker::new(100);
        let id = tracker.start(2, 0, 50);
        assert!(!tracker.is_ready(2, 0));
        assert!(tracker.is_ready(3, 0));
        assert!(!tracker.complete(2, id + 1), "unknown id");
        assert!(!tracker.complete(3, id), "wrong sender");
        assert!(tracker.complete(2, id));
        assert!(!tracker.complete(2, id), "duplicate");
        assert!(tracker.is_ready(2, 0));
    }

    #[test]
    fn timeouts_and_failures_back_off() {
        let mut tracker = RequestTracker::new(0);
        let first = tracker.start(2, 0, 50);
        assert_eq!(tracker.next_deadline(), Some(50));
        tracker.expire(49, 100);
        assert!(!tracker.is_ready(2, 49));
        tracker.expire(50, 70);
        assert!(!tracker.complete(2, first), "expired");
        assert!(!tracker.is_ready(2, 69));
        assert!(tracker.is_ready(2, 70));
        let second = tracker.start(2, 70, 50);
        tracker.fail(2, second, 90);
        assert!(!tracker.is_ready(2, 89) && tracker.is_ready(2, 90));
        tracker.expire(90, 200);
        assert_eq!(
            tracker.next_deadline(),
            None,
            "elapsed backoffs are forgotten"
        );
        tracker.reset();
        assert!(tracker.is_ready(2, 0) && tracker.next_deadline().is_none());
    }
}
