//! The snapshot at the press: a real test-pattern frame encoded to JPEG; the newest frame of a
//! warm camera; and the bound: a camera that is slow or gives nothing costs at most the bound
//! (paused clock), after which the ring goes out without a photo.

use doorbell_agent::snapshot::{
    CaptureNow, DEFAULT_BOUND, FrameSource, LatestFrame, SnapshotError, Snapshotter,
};
use doorbell_media::{TestPattern, VideoFormat, VideoFrame};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

fn decode(jpeg: &[u8]) -> (u16, u16, Vec<u8>) {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    let pixels = decoder.decode().unwrap();
    let info = decoder.info().unwrap();
    (info.width, info.height, pixels)
}

fn pattern() -> TestPattern {
    TestPattern::new(VideoFormat {
        width: 640,
        height: 480,
        fps: 30,
    })
    .unwrap()
}

#[tokio::test]
async fn the_test_pattern_gives_a_640x480_jpeg() {
    // Debug builds encode slowly; the bound here is generous so the test checks the content,
    // not the speed (the speed is in BENCHMARKS.md).
    let snapshotter =
        Snapshotter::new(Arc::new(CaptureNow::new(pattern()))).with_bound(Duration::from_secs(60));
    let jpeg = snapshotter.take().await.expect("a snapshot");
    let (width, height, pixels) = decode(&jpeg);
    assert_eq!((width, height), (640, 480));
    assert_eq!(pixels.len(), 640 * 480 * 3);
}

#[tokio::test]
async fn a_warm_camera_gives_its_newest_frame() {
    let (publish, latest) = LatestFrame::channel();
    let pattern = pattern();
    let frames = Arc::new(latest);
    // Nothing published yet: a snapshot waits for the first frame.
    let pending = Snapshotter::new(frames.clone())
        .with_bound(Duration::from_secs(60))
        .start();
    publish.send_replace(Some(Arc::new(pattern.frame_at(1, SystemTime::now()))));
    assert!(pending.wait().await.is_some());

    publish.send_replace(Some(Arc::new(pattern.frame_at(2, SystemTime::now()))));
    publish.send_replace(Some(Arc::new(pattern.frame_at(3, SystemTime::now()))));
    let frame = frames.recent_frame().await.unwrap();
    assert_eq!(frame.sequence, 3, "the newest frame, not a queued one");

    drop(publish);
    let (_, empty) = LatestFrame::channel();
    assert!(matches!(
        empty.recent_frame().await,
        Err(SnapshotError::SourceClosed)
    ));
}

/// A camera that never delivers.
struct Stuck;
impl FrameSource for Stuck {
    fn recent_frame(&self) -> BoxFuture<'static, Result<VideoFrame, SnapshotError>> {
        Box::pin(std::future::pending())
    }
}

#[tokio::test(start_paused = true)]
async fn a_stuck_camera_costs_exactly_the_bound() {
    assert_eq!(DEFAULT_BOUND, Duration::from_millis(150));
    let snapshotter = Snapshotter::new(Arc::new(Stuck));
    let start = Instant::now();
    assert!(snapshotter.take().await.is_none());
    assert_eq!(start.elapsed(), DEFAULT_BOUND);
}

#[tokio::test(start_paused = true)]
async fn the_bound_counts_from_the_press_not_from_the_wait() {
    let pending = Snapshotter::new(Arc::new(Stuck)).start();
    let start = Instant::now();
    // The room was created 100 ms after the press: 50 ms of the bound remain.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(pending.wait().await.is_none());
    assert_eq!(start.elapsed(), DEFAULT_BOUND);
}

/// A camera that fails.
struct Broken;
impl FrameSource for Broken {
    fn recent_frame(&self) -> BoxFuture<'static, Result<VideoFrame, SnapshotError>> {
        Box::pin(async { Err(SnapshotError::SourceClosed) })
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_camera_gives_no_snapshot_at_once() {
    let start = Instant::now();
    assert!(Snapshotter::new(Arc::new(Broken)).take().await.is_none());
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no waiting for a camera that failed"
    );
}

#[tokio::test]
async fn out_of_range_quality_gives_no_snapshot() {
    let snapshotter = Snapshotter::new(Arc::new(CaptureNow::new(pattern())))
        .with_bound(Duration::from_secs(60))
        .with_quality(0);
    assert!(snapshotter.take().await.is_none());
}
