//! Sends one ring on every channel at once. Each channel runs in its own task, retries
//! retryable failures with backoff (never sooner than a service's `retry_after`) until the
//! ring's deadline, and ends in exactly one event: `notify_sent` or `notify_failed`. A channel
//! that hangs or fails holds up neither the others nor the caller.

use super::{Notifier, Ring};
use crate::snapshot::PendingSnapshot;
use doorbell_protocol::RoomId;
use doorbell_protocol::backoff::Backoff;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How one channel fared with one ring: `notify_sent`/`notify_failed` in the event stream, a
/// line of `--test-notify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelOutcome {
    pub channel: String,
    /// `Err` holds the reason (never a secret).
    pub result: Result<(), String>,
}

impl fmt::Display for ChannelOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.result {
            Ok(()) => write!(f, "{}: sent", self.channel),
            Err(reason) => write!(f, "{}: FAILED: {reason}", self.channel),
        }
    }
}

/// How a channel is retried within the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait before the second attempt; doubles up to `max_wait`.
    pub first_wait: Duration,
    pub max_wait: Duration,
    /// The longest one attempt may take before it counts as failed and is retried (a
    /// connection that stalls should not use up the whole deadline).
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_wait: Duration::from_millis(500),
            max_wait: Duration::from_secs(8),
            attempt_timeout: Duration::from_secs(15),
        }
    }
}

/// Sends `ring` on every channel; the outcome of each comes as one event on `report`.
/// `deadline` is how long a channel keeps trying (use the ring's `new_peer` timeout: after
/// that nobody can answer). Returns at once; the handles are only needed to wait or abort.
pub fn dispatch(
    notifiers: &[Arc<dyn Notifier>],
    ring: Arc<Ring>,
    deadline: Duration,
    report: mpsc::UnboundedSender<ChannelOutcome>,
) -> Vec<JoinHandle<()>> {
    dispatch_with(
        notifiers,
        ring,
        deadline,
        RetryPolicy::default(),
        move |event| {
            // The receiver gone means the agent is stopping; nobody needs the outcome then.
            let _ = report.send(event);
        },
    )
}

/// For the agent's ring: waits for the snapshot started at the press (never past its bound,
/// see [`PendingSnapshot::wait`]), then [`dispatch`]es the ring with the photo, or without it
/// if it was not ready. Returns at once; the task ends when every channel has reported.
/// `report` gets one `notify_sent`/`notify_failed` per channel (e.g. a closure that forwards
/// into the agent's own channel).
pub fn dispatch_after_snapshot(
    notifiers: Vec<Arc<dyn Notifier>>,
    at: SystemTime,
    link: Option<(RoomId, String)>,
    snapshot: Option<PendingSnapshot>,
    deadline: Duration,
    report: impl Fn(ChannelOutcome) + Clone + Send + Sync + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let snapshot_jpeg = match snapshot {
            Some(pending) => pending.wait().await,
            None => None,
        };
        let (room, link) = link.unzip();
        let ring = Arc::new(Ring {
            at,
            link,
            room,
            snapshot_jpeg,
            message: None,
        });
        for handle in dispatch_with(&notifiers, ring, deadline, RetryPolicy::default(), report) {
            let _ = handle.await;
        }
    })
}

/// [`dispatch`] with an explicit retry policy and any way of reporting.
pub fn dispatch_with(
    notifiers: &[Arc<dyn Notifier>],
    ring: Arc<Ring>,
    deadline: Duration,
    policy: RetryPolicy,
    report: impl Fn(ChannelOutcome) + Clone + Send + Sync + 'static,
) -> Vec<JoinHandle<()>> {
    let end = Instant::now() + deadline;
    notifiers
        .iter()
        .map(|notifier| {
            let notifier = notifier.clone();
            let ring = ring.clone();
            let report = report.clone();
            tokio::spawn(async move {
                let channel = notifier.channel();
                // A channel that panics still gets its one outcome event.
                let attempt = tokio::spawn(async move {
                    deliver(notifier.as_ref(), ring, end, deadline, policy).await
                });
                let event = attempt.await.unwrap_or_else(|e| ChannelOutcome {
                    channel,
                    result: Err(format!(
                        "the channel crashed ({e}); this is a bug, please report it"
                    )),
                });
                report(event);
            })
        })
        .collect()
}

async fn deliver(
    notifier: &dyn Notifier,
    ring: Arc<Ring>,
    end: Instant,
    deadline: Duration,
    policy: RetryPolicy,
) -> ChannelOutcome {
    let channel = notifier.channel();
    let mut backoff = Backoff::new(policy.first_wait, policy.max_wait);
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let attempt_end = end.min(Instant::now() + policy.attempt_timeout);
        let (reason, retry_after) =
            match tokio::time::timeout_at(attempt_end, notifier.notify(ring.clone())).await {
                Ok(Ok(())) => {
                    tracing::info!(%channel, attempts, "notification sent");
                    return ChannelOutcome {
                        channel,
                        result: Ok(()),
                    };
                }
                Ok(Err(e)) if !e.is_retryable() => {
                    tracing::warn!(%channel, attempts, "notification failed for good: {e}");
                    return ChannelOutcome {
                        channel,
                        result: Err(e.to_string()),
                    };
                }
                Ok(Err(e)) => (e.to_string(), e.retry_after()),
                Err(_) if attempt_end >= end => {
                    return give_up(
                        channel,
                        attempts,
                        format!("no answer before the deadline ({deadline:?})"),
                    );
                }
                Err(_) => (
                    format!("no answer within {:?}", policy.attempt_timeout),
                    None,
                ),
            };
        let backoff_wait = backoff.next_delay(jitter());
        let wait = backoff_wait.max(retry_after.unwrap_or_default());
        if Instant::now() + wait >= end {
            let why = match retry_after {
                Some(after) if after > backoff_wait => format!(
                    "{reason}; the service asked to wait {after:?}, past the deadline ({deadline:?})"
                ),
                _ => format!("{reason}; the deadline ({deadline:?}) has passed"),
            };
            return give_up(channel, attempts, why);
        }
        tracing::info!(%channel, attempts, "notification will be retried in {wait:?}: {reason}");
        tokio::time::sleep(wait).await;
    }
}

fn give_up(channel: String, attempts: u32, why: String) -> ChannelOutcome {
    tracing::warn!(%channel, attempts, "notification failed: {why}");
    ChannelOutcome {
        channel,
        result: Err(format!("gave up after {attempts} attempt(s): {why}")),
    }
}

fn jitter() -> f64 {
    let mut b = [0u8; 2];
    match getrandom::fill(&mut b) {
        Ok(()) => f64::from(u16::from_le_bytes(b)) / 65536.0,
        Err(_) => 0.5,
    }
}
