//! What the doorbell counts for Prometheus (`--metrics-listen` on the agent), learned from its
//! own event stream: presses, calls by how they ended, the ICE path each call took,
//! notifications by channel and outcome, whether signaling is up. The media's encode time and
//! skipped frames come from the peer (the binary adds them to the scrape).

use crate::event_sink::EventSink;
use crate::events::AgentEvent;
use doorbell_protocol::metrics_text::{Kind, MetricsText};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

#[derive(Debug, Default)]
pub struct AgentMetrics {
    presses: AtomicU64,
    rings: AtomicU64,
    /// Calls (rings) ended, by `call_end` reason.
    calls: Mutex<BTreeMap<String, u64>>,
    /// Calls whose media connected, by the selected candidate pair's type.
    ice_pairs: Mutex<BTreeMap<String, u64>>,
    /// Notifications, by (channel, `sent` | `failed`).
    notifications: Mutex<BTreeMap<(String, &'static str), u64>>,
    signaling_up: AtomicBool,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Each update is one step: a panic elsewhere leaves the counts consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    *locked(map).entry(key).or_default() += 1;
}

impl AgentMetrics {
    /// Counts what `event` tells.
    pub fn observe(&self, event: &AgentEvent) {
        match event {
            AgentEvent::Trigger { .. } => {
                self.presses.fetch_add(1, Ordering::Relaxed);
            }
            AgentEvent::Created { .. } => {
                self.rings.fetch_add(1, Ordering::Relaxed);
            }
            AgentEvent::CallEnd { reason, .. } => bump(&self.calls, reason.as_str().to_owned()),
            AgentEvent::MediaConnected { ice } => bump(
                &self.ice_pairs,
                ice.clone().unwrap_or_else(|| "unknown".into()),
            ),
            AgentEvent::NotifySent { channel } => {
                bump(&self.notifications, (channel.clone(), "sent"))
            }
            AgentEvent::NotifyFailed { channel, .. } => {
                bump(&self.notifications, (channel.clone(), "failed"))
            }
            AgentEvent::Connected => self.signaling_up.store(true, Ordering::Relaxed),
            AgentEvent::Disconnected => self.signaling_up.store(false, Ordering::Relaxed),
            _ => {}
        }
    }

    /// Appends the counts to a scrape.
    pub fn render(&self, m: &mut MetricsText) {
        m.single(
            "doorbell_agent_presses_total",
            Kind::Counter,
            "Presses of the bell (every trigger).",
            self.presses.load(Ordering::Relaxed) as f64,
        );
        m.single(
            "doorbell_agent_rings_total",
            Kind::Counter,
            "Rings: rooms the server opened for a press.",
            self.rings.load(Ordering::Relaxed) as f64,
        );
        let calls = locked(&self.calls);
        let labels: Vec<[(&str, &str); 1]> =
            calls.keys().map(|k| [("reason", k.as_str())]).collect();
        m.family(
            "doorbell_agent_calls_total",
            Kind::Counter,
            "Rings and calls ended, by reason (hangup: an answered call; no_answer: missed).",
            labels
                .iter()
                .zip(calls.values())
                .map(|(l, v)| (&l[..], *v as f64)),
        );
        drop(calls);
        let pairs = locked(&self.ice_pairs);
        let labels: Vec<[(&str, &str); 1]> = pairs.keys().map(|k| [("type", k.as_str())]).collect();
        m.family(
            "doorbell_agent_ice_pairs_total",
            Kind::Counter,
            "Calls whose media connected, by the selected ICE candidate pair's type (host, srflx, prflx, relay).",
            labels.iter().zip(pairs.values()).map(|(l, v)| (&l[..], *v as f64)),
        );
        drop(pairs);
        m.counters_by_pair(
            "doorbell_agent_notifications_total",
            "Notifications, by channel and outcome (sent, failed).",
            ["channel", "outcome"],
            &locked(&self.notifications),
        );
        m.single(
            "doorbell_agent_signaling_connected",
            Kind::Gauge,
            "1 while the signaling connection is up.",
            if self.signaling_up.load(Ordering::Relaxed) {
                1.0
            } else {
                0.0
            },
        );
    }
}

/// Counts every event, then passes it on.
pub struct MetricsEvents {
    pub metrics: Arc<AgentMetrics>,
    pub next: Box<dyn EventSink>,
}

impl EventSink for MetricsEvents {
    fn emit(&mut self, event: &AgentEvent) {
        self.metrics.observe(event);
        self.next.emit(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EndReason;

    fn end(reason: EndReason) -> AgentEvent {
        AgentEvent::CallEnd {
            reason,
            audio_frames_received: 0,
            audio_frames_nonsilent: 0,
            video_frames_sent: 0,
        }
    }

    #[test]
    fn calls_ice_paths_and_notifications_are_counted_from_the_events() {
        let metrics = AgentMetrics::default();
        for event in [
            AgentEvent::Connected,
            AgentEvent::Trigger { busy: false },
            AgentEvent::Created { room: "r".into() },
            AgentEvent::NotifySent {
                channel: "ntfy".into(),
            },
            AgentEvent::NotifyFailed {
                channel: "telegram".into(),
                reason: "x".into(),
            },
            AgentEvent::MediaConnected {
                ice: Some("relay".into()),
            },
            end(EndReason::Hangup),
            AgentEvent::Trigger { busy: false },
            AgentEvent::Created { room: "s".into() },
            end(EndReason::NoAnswer),
        ] {
            metrics.observe(&event);
        }
        let mut m = MetricsText::new();
        metrics.render(&mut m);
        let text = m.finish();
        for line in [
            "doorbell_agent_presses_total 2",
            "doorbell_agent_rings_total 2",
            "doorbell_agent_calls_total{reason=\"hangup\"} 1",
            "doorbell_agent_calls_total{reason=\"no_answer\"} 1",
            "doorbell_agent_ice_pairs_total{type=\"relay\"} 1",
            "doorbell_agent_notifications_total{channel=\"ntfy\",outcome=\"sent\"} 1",
            "doorbell_agent_notifications_total{channel=\"telegram\",outcome=\"failed\"} 1",
            "doorbell_agent_signaling_connected 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
    }
}
