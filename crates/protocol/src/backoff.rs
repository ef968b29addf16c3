//! Reconnect delays: capped exponential with jitter, so a restarted server is found again
//! quickly without a herd of doorbells hammering it in step.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max: max.max(initial),
            attempt: 0,
        }
    }

    /// The delay before the next attempt. `jitter` in `[0, 1)` (from any random source) takes
    /// up to a fifth off, so the cap is never exceeded.
    pub fn next_delay(&mut self, jitter: f64) -> Duration {
        let factor = 2u32.saturating_pow(self.attempt.min(16));
        let base = self.initial.saturating_mul(factor).min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        base.mul_f64(1.0 - 0.2 * jitter.clamp(0.0, 1.0))
    }

    /// After a successful connection the next loss starts over from `initial`.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(250), Duration::from_millis(1500));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay(0.0).as_millis()).collect();
        assert_eq!(delays, [250, 500, 1000, 1500, 1500]);
        b.reset();
        assert_eq!(b.next_delay(0.0), Duration::from_millis(250));
    }

    #[test]
    fn jitter_only_shortens() {
        let mut b = Backoff::new(Duration::from_millis(1000), Duration::from_millis(1000));
        let d = b.next_delay(0.999);
        assert!(
            d < Duration::from_millis(1000) && d > Duration::from_millis(799),
            "{d:?}"
        );
    }
}
