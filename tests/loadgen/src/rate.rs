//! Token-bucket rate limiter driven by an explicit clock, so it can be tested without sleeping.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Tokens per second; `None` means unlimited.
    rate: Option<f64>,
    /// Largest burst; kept small (10 ms of traffic) so latency runs see an even load.
    capacity: f64,
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// `per_sec == 0.0` means no limit.
    pub fn new(per_sec: f64, now: Instant) -> Self {
        let rate = (per_sec > 0.0).then_some(per_sec);
        let capacity = rate.map_or(0.0, |r| (r / 100.0).max(1.0));
        Self {
            rate,
            capacity,
            // Start with one token so the first record goes out at once.
            tokens: 1.0,
            last: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if let Some(rate) = self.rate {
            let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * rate).min(self.capacity);
            self.last = now;
        }
    }

    /// Takes one token if available.
    pub fn try_acquire(&mut self, now: Instant) -> bool {
        if self.rate.is_none() {
            return true;
        }
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// When the next token will be available (`now` if one is).
    pub fn next_available(&mut self, now: Instant) -> Instant {
        match self.rate {
            None => now,
            Some(rate) => {
                self.refill(now);
                if self.tokens >= 1.0 {
                    now
                } else {
                    now + Duration::from_secs_f64((1.0 - self.tokens) / rate)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_always_allows() {
        let t = Instant::now();
        let mut r = RateLimiter::new(0.0, t);
        for _ in 0..1000 {
            assert!(r.try_acquire(t));
        }
        assert_eq!(r.next_available(t), t);
    }

    #[test]
    fn paces_to_the_rate() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1000.0, t0);
        // Simulate 2 seconds in 100 us steps, taking whatever is allowed.
        let mut taken = 0;
        for step in 0..20_000u64 {
            let now = t0 + Duration::from_micros(step * 100);
            while r.try_acquire(now) {
                taken += 1;
            }
        }
        assert!((1995..=2011).contains(&taken), "taken={taken}");
    }

    #[test]
    fn burst_is_bounded() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1000.0, t0);
        // After a long idle period only ~10 ms worth (10 tokens) may go at once.
        let later = t0 + Duration::from_secs(5);
        let mut burst = 0;
        while r.try_acquire(later) {
            burst += 1;
        }
        assert_eq!(burst, 10);
        let next = r.next_available(later);
        assert_eq!(next - later, Duration::from_millis(1));
    }
}
