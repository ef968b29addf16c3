//! Where the event stream goes: JSON lines on stdout (`--events json`), the log, or a channel
//! (tests, the demo).

use crate::events::AgentEvent;
use doorbell_notify::HomeDevice;
use std::io::Write;
use std::sync::Arc;
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

/// Tells smart-home devices (MQTT) when a call is up, then passes every event on. A call is
/// up from `media_connected` to `call_end`.
pub struct DeviceEvents {
    pub devices: Vec<Arc<dyn HomeDevice>>,
    pub next: Box<dyn EventSink>,
}

impl EventSink for DeviceEvents {
    fn emit(&mut self, event: &AgentEvent) {
        let in_call = match event {
            AgentEvent::MediaConnected { .. } => Some(true),
            AgentEvent::CallEnd { .. } => Some(false),
            _ => None,
        };
        if let Some(on) = in_call {
            for device in &self.devices {
                device.in_call(on);
            }
        }
        self.next.emit(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EndReason;
    use std::sync::Mutex;

    #[derive(Default)]
    struct Device(Mutex<Vec<bool>>);

    impl HomeDevice for Device {
        fn start(&self, _presses: mpsc::Sender<()>) {}
        fn start_sending_only(&self) {}
        fn in_call(&self, on: bool) {
            self.0.lock().unwrap().push(on);
        }
    }

    #[test]
    fn devices_hear_a_call_start_and_end_and_every_event_goes_on() {
        let device = Arc::new(Device::default());
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut sink = DeviceEvents {
            devices: vec![Arc::clone(&device) as Arc<dyn HomeDevice>],
            next: Box::new(ChannelEvents { tx, also: None }),
        };
        for event in [
            AgentEvent::NewPeer,
            AgentEvent::MediaConnected { ice: None },
            AgentEvent::CallEnd {
                reason: EndReason::Hangup,
                audio_frames_received: 0,
                audio_frames_nonsilent: 0,
                video_frames_sent: 0,
            },
        ] {
            sink.emit(&event);
        }
        assert_eq!(*device.0.lock().unwrap(), [true, false]);
        let mut passed = 0;
        while rx.try_recv().is_ok() {
            passed += 1;
        }
        assert_eq!(passed, 3);
    }
}
