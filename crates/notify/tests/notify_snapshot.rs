//! The snapshot's bound: a camera that is slow or gives nothing costs at most the bound (paused
//! clock), counted from the press, after which the ring goes out without a photo.

use doorbell_notify::snapshot::{DEFAULT_BOUND, PendingSnapshot};
use std::time::Duration;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn a_stuck_camera_costs_exactly_the_bound() {
    assert_eq!(DEFAULT_BOUND, Duration::from_millis(150));
    let start = Instant::now();
    let pending = PendingSnapshot::start(std::future::pending(), DEFAULT_BOUND);
    assert!(pending.wait().await.is_none());
    assert_eq!(start.elapsed(), DEFAULT_BOUND);
}

#[tokio::test(start_paused = true)]
async fn the_bound_counts_from_the_press_not_from_the_wait() {
    let pending = PendingSnapshot::start(std::future::pending(), DEFAULT_BOUND);
    let start = Instant::now();
    // The room was created 100 ms after the press: 50 ms of the bound remain.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(pending.wait().await.is_none());
    assert_eq!(start.elapsed(), DEFAULT_BOUND);
}

#[tokio::test(start_paused = true)]
async fn a_failing_camera_gives_no_snapshot_at_once() {
    let start = Instant::now();
    let pending = PendingSnapshot::start(async { Err("camera gone".to_owned()) }, DEFAULT_BOUND);
    assert!(pending.wait().await.is_none());
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no waiting for a camera that failed"
    );
}

#[tokio::test(start_paused = true)]
async fn a_photo_ready_within_the_bound_is_handed_over_when_ready() {
    let start = Instant::now();
    let pending = PendingSnapshot::start(
        async {
            tokio::time::sleep(Duration::from_millis(40)).await;
            Ok(vec![0xFF, 0xD8, 0xFF])
        },
        DEFAULT_BOUND,
    );
    assert_eq!(
        pending.wait().await.as_deref(),
        Some(&vec![0xFF, 0xD8, 0xFF])
    );
    assert_eq!(start.elapsed(), Duration::from_millis(40));
}
