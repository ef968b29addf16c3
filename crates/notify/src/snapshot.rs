//! The visitor's photo on its way to the channels. Taking it starts at the press and runs while
//! the room is being created; the channels wait for it at most a bound (150 ms by default)
//! counted from the press, then go text-only, so a slow camera never delays the owner's message
//! by more than that. Where the JPEG comes from (a camera, the test pattern) is the caller's
//! business: this crate only sees a future of bytes.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long the notifiers wait for the snapshot after the press.
pub const DEFAULT_BOUND: Duration = Duration::from_millis(150);

/// A snapshot being taken.
pub struct PendingSnapshot {
    ready_by: Instant,
    task: JoinHandle<Result<Vec<u8>, String>>,
}

impl PendingSnapshot {
    /// Starts taking the JPEG now (call it at the press); `bound` counts from now.
    pub fn start(
        jpeg: impl Future<Output = Result<Vec<u8>, String>> + Send + 'static,
        bound: Duration,
    ) -> Self {
        Self {
            ready_by: Instant::now() + bound,
            task: tokio::spawn(jpeg),
        }
    }

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
