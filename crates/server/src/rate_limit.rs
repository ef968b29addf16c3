//! Per-connection event rate limit: a token bucket. The caller passes the current time, so the
//! arithmetic is tested with made-up instants instead of sleeps.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    refill_per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket holding `burst` events, refilled at `per_sec` events per second.
    pub fn new(per_sec: u32, burst: u32, now: Instant) -> Self {
        let capacity = f64::from(burst.max(1));
        Self {
            capacity,
            refill_per_sec: f64::from(per_sec),
            tokens: capacity,
            last: now,
        }
    }

    /// Takes one token if there is one. `false` means: refuse this event.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = self.last.max(now);
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() * self.refill_per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until the next token, for the refusal message.
    pub fn wait_hint(&self) -> Duration {
        if self.refill_per_sec <= 0.0 {
            return Duration::MAX;
        }
        Duration::from_secs_f64(((1.0 - self.tokens).max(0.0)) / self.refill_per_sec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refusal_then_refill() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 3, t0);
        assert!(bucket.try_take(t0));
        assert!(bucket.try_take(t0));
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0), "burst of 3 used up");
        assert!(
            !bucket.try_take(t0 + Duration::from_millis(50)),
            "half a token is not one"
        );
        assert!(bucket.try_take(t0 + Duration::from_millis(100)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(100)));
    }

    #[test]
    fn refill_stops_at_capacity() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(10, 2, t0);
        let later = t0 + Duration::from_secs(3600);
        assert!(bucket.try_take(later));
        assert!(bucket.try_take(later));
        assert!(!bucket.try_take(later));
    }

    #[test]
    fn time_going_backwards_gives_nothing() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(10, 1, t0);
        assert!(bucket.try_take(t0));
        assert!(!bucket.try_take(t0 - Duration::from_secs(5)));
        assert!(bucket.wait_hint() > Duration::ZERO);
    }
}
