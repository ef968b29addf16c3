//! The dispatcher with tokio's paused clock: channels run concurrently, a hanging channel
//! delays nobody, retryable failures are retried with backoff (never before a service's
//! `retry_after`), permanent ones are not, and the deadline ends every channel with one event.
//! Plus one run over real loopback HTTP with a service that never answers.

mod notify_support;

use doorbell_notify::{ChannelOutcome, Notifier, NotifyError, Ring, dispatch};
use futures_util::future::BoxFuture;
use notify_support::*;
use serde_json::json;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug)]
enum Step {
    Ok,
    Permanent,
    Retry(Option<u64>),
    Hang,
}

/// A channel that behaves as scripted, attempt by attempt (the last step repeats), and
/// records when each attempt started.
struct Scripted {
    name: &'static str,
    steps: Mutex<VecDeque<Step>>,
    attempts: Arc<Mutex<Vec<Instant>>>,
}

impl Scripted {
    fn make(name: &'static str, steps: &[Step]) -> (Arc<dyn Notifier>, Arc<Mutex<Vec<Instant>>>) {
        let attempts = Arc::new(Mutex::new(Vec::new()));
        let n = Scripted {
            name,
            steps: Mutex::new(steps.iter().copied().collect()),
            attempts: attempts.clone(),
        };
        (Arc::new(n), attempts)
    }
}

impl Notifier for Scripted {
    fn channel(&self) -> String {
        self.name.into()
    }

    fn notify(&self, _ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        self.attempts.lock().unwrap().push(Instant::now());
        let mut steps = self.steps.lock().unwrap();
        let step = if steps.len() > 1 {
            steps.pop_front().unwrap()
        } else {
            steps[0]
        };
        Box::pin(async move {
            match step {
                Step::Ok => Ok(()),
                Step::Permanent => Err(NotifyError::Failed("401 Unauthorized".into())),
                Step::Retry(after) => Err(NotifyError::Retry {
                    reason: "503 busy".into(),
                    retry_after: after.map(Duration::from_secs),
                }),
                Step::Hang => std::future::pending().await,
            }
        })
    }
}

fn text_ring() -> Arc<Ring> {
    Arc::new(Ring {
        at: SystemTime::now(),
        link: Some(LINK.into()),
        room: doorbell_protocol::RoomId::parse(LINK_ROOM).ok(),
        snapshot_jpeg: None,
        message: None,
    })
}

/// Every event with the paused clock's elapsed time when it arrived.
async fn collect(
    mut rx: mpsc::UnboundedReceiver<ChannelOutcome>,
    start: Instant,
    count: usize,
) -> Vec<(Duration, ChannelOutcome)> {
    let mut events = Vec::new();
    for _ in 0..count {
        let event = rx.recv().await.expect("an outcome per channel");
        events.push((start.elapsed(), event));
    }
    events
}

fn channel_of(event: &ChannelOutcome) -> &str {
    &event.channel
}

#[tokio::test(start_paused = true)]
async fn a_hanging_channel_delays_no_other_and_ends_at_the_deadline() {
    let (hang, hang_attempts) = Scripted::make("hang", &[Step::Hang]);
    let (fast, _) = Scripted::make("fast", &[Step::Ok]);
    let (flaky, flaky_attempts) =
        Scripted::make("flaky", &[Step::Retry(None), Step::Retry(None), Step::Ok]);
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    dispatch(
        &[hang, fast, flaky],
        text_ring(),
        Duration::from_secs(60),
        tx,
    );
    let events = collect(rx, start, 3).await;

    assert_eq!(channel_of(&events[0].1), "fast");
    assert_eq!(
        events[0].0,
        Duration::ZERO,
        "the fast channel waits for nobody"
    );
    assert!(events[0].1.result.is_ok());

    assert_eq!(channel_of(&events[1].1), "flaky");
    assert!(events[1].1.result.is_ok());
    // Backoff 500 ms then 1 s, each shortened by at most a fifth of jitter.
    let attempts = flaky_attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 3);
    let first_wait = attempts[1] - attempts[0];
    let second_wait = attempts[2] - attempts[1];
    assert!(
        first_wait >= Duration::from_millis(400) && first_wait <= Duration::from_millis(500),
        "{first_wait:?}"
    );
    assert!(
        second_wait >= Duration::from_millis(800) && second_wait <= Duration::from_millis(1000),
        "{second_wait:?}"
    );

    assert_eq!(channel_of(&events[2].1), "hang");
    assert_eq!(
        events[2].0,
        Duration::from_secs(60),
        "ends exactly at the deadline"
    );
    let reason = failed_reason(&events[2].1);
    assert!(reason.contains("deadline"), "{reason}");
    // A stalled attempt is abandoned after 15 s and tried again, so a stuck connection does
    // not use up the whole ring.
    assert!(hang_attempts.lock().unwrap().len() >= 3);
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_honoured_and_permanent_errors_are_not_retried() {
    let (limited, limited_attempts) = Scripted::make("limited", &[Step::Retry(Some(7)), Step::Ok]);
    let (refused, refused_attempts) = Scripted::make("refused", &[Step::Permanent]);
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    dispatch(
        &[limited, refused],
        text_ring(),
        Duration::from_secs(60),
        tx,
    );
    let events = collect(rx, start, 2).await;

    assert_eq!(channel_of(&events[0].1), "refused");
    assert_eq!(events[0].0, Duration::ZERO);
    assert_eq!(failed_reason(&events[0].1), "401 Unauthorized");
    assert_eq!(refused_attempts.lock().unwrap().len(), 1);

    assert_eq!(channel_of(&events[1].1), "limited");
    assert!(events[1].1.result.is_ok());
    let attempts = limited_attempts.lock().unwrap().clone();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[1] - attempts[0], Duration::from_secs(7));
}

#[tokio::test(start_paused = true)]
async fn a_channel_that_keeps_failing_gives_up_before_the_deadline() {
    let (down, attempts) = Scripted::make("down", &[Step::Retry(None)]);
    let (tx, rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    dispatch(&[down], text_ring(), Duration::from_secs(20), tx);
    let events = collect(rx, start, 1).await;
    let reason = failed_reason(&events[0].1);
    let n = attempts.lock().unwrap().len();
    // Waits 0.5, 1, 2, 4, 8 s (less jitter) fit in 20 s; the next 8 s wait would not.
    assert!((5..=7).contains(&n), "{n} attempts");
    assert!(
        reason.starts_with(&format!("gave up after {n} attempt(s): 503 busy")),
        "{reason}"
    );
    assert!(events[0].0 < Duration::from_secs(20));
}

#[tokio::test(start_paused = true)]
async fn no_channels_no_events() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    assert!(dispatch(&[], text_ring(), Duration::from_secs(5), tx).is_empty());
    assert!(rx.recv().await.is_none());
}

#[tokio::test]
async fn over_real_http_a_service_that_never_answers_holds_up_nothing() {
    let mut hung = StandIn::start(|_| Answer::Hang).await;
    let mut good = StandIn::start(|_| Answer::json(200, json!({"ok": true}))).await;
    let hung_hook = build_one(&format!(
        "kind = \"webhook\"\nname = \"hung\"\nurl = \"{}/hook\"\n",
        hung.base
    ));
    let good_hook = build_one(&format!(
        "kind = \"webhook\"\nname = \"good\"\nurl = \"{}/hook\"\n",
        good.base
    ));
    let (tx, mut rx) = mpsc::unbounded_channel();
    dispatch(
        &[hung_hook, good_hook],
        ring(true),
        Duration::from_secs(3),
        tx,
    );
    let first = rx.recv().await.unwrap();
    assert_eq!(
        first,
        ChannelOutcome {
            channel: "good".into(),
            result: Ok(()),
        }
    );
    let second = rx.recv().await.unwrap();
    assert_eq!(channel_of(&second), "hung");
    assert!(failed_reason(&second).contains("deadline"));
    hung.next_request().await;
    good.next_request().await;
}

/// Every ring a [`Keeper`] was given, with when.
type Kept = Arc<Mutex<Vec<(Instant, Arc<Ring>)>>>;

/// Keeps every ring it is given.
struct Keeper(Kept);

impl Notifier for Keeper {
    fn channel(&self) -> String {
        "keeper".into()
    }
    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        self.0.lock().unwrap().push((Instant::now(), ring));
        Box::pin(async { Ok(()) })
    }
}

#[tokio::test(start_paused = true)]
async fn a_stuck_camera_delays_the_ring_by_the_bound_only_and_it_goes_text_only() {
    use doorbell_notify::dispatch_after_snapshot;
    use doorbell_notify::snapshot::{DEFAULT_BOUND, PendingSnapshot};
    let kept = Arc::new(Mutex::new(Vec::new()));
    let press = Instant::now();
    // A camera that never delivers.
    let pending = PendingSnapshot::start(std::future::pending(), DEFAULT_BOUND);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let task = dispatch_after_snapshot(
        vec![Arc::new(Keeper(kept.clone()))],
        SystemTime::now(),
        Some((
            doorbell_protocol::RoomId::parse(LINK_ROOM).unwrap(),
            LINK.into(),
        )),
        Some(pending),
        Duration::from_secs(60),
        move |e| {
            let _ = tx.send(e);
        },
    );
    assert_eq!(
        rx.recv().await,
        Some(ChannelOutcome {
            channel: "keeper".into(),
            result: Ok(()),
        })
    );
    task.await.unwrap();
    let kept = kept.lock().unwrap();
    assert_eq!(kept[0].0 - press, Duration::from_millis(150));
    assert!(kept[0].1.snapshot_jpeg.is_none());
    assert_eq!(kept[0].1.link.as_deref(), Some(LINK));
}

#[tokio::test]
async fn a_ready_snapshot_goes_with_the_ring() {
    use doorbell_notify::dispatch_after_snapshot;
    use doorbell_notify::snapshot::PendingSnapshot;
    let kept = Arc::new(Mutex::new(Vec::new()));
    let jpeg = snapshot_640x480();
    let pending = PendingSnapshot::start(
        async move { Ok(jpeg.as_ref().clone()) },
        Duration::from_secs(60),
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    dispatch_after_snapshot(
        vec![Arc::new(Keeper(kept.clone()))],
        SystemTime::now(),
        None,
        Some(pending),
        Duration::from_secs(60),
        move |e| {
            let _ = tx.send(e);
        },
    );
    assert!(rx.recv().await.is_some_and(|e| e.result.is_ok()));
    let kept = kept.lock().unwrap();
    let jpeg = kept[0].1.snapshot_jpeg.clone().expect("the snapshot");
    assert_eq!(jpeg_size(&jpeg), (640, 480));
}

struct Panics;
impl Notifier for Panics {
    fn channel(&self) -> String {
        "panics".into()
    }
    fn notify(&self, _ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        Box::pin(async { panic!("a bug in a channel") })
    }
}

#[tokio::test(start_paused = true)]
async fn a_channel_that_panics_still_reports_once() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    dispatch(&[Arc::new(Panics)], text_ring(), Duration::from_secs(5), tx);
    let event = rx.recv().await.unwrap();
    assert_eq!(channel_of(&event), "panics");
    assert!(failed_reason(&event).contains("crashed"));
    assert!(rx.recv().await.is_none());
}
