use super::{Notifier, NotifyError, Ring};
use futures_util::future::BoxFuture;
use std::io::Write;
use std::sync::{Arc, Mutex};

/// Prints the link for the person at the keyboard (the demo, a first try). Writes to standard
/// error so it never mixes with the JSON event stream on standard output.
pub struct ConsoleNotifier {
    channel: String,
    out: Arc<Mutex<Box<dyn Write + Send>>>,
    /// Whole links, or the room shortened: a link in a log (the journal, a file) is a call
    /// anyone reading the log can answer.
    whole_links: bool,
}

impl ConsoleNotifier {
    /// Whole links on a terminal; into the journal or a file, the room is shortened (a service
    /// with no channel configured tells no one, and says so).
    pub fn stderr() -> Self {
        use std::io::IsTerminal;
        let whole_links = std::io::stderr().is_terminal();
        Self {
            whole_links,
            ..Self::to_writer(Box::new(std::io::stderr()))
        }
    }

    pub fn to_writer(out: Box<dyn Write + Send>) -> Self {
        Self {
            channel: "console".into(),
            out: Arc::new(Mutex::new(out)),
            whole_links: true,
        }
    }

    /// Links with the room shortened to its first characters (for logs).
    pub fn shortening_links(mut self) -> Self {
        self.whole_links = false;
        self
    }

    /// Reports under another channel name (config `name = "..."`).
    pub fn with_channel(mut self, channel: impl Into<String>) -> Self {
        self.channel = channel.into();
        self
    }
}

impl Notifier for ConsoleNotifier {
    fn channel(&self) -> String {
        self.channel.clone()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let out = self.out.clone();
        let whole_links = self.whole_links;
        Box::pin(async move {
            let text = match (&ring.room, whole_links) {
                (Some(room), false) => format!(
                    "{} (room shortened in logs: configure a [[notify]] channel, or run on a \
                     terminal, to get the link)",
                    ring.text().replace(room.as_str(), &room.redacted())
                ),
                _ => ring.text(),
            };
            let mut out = out
                .lock()
                .map_err(|_| NotifyError::Failed("console writer poisoned".into()))?;
            writeln!(out, "\n  🔔 {text}\n")?;
            out.flush()?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn prints_the_link_or_says_the_service_is_down() {
        let buf = Shared::default();
        let n = ConsoleNotifier::to_writer(Box::new(buf.clone()));
        let ring = Ring {
            at: SystemTime::now(),
            link: Some("https://h/?room=abc".into()),
            room: doorbell_protocol::RoomId::parse("abc").ok(),
            snapshot_jpeg: None,
            message: None,
        };
        n.notify(Arc::new(ring.clone())).await.unwrap();
        n.notify(Arc::new(Ring {
            link: None,
            room: None,
            ..ring
        }))
        .await
        .unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("Answer: https://h/?room=abc"), "{text}");
        assert!(text.contains("call service is unreachable"), "{text}");
    }

    #[tokio::test]
    async fn into_a_log_the_room_is_shortened() {
        let buf = Shared::default();
        let n = ConsoleNotifier::to_writer(Box::new(buf.clone())).shortening_links();
        let room = doorbell_protocol::RoomId::parse("6NOmSFGlsjC_uOSXOBP17A").unwrap();
        n.notify(Arc::new(Ring {
            at: SystemTime::now(),
            link: Some(format!("https://h/?room={}", room.as_str())),
            room: Some(room.clone()),
            snapshot_jpeg: None,
            message: None,
        }))
        .await
        .unwrap();
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains(room.as_str()), "{text}");
        assert!(text.contains(&room.redacted()), "{text}");
        assert!(text.contains("[[notify]]"), "{text}");
    }
}
