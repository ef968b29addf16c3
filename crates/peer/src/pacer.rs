//! Paces synthetic (non-live) sources at their nominal rate.

use std::time::{Duration, Instant};

/// Sleeps the calling (blocking) thread until the next period starts.
///
/// Deadlines advance by whole periods so sleeping late does not accumulate drift; after a long
/// stall (more than a few periods behind) it starts afresh instead of bursting to catch up.
pub(crate) struct Pacer {
    period: Duration,
    next: Option<Instant>,
}

const MAX_LAG_PERIODS: u32 = 4;

impl Pacer {
    pub fn new(period: Duration) -> Self {
        Self { period, next: None }
    }

    pub fn wait(&mut self) {
        let now = Instant::now();
        let next = match self.next {
            None => now,
            Some(next) if now > next + self.period * MAX_LAG_PERIODS => now,
            Some(next) => next,
        };
        if next > now {
            std::thread::sleep(next - now);
        }
        self.next = Some(next + self.period);
    }
}

/// The duration of one frame at `fps`, rounded up to whole nanoseconds so that at 30 fps it is
/// 33 333 334 ns = exactly 3000 ticks of the 90 kHz RTP clock (33 ms would drift).
pub(crate) fn frame_duration(fps: u32) -> Duration {
    let fps = u64::from(fps.max(1));
    Duration::from_nanos(1_000_000_000_u64.div_ceil(fps))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_duration_is_whole_rtp_ticks() {
        assert_eq!(frame_duration(30), Duration::from_nanos(33_333_334));
        let ticks = (frame_duration(30).as_secs_f64() * 90_000.0) as u32;
        assert_eq!(ticks, 3000);
        assert_eq!(frame_duration(25), Duration::from_millis(40));
        assert_eq!(frame_duration(0), Duration::from_secs(1));
    }
}
