//! Replication throttles, as Kafka has them: `leader.replication.throttled.rate` and
//! `follower.replication.throttled.rate` (bytes/s, dynamic broker configs, per broker or
//! cluster default) cap what replicas that are catching up copy, so that a partition move
//! does not starve clients. Which replicas are throttled: those not in the ISR that a
//! reassignment is adding, and those the topic lists in
//! `leader.replication.throttled.replicas` / `follower.replication.throttled.replicas`
//! (`*`, or `partition:broker` pairs naming the broker that applies the throttle).
//! Replicas in the ISR are never throttled, as in Kafka.

use std::collections::BTreeMap;
use std::time::Instant;

use parking_lot::Mutex;

use crate::metadata::{MetadataImage, PartitionImage};
use crate::storage::throttled_replica_pairs;

pub const LEADER_RATE_KEY: &str = "leader.replication.throttled.rate";
pub const FOLLOWER_RATE_KEY: &str = "follower.replication.throttled.rate";
pub const LEADER_REPLICAS_KEY: &str = "leader.replication.throttled.replicas";
pub const FOLLOWER_REPLICAS_KEY: &str = "follower.replication.throttled.replicas";

/// Which side of replication a throttle is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The leader, sending to followers.
    Leader,
    /// A follower, fetching from its leader.
    Follower,
}

impl Side {
    fn rate_key(self) -> &'static str {
        match self {
            Side::Leader => LEADER_RATE_KEY,
            Side::Follower => FOLLOWER_RATE_KEY,
        }
    }

    fn replicas_key(self) -> &'static str {
        match self {
            Side::Leader => LEADER_REPLICAS_KEY,
            Side::Follower => FOLLOWER_REPLICAS_KEY,
        }
    }
}

/// A byte rate cap: a token bucket that holds at most one second of tokens. A fetch
/// goes ahead while tokens remain and may overdraw them by its size, so over time the
/// bytes copied stay at the rate (Kafka checks a measured rate the same way: a fetch
/// is skipped once the quota is exceeded, never cut short).
#[derive(Debug)]
pub struct RateLimit {
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// Bytes per second; `None` is unlimited.
    rate: Option<u64>,
    tokens: f64,
    refilled: Instant,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            bucket: Mutex::new(Bucket {
                rate: None,
                tokens: 0.0,
                refilled: Instant::now(),
            }),
        }
    }
}

impl RateLimit {
    pub fn set_rate(&self, rate: Option<u64>) {
        let mut bucket = self.bucket.lock();
        if bucket.rate != rate {
            bucket.rate = rate;
            bucket.tokens = rate.unwrap_or(0) as f64;
            bucket.refilled = Instant::now();
        }
    }

    pub fn rate(&self) -> Option<u64> {
        self.bucket.lock().rate
    }

    /// Whether the bytes copied so far use up the rate: throttled reads wait.
    pub fn exceeded(&self) -> bool {
        let mut bucket = self.bucket.lock();
        let Some(rate) = bucket.rate else {
            return false;
        };
        let now = Instant::now();
        let elapsed = now.duration_since(bucket.refilled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate as f64).min(rate as f64);
        bucket.refilled = now;
        bucket.tokens <= 0.0
    }

    /// Takes `bytes` copied by a throttled replica off the bucket.
    pub fn record(&self, bytes: usize) {
        let mut bucket = self.bucket.lock();
        if bucket.rate.is_some() {
            bucket.tokens -= bytes as f64;
        }
    }
}

/// The leader-side and follower-side limits of one broker.
#[derive(Debug, Default)]
pub struct Throttles {
    pub leader: RateLimit,
    pub follower: RateLimit,
}

impl Throttles {
    /// Takes the rates this broker's configs in `image` give.
    pub fn configure(&self, image: &MetadataImage, local: i32) {
        self.leader
            .set_rate(configured_rate(image, local, Side::Leader));
        self.follower
            .set_rate(configured_rate(image, local, Side::Follower));
    }
}

/// The effective rate of `side` on broker `local`: its own setting, else the cluster
/// default, else unlimited.
pub fn configured_rate(image: &MetadataImage, local: i32, side: Side) -> Option<u64> {
    [local.to_string(), String::new()]
        .iter()
        .find_map(|name| {
            image
                .broker_resource_configs(name)
                .and_then(|configs| configs.get(side.rate_key()))
        })
        .and_then(|value| value.trim().parse().ok())
}

/// Checks a throttle rate as a broker config value: a positive number of bytes/s.
pub fn parse_rate(value: &str) -> Result<u64, String> {
    match value.trim().parse::<u64>() {
        Ok(rate) if rate > 0 => Ok(rate),
        _ => Err(format!(
            "expected a positive number of bytes per second, not `{value}`"
        )),
    }
}

/// Whether the topic's throttled-replicas list for `side` names `broker` for `partition`.
fn listed(configs: &BTreeMap<String, String>, side: Side, partition: i32, broker: i32) -> bool {
    configs.get(side.replicas_key()).is_some_and(|value| {
        value.trim() == "*"
            || throttled_replica_pairs(value).any(|(_, pair)| pair == Some((partition, broker)))
    })
}

/// Whether copying partition `meta` to `replica` is throttled on `local`'s `side`
/// (on the leader side `local` leads; on the follower side `local == replica`).
pub fn is_throttled(
    meta: &PartitionImage,
    topic_configs: &BTreeMap<String, String>,
    side: Side,
    local: i32,
    replica: i32,
) -> bool {
    !meta.isr.contains(&replica)
        && (meta.adding_replicas.contains(&replica)
            || listed(topic_configs, side, meta.partition, local))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn partition(isr: &[i32], adding: &[i32]) -> PartitionImage {
        PartitionImage {
            partition: 3,
            leader: 1,
            leader_epoch: 0,
            partition_epoch: 0,
            replicas: vec![1, 2, 4],
            isr: isr.to_vec(),
            removing_replicas: vec![],
            adding_replicas: adding.to_vec(),
            leader_recovery_state: 0,
        }
    }

    fn configs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_replicas_out_of_the_isr_that_are_moving_or_listed_are_throttled() {
        let none = configs(&[]);
        let leader_list = configs(&[(LEADER_REPLICAS_KEY, "3:1, 5:2")]);
        let all = configs(&[(FOLLOWER_REPLICAS_KEY, "*")]);
        // (ISR, adding replicas, topic configs, side, local broker, replica, throttled)
        type Case<'a> = (
            &'a [i32],
            &'a [i32],
            &'a BTreeMap<String, String>,
            Side,
            i32,
            i32,
            bool,
        );
        let cases: &[Case] = &[
            // A reassignment adding broker 4: throttled on both sides until it joins the ISR.
            (&[1, 2], &[4], &none, Side::Leader, 1, 4, true),
            (&[1, 2], &[4], &none, Side::Follower, 4, 4, true),
            (&[1, 2, 4], &[4], &none, Side::Leader, 1, 4, false),
            // A follower that fell behind, no reassignment, no list: not throttled.
            (&[1, 2], &[], &none, Side::Leader, 1, 4, false),
            (&[1, 2], &[], &leader_list, Side::Leader, 1, 4, true),
            (&[1, 2], &[], &leader_list, Side::Leader, 2, 4, false),
            (&[1, 2], &[], &leader_list, Side::Follower, 4, 4, false),
            (&[1, 2], &[], &all, Side::Follower, 4, 4, true),
            (&[1, 2, 4], &[], &all, Side::Follower, 4, 4, false),
        ];
        for (i, &(isr, adding, configs, side, local, replica, want)) in cases.iter().enumerate() {
            let got = is_throttled(&partition(isr, adding), configs, side, local, replica);
            assert_eq!(got, want, "case {i}");
        }
    }

    #[test]
    fn rates_are_positive_numbers_of_bytes_per_second() {
        assert_eq!(parse_rate("1048576"), Ok(1_048_576));
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("fast").is_err());
    }

    #[test]
    fn a_rate_limit_lets_through_its_rate_and_no_more() {
        let limit = RateLimit::default();
        assert!(!limit.exceeded(), "unlimited by default");
        limit.record(usize::MAX);
        assert!(!limit.exceeded());

        limit.set_rate(Some(100_000));
        let start = Instant::now();
        let mut copied = 0usize;
        while start.elapsed() < Duration::from_millis(500) {
            if !limit.exceeded() {
                limit.record(10_000);
                copied += 10_000;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        // One second of burst plus half a second at the rate, and one fetch of overdraw.
        assert!(
            (100_000..=170_000).contains(&copied),
            "copied {copied} bytes in 0.5 s at 100 kB/s"
        );
        limit.set_rate(None);
        assert!(!limit.exceeded());
    }
}
