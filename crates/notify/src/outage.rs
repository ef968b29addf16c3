//! A channel that keeps failing (a messenger down for hours, credentials revoked) is not asked
//! again for every attempt of every ring: once it has failed without a success for
//! [`OUTAGE_AFTER`] (longer than one ring's retries, so a short blip during a ring is still
//! retried through), it is tried at most once per [`PROBE_EVERY`]; the attempts in between fail
//! at once without reaching the service, saying so. The first success ends the outage. Said
//! once in the log when it starts and once when it ends, instead of a warning per attempt.

use crate::notifier::{Notifier, NotifyError, Ring};
use futures_util::future::BoxFuture;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;

/// Failing this long without a success is an outage (a ring retries for at most 60 s).
pub const OUTAGE_AFTER: Duration = Duration::from_secs(120);
/// During an outage, the service is tried at most this often.
pub const PROBE_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
struct Health {
    failures: u32,
    /// The first failure since the last success.
    failing_since: Option<Instant>,
    last_attempt: Option<Instant>,
}

impl Health {
    fn in_outage(&self, now: Instant) -> bool {
        self.failing_since
            .is_some_and(|t| now.duration_since(t) >= OUTAGE_AFTER)
    }
}

/// Wraps a channel with the outage rule above.
pub struct OutageGuard {
    inner: Arc<dyn Notifier>,
    health: Arc<Mutex<Health>>,
}

impl OutageGuard {
    pub fn new(inner: Arc<dyn Notifier>) -> Self {
        Self {
            inner,
            health: Arc::new(Mutex::new(Health::default())),
        }
    }
}

impl Notifier for OutageGuard {
    fn channel(&self) -> String {
        self.inner.channel()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let now = Instant::now();
        {
            let mut health = self.health.lock().unwrap_or_else(PoisonError::into_inner);
            let held_back = health.in_outage(now)
                && health
                    .last_attempt
                    .is_some_and(|t| now.duration_since(t) < PROBE_EVERY);
            if held_back {
                let failures = health.failures;
                return Box::pin(async move {
                    Err(NotifyError::Failed(format!(
                        "the channel has failed {failures} times in a row; it is tried again at \
                         most once every {}s until it works",
                        PROBE_EVERY.as_secs()
                    )))
                });
            }
            health.last_attempt = Some(now);
        }
        let attempt = self.inner.notify(ring);
        let health = self.health.clone();
        let channel = self.inner.channel();
        Box::pin(async move {
            let result = attempt.await;
            let now = Instant::now();
            let mut health = health.lock().unwrap_or_else(PoisonError::into_inner);
            match &result {
                Ok(()) => {
                    if health.in_outage(now) {
                        tracing::info!(%channel, "notification channel works again");
                    }
                    *health = Health::default();
                }
                Err(e) => {
                    let was_out = health.in_outage(now);
                    health.failures = health.failures.saturating_add(1);
                    health.failing_since.get_or_insert(now);
                    if !was_out && health.in_outage(now) {
                        tracing::warn!(
                            %channel,
                            failures = health.failures,
                            "notification channel keeps failing ({e}); trying it at most once \
                             every {}s until it works",
                            PROBE_EVERY.as_secs()
                        );
                    }
                }
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    use std::time::SystemTime;

    /// Fails until told to work; counts the attempts that reached it.
    #[derive(Default)]
    struct Flaky {
        calls: AtomicU32,
        works: AtomicBool,
    }

    impl Notifier for Arc<Flaky> {
        fn channel(&self) -> String {
            "flaky".into()
        }
        fn notify(&self, _ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let works = self.works.load(Ordering::SeqCst);
            Box::pin(async move {
                if works {
                    Ok(())
                } else {
                    Err(NotifyError::retry("503 service unavailable"))
                }
            })
        }
    }

    fn ring() -> Arc<Ring> {
        Arc::new(Ring {
            at: SystemTime::now(),
            link: None,
            room: None,
            snapshot_jpeg: None,
            message: None,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn a_channel_failing_for_minutes_is_tried_once_a_minute_until_it_works() {
        let flaky = Arc::new(Flaky::default());
        let guard = OutageGuard::new(Arc::new(flaky.clone()));
        // A ring's worth of retries (60 s) all reach the service: a blip is retried through.
        for _ in 0..10 {
            assert!(guard.notify(ring()).await.is_err());
            tokio::time::advance(Duration::from_secs(6)).await;
        }
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 10);
        // Failing for two minutes: an outage. One attempt goes through, then it is held back.
        tokio::time::advance(OUTAGE_AFTER).await;
        assert!(guard.notify(ring()).await.is_err());
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 11);
        let held = guard.notify(ring()).await.unwrap_err();
        assert!(!held.is_retryable(), "{held}");
        assert!(held.to_string().contains("11 times in a row"), "{held}");
        assert_eq!(
            flaky.calls.load(Ordering::SeqCst),
            11,
            "held back: service untouched"
        );
        tokio::time::advance(PROBE_EVERY - Duration::from_millis(1)).await;
        assert!(guard.notify(ring()).await.is_err());
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 11, "still held back");
        // A minute after the last real attempt, one probe goes through; it works again.
        tokio::time::advance(Duration::from_millis(1)).await;
        flaky.works.store(true, Ordering::SeqCst);
        guard.notify(ring()).await.unwrap();
        guard.notify(ring()).await.unwrap();
        assert_eq!(flaky.calls.load(Ordering::SeqCst), 13, "back to normal");
    }
}
