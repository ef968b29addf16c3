//! Where the event stream goes: JSON lines on stdout (`--events json`), the log, or a channel
//! (tests, the demo).

use crate::events::AgentEvent;
use std::io::Write;
use std::time::SystemTime;
use tokio::sync::mpsc;

pub trait EventSink: Send + 'static {
    fn emit(&mut self, event: &AgentEvent);
}

/// One JSON object per line, flushed at once so a reader sees each state change as it happens.
pub struct JsonLines<W: Write + Send + 'static>(pub W);

impl<W: Write + Send + 'static> EventSink for JsonLines<W> {
    fn emit(&mut self, event: &AgentEvent) {
        let line = event.to_json_line(SystemTime::now());
        // A closed stdout (the reader went away) must not stop the doorbell.
        let _ = writeln!(self.0, "{line}").and_then(|()| self.0.flush());
    }
}

/// Events as log lines (the default without `--events json`).
pub struct LogEvents;

impl EventSink for LogEvents {
    fn emit(&mut self, event: &AgentEvent) {
        match event {
            AgentEvent::Error { message } => tracing::warn!(event = event.name(), "{message}"),
            AgentEvent::Created { .. } | AgentEvent::Notified { .. } => {
                // These carry the room id, a secret: the console notifier shows the link.
                tracing::info!(event = event.name(), "event")
            }
            other => tracing::info!(event = other.name(), "{other:?}"),
        }
    }
}

/// Sends events to a channel, and on to another sink if given.
pub struct ChannelEvents {
    pub tx: mpsc::UnboundedSender<AgentEvent>,
    pub also: Option<Box<dyn EventSink>>,
}

impl EventSink for ChannelEvents {
    fn emit(&mut self, event: &AgentEvent) {
        let _ = self.tx.send(event.clone());
        if let Some(next) = &mut self.also {
            next.emit(event);
        }
    }
}
