//! How the owner hears the bell. Each channel is its own file behind [`Notifier`]; the agent
//! sends to every configured channel at once, and one slow or failing channel never holds up
//! another or the call.

mod console;

pub use console::ConsoleNotifier;

use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::SystemTime;

/// What happened at the door, as every channel receives it.
#[derive(Debug, Clone)]
pub struct Ring {
    pub at: SystemTime,
    /// The call link; `None` when someone rang but the call service is unreachable.
    pub link: Option<String>,
    /// A JPEG of the visitor, when the camera gave one in time.
    pub snapshot_jpeg: Option<Arc<Vec<u8>>>,
}

impl Ring {
    /// The one-line text every channel uses.
    pub fn text(&self) -> String {
        match &self.link {
            Some(link) => format!("Someone is at the door. Answer: {link}"),
            None => "Someone rang the doorbell, but the call service is unreachable, \
                     so there is no call to answer."
                .to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

pub trait Notifier: Send + Sync + 'static {
    /// The channel's name in events (`notify_sent`/`notify_failed`), e.g. `console`.
    fn channel(&self) -> String;
    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>>;
}
