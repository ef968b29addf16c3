//! What every channel shares: the ring it is told about, how an attempt fails, and the trait.

use doorbell_protocol::RoomId;
use doorbell_protocol::wall_clock;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// What happened at the door, as every channel receives it.
#[derive(Debug, Clone)]
pub struct Ring {
    pub at: SystemTime,
    /// The call link; `None` when someone rang but the call service is unreachable.
    pub link: Option<String>,
    /// The room the link opens, for machine consumers such as the webhook; `None` with no link.
    pub room: Option<RoomId>,
    /// A JPEG of the visitor, when the camera gave one in time.
    pub snapshot_jpeg: Option<Arc<Vec<u8>>>,
    /// Not a ring but the video message of one nobody answered, this long; `link` then opens
    /// the owner app, where it plays.
    pub message: Option<Duration>,
}

impl Ring {
    /// The one-line text every channel uses.
    pub fn text(&self) -> String {
        if let (Some(length), Some(link)) = (self.message, &self.link) {
            return format!(
                "New video message ({} s) from a visitor nobody answered. Watch it: {link}",
                length.as_secs().max(1)
            );
        }
        match &self.link {
            Some(link) => format!("Someone is at the door. Answer: {link}"),
            None => "Someone rang the doorbell, but the call service is unreachable, \
                     so there is no call to answer."
                .to_owned(),
        }
    }

    /// The text with the time of the press in front, for channels that show a caption.
    pub fn text_with_time(&self) -> String {
        format!("🔔 {} — {}", wall_clock::human_utc(self.at), self.text())
    }

    /// Plain ASCII with the time after: for SMS (GSM-7 keeps it to one 160-character
    /// segment; an emoji would switch to UCS-2 and split it) and HTTP headers (ntfy).
    pub fn plain_text_with_time(&self) -> String {
        format!("{} ({})", self.text(), wall_clock::human_utc(self.at))
    }
}

/// Why one attempt on one channel failed, and whether trying again can help.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// Local I/O failed (e.g. the console); tried again.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Trying again cannot help (wrong credentials, a recipient the service refuses): fix the
    /// channel's config.
    #[error("{0}")]
    Failed(String),
    /// The service is busy, down or unreachable right now; tried again after `retry_after`
    /// when the service said how long to wait, else after the dispatcher's backoff.
    #[error("{reason}")]
    Retry {
        reason: String,
        retry_after: Option<Duration>,
    },
}

impl NotifyError {
    pub fn retry(reason: impl Into<String>) -> Self {
        NotifyError::Retry {
            reason: reason.into(),
            retry_after: None,
        }
    }

    /// true when another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, NotifyError::Failed(_))
    }

    /// How long the service asked us to wait (HTTP 429 `Retry-After`, Telegram's
    /// `parameters.retry_after`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            NotifyError::Retry { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

pub trait Notifier: Send + Sync + 'static {
    /// The channel's name in events (`notify_sent`/`notify_failed`), e.g. `console`.
    fn channel(&self) -> String;
    /// One attempt to deliver the ring. The dispatcher retries retryable errors, so an
    /// implementation makes a single try and says with [`NotifyError`] whether to try again.
    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>>;
    /// The channel as a smart-home device (MQTT): it also hears the call state and has a Ring
    /// button of its own. `None` for the one-way channels.
    fn device(&self) -> Option<Arc<dyn HomeDevice>> {
        None
    }
}

/// A channel that is a device in a home automation system, beside its rings.
pub trait HomeDevice: Send + Sync + 'static {
    /// Connects and stays connected until the agent stops (on a tokio runtime); a press of
    /// the device's own Ring button is sent on `presses`.
    fn start(&self, presses: mpsc::Sender<()>);
    /// Connects only to deliver rings (`--test-notify` beside a running agent), without the
    /// device's identity (availability, discovery, Ring button, call state): the running
    /// agent keeps it.
    fn start_sending_only(&self);
    /// A call started (`true`) or ended.
    fn in_call(&self, on: bool);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_carries_the_link_and_the_time() {
        let ring = Ring {
            at: SystemTime::UNIX_EPOCH,
            link: Some("https://bell.example/?room=abcDEF123_-x".into()),
            room: doorbell_protocol::RoomId::parse("abcDEF123_-x").ok(),
            snapshot_jpeg: None,
            message: None,
        };
        assert!(ring.text().contains("?room=abcDEF123_-x"));
        assert!(ring.text_with_time().contains("1970-01-01 00:00:00 UTC"));
        let unreachable = Ring {
            link: None,
            room: None,
            ..ring
        };
        assert!(unreachable.text().contains("unreachable"));
    }

    #[test]
    fn only_failed_is_permanent() {
        assert!(!NotifyError::Failed("x".into()).is_retryable());
        assert!(NotifyError::retry("x").is_retryable());
        assert!(NotifyError::Io(std::io::Error::other("x")).is_retryable());
        let e = NotifyError::Retry {
            reason: "busy".into(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    }
}
