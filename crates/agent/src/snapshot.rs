//! A JPEG of the visitor for the notifications, taken at the press. The work starts at the
//! press ([`Snapshotter::start`]) and runs while the room is being created; the notifiers wait
//! for it at most a bound (150 ms by default) measured from the press, then go text-only, so a
//! slow camera never delays the owner's message by more than that.
//!
//! Where the frame comes from is a [`FrameSource`]: [`CaptureNow`] captures one frame when
//! asked (the test pattern, a camera that opens fast), [`LatestFrame`] hands out the newest
//! frame of a camera kept warm by a capture loop.

use doorbell_media::{MediaError, VideoFrame, VideoSource, encode_jpeg};
use futures_util::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long the notifiers wait for the snapshot after the press.
pub const DEFAULT_BOUND: Duration = Duration::from_millis(150);
/// JPEG quality: small enough to upload fast, good enough to recognise a face.
pub const DEFAULT_QUALITY: u8 = 80;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("the camera gave no frame: {0}")]
    Capture(MediaError),
    #[error("the frame could not be encoded as JPEG: {0}")]
    Encode(MediaError),
    #[error("the camera stopped before giving a frame; check the video source")]
    SourceClosed,
    #[error("the snapshot worker failed: {0}")]
    Worker(String),
}

/// Gives a recent frame for a snapshot.
pub trait FrameSource: Send + Sync + 'static {
    fn recent_frame(&self) -> BoxFuture<'static, Result<VideoFrame, SnapshotError>>;
}

/// Captures a frame on demand from a [`VideoSource`] (on a blocking thread: a camera's
/// `capture()` blocks until the device delivers).
pub struct CaptureNow<S: VideoSource> {
    source: Arc<Mutex<S>>,
}

impl<S: VideoSource> CaptureNow<S> {
    pub fn new(source: S) -> Self {
        Self {
            source: Arc::new(Mutex::new(source)),
        }
    }
}

impl<S: VideoSource> FrameSource for CaptureNow<S> {
    fn recent_frame(&self) -> BoxFuture<'static, Result<VideoFrame, SnapshotError>> {
        let source = self.source.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let mut source = source.lock().map_err(|_| {
                    SnapshotError::Worker("the video source lock is poisoned".into())
                })?;
                source.capture().map_err(SnapshotError::Capture)
            })
            .await
            .map_err(|e| SnapshotError::Worker(e.to_string()))?
        })
    }
}

/// The newest frame of a camera kept warm: the capture loop publishes every frame (or every
/// few) with [`watch::Sender::send_replace`]; a snapshot takes whatever is newest, waiting only
/// if nothing has arrived yet.
pub struct LatestFrame {
    frames: watch::Receiver<Option<Arc<VideoFrame>>>,
}

impl LatestFrame {
    /// A new slot: give the sender to the capture loop.
    pub fn channel() -> (watch::Sender<Option<Arc<VideoFrame>>>, Self) {
        let (tx, rx) = watch::channel(None);
        (tx, Self { frames: rx })
    }
}

impl FrameSource for LatestFrame {
    fn recent_frame(&self) -> BoxFuture<'static, Result<VideoFrame, SnapshotError>> {
        let mut frames = self.frames.clone();
        Box::pin(async move {
            let frame = frames
                .wait_for(|f| f.is_some())
                .await
                .map_err(|_| SnapshotError::SourceClosed)?
                .clone();
            frame
                .map(|f| f.as_ref().clone())
                .ok_or(SnapshotError::SourceClosed)
        })
    }
}

/// Takes snapshots from a [`FrameSource`] within a time bound.
#[derive(Clone)]
pub struct Snapshotter {
    frames: Arc<dyn FrameSource>,
    bound: Duration,
    quality: u8,
}

impl Snapshotter {
    pub fn new(frames: Arc<dyn FrameSource>) -> Self {
        Self {
            frames,
            bound: DEFAULT_BOUND,
            quality: DEFAULT_QUALITY,
        }
    }

    /// How long after `start()` a snapshot is still waited for.
    pub fn with_bound(mut self, bound: Duration) -> Self {
        self.bound = bound;
        self
    }

    /// JPEG quality 1..=100 (out-of-range values make every snapshot fail, with a log line).
    pub fn with_quality(mut self, quality: u8) -> Self {
        self.quality = quality;
        self
    }

    /// Starts taking a snapshot now (call it at the press).
    pub fn start(&self) -> PendingSnapshot {
        let frame = self.frames.recent_frame();
        let quality = self.quality;
        let task = tokio::spawn(async move {
            let frame = frame.await?;
            tokio::task::spawn_blocking(move || encode_jpeg(&frame, quality))
                .await
                .map_err(|e| SnapshotError::Worker(e.to_string()))?
                .map_err(SnapshotError::Encode)
        });
        PendingSnapshot {
            ready_by: Instant::now() + self.bound,
            task,
        }
    }

    /// `start()` then `wait()`.
    pub async fn take(&self) -> Option<Arc<Vec<u8>>> {
        self.start().wait().await
    }
}

/// A snapshot being taken.
pub struct PendingSnapshot {
    ready_by: Instant,
    task: JoinHandle<Result<Vec<u8>, SnapshotError>>,
}

impl PendingSnapshot {
    /// The JPEG if it is ready by the bound (counted from `start()`), else `None` and the
    /// channels send text only. Never waits past the bound.
    pub async fn wait(mut self) -> Option<Arc<Vec<u8>>> {
        match tokio::time::timeout_at(self.ready_by, &mut self.task).await {
            Ok(Ok(Ok(jpeg))) => Some(Arc::new(jpeg)),
            Ok(Ok(Err(e))) => {
                tracing::warn!("no snapshot for this ring: {e}");
                None
            }
            Ok(Err(e)) => {
                tracing::warn!("no snapshot for this ring: the snapshot task failed: {e}");
                None
            }
            Err(_) => {
                tracing::warn!("the snapshot was not ready in time; notifying without it");
                self.task.abort();
                None
            }
        }
    }
}
