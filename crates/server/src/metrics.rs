//! What the server counts for Prometheus (`--metrics-listen`): rings and their outcomes,
//! signaling messages, refused connections; gauges (connections, rooms, memory) are read from
//! the hub at scrape time. Counting is atomics and one small map, so it costs the signaling
//! path nothing measurable; the text is made only when scraped.

use doorbell_protocol::RoomId;
use doorbell_protocol::metrics_text::{CONTENT_TYPE, Kind, MetricsText};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// Where a ring is: what decides, when its room ends, whether it was missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Ringing,
    Answered,
    Started,
}

/// The rings' outcomes as plain data: a room opened by a doorbell rings; the owner joining
/// answers it; the owner's first offer starts the call; a room that ends still ringing was
/// missed.
#[derive(Debug, Default)]
pub(crate) struct CallTally {
    phases: HashMap<RoomId, Phase>,
    pub rings: u64,
    pub answered: u64,
    pub started: u64,
    pub missed: u64,
}

impl CallTally {
    pub fn created(&mut self, room: &RoomId) {
        self.rings += 1;
        self.phases.insert(room.clone(), Phase::Ringing);
    }

    pub fn joined(&mut self, room: &RoomId) {
        if let Some(phase @ Phase::Ringing) = self.phases.get_mut(room) {
            *phase = Phase::Answered;
            self.answered += 1;
        }
    }

    /// An offer relayed in `room`; only the first one after the answer starts the call (later
    /// ones are ICE restarts).
    pub fn offered(&mut self, room: &RoomId) {
        if let Some(phase @ Phase::Answered) = self.phases.get_mut(room) {
            *phase = Phase::Started;
            self.started += 1;
        }
    }

    pub fn ended(&mut self, room: &RoomId) {
        if self.phases.remove(room) == Some(Phase::Ringing) {
            self.missed += 1;
        }
    }
}

/// The server's counters. One per server, shared by the hub and the accept loop.
#[derive(Debug, Default)]
pub struct ServerMetrics {
    calls: Mutex<CallTally>,
    /// Signaling messages received, by event name (`invalid` for what did not parse).
    messages: Mutex<BTreeMap<String, u64>>,
    /// `error` events sent, by code.
    errors: Mutex<BTreeMap<String, u64>>,
    /// Connections refused, by reason (the error code, or `tcp_limit` before TLS).
    rejected: Mutex<BTreeMap<String, u64>>,
    /// Notifications the server sends itself (Web Push), by channel and outcome.
    notifications: Mutex<BTreeMap<(String, &'static str), u64>>,
    /// Connections closed for idling without a token or a room.
    pub(crate) idle_closed: AtomicU64,
}

fn locked<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update is a single step: a panic elsewhere leaves the numbers consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
    let mut map = locked(map);
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

impl ServerMetrics {
    pub(crate) fn calls(&self) -> MutexGuard<'_, CallTally> {
        locked(&self.calls)
    }

    pub(crate) fn message(&self, event: &str) {
        bump(&self.messages, event);
    }

    pub(crate) fn error_sent(&self, code: &str) {
        bump(&self.errors, code);
    }

    pub(crate) fn rejected(&self, reason: &str) {
        bump(&self.rejected, reason);
    }

    /// One notification's outcome: delivered (`sent`) or given up (`failed`).
    pub(crate) fn notification(&self, channel: &str, delivered: bool) {
        let outcome = if delivered { "sent" } else { "failed" };
        *locked(&self.notifications)
            .entry((channel.to_owned(), outcome))
            .or_default() += 1;
    }

    /// Appends the counters to a scrape.
    pub(crate) fn render(&self, m: &mut MetricsText) {
        {
            let calls = self.calls();
            let counters = [
                (
                    "doorbell_rings_total",
                    "Rings: rooms opened by a doorbell.",
                    calls.rings,
                ),
                (
                    "doorbell_calls_answered_total",
                    "Rings an owner answered (joined the room).",
                    calls.answered,
                ),
                (
                    "doorbell_calls_started_total",
                    "Answered rings whose call was set up (the owner's first offer relayed).",
                    calls.started,
                ),
                (
                    "doorbell_calls_missed_total",
                    "Rings whose room ended before anyone answered.",
                    calls.missed,
                ),
            ];
            for (name, help, value) in counters {
                m.single(name, Kind::Counter, help, value as f64);
            }
        }
        let labeled = [
            (
                "doorbell_signaling_messages_total",
                "Signaling messages received, by event (invalid: did not parse).",
                "event",
                &self.messages,
            ),
            (
                "doorbell_signaling_errors_total",
                "Error events sent to clients, by code.",
                "code",
                &self.errors,
            ),
            (
                "doorbell_rejected_connections_total",
                "Connections refused, by reason (tcp_limit: before TLS).",
                "reason",
                &self.rejected,
            ),
        ];
        for (name, help, label, map) in labeled {
            let map = locked(map);
            let labels: Vec<[(&str, &str); 1]> =
                map.keys().map(|k| [(label, k.as_str())]).collect();
            m.family(
                name,
                Kind::Counter,
                help,
                labels
                    .iter()
                    .zip(map.values())
                    .map(|(l, v)| (&l[..], *v as f64)),
            );
        }
        m.counters_by_pair(
            "doorbell_notifications_total",
            "Notifications the server sends itself (Web Push), by channel and outcome.",
            ["channel", "outcome"],
            &locked(&self.notifications),
        );
        m.single(
            "doorbell_idle_connections_closed_total",
            Kind::Counter,
            "Connections closed after idling without the doorbell token or a room.",
            self.idle_closed.load(Ordering::Relaxed) as f64,
        );
    }
}

/// The process's resident memory, in bytes (Linux: `VmRSS` of `/proc/self/status`).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_rss(&status)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Adds the process's memory to a scrape.
pub fn render_process(m: &mut MetricsText) {
    if let Some(bytes) = resident_bytes() {
        m.single(
            "process_resident_memory_bytes",
            Kind::Gauge,
            "Resident memory size in bytes.",
            bytes as f64,
        );
    }
}

/// Makes one scrape's text.
pub type Render = Arc<dyn Fn() -> String + Send + Sync>;

/// Binds the metrics port; the caller spawns [`serve`] with the listener.
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}

/// Serves `GET /metrics` over plain HTTP (what Prometheus scrapes; put it on a private
/// address) until the task is dropped. Anything else is 404.
pub async fn serve(listener: tokio::net::TcpListener, render: Render) -> std::io::Result<()> {
    use axum::http::header;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let render = render.clone();
            async move { ([(header::CONTENT_TYPE, CONTENT_TYPE)], render()) }
        }),
    );
    axum::serve(listener, app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomId {
        RoomId::parse(name).unwrap()
    }

    #[test]
    fn a_ring_is_missed_only_if_it_ends_unanswered_and_restarts_do_not_start_it_twice() {
        let mut t = CallTally::default();
        let (a, b) = (room("a"), room("b"));
        t.created(&a);
        t.created(&b);
        t.offered(&a);
        assert_eq!(t.started, 0, "no offer counts before the answer");
        t.joined(&a);
        t.offered(&a);
        t.offered(&a);
        t.joined(&a);
        t.ended(&a);
        t.ended(&b);
        t.ended(&b);
        assert_eq!((t.rings, t.answered, t.started, t.missed), (2, 1, 1, 1));
        assert!(t.phases.is_empty());
    }

    #[test]
    fn notification_outcomes_are_counted_by_channel() {
        let metrics = ServerMetrics::default();
        metrics.notification("web_push", true);
        metrics.notification("web_push", true);
        metrics.notification("web_push", false);
        let mut m = MetricsText::new();
        metrics.render(&mut m);
        let text = m.finish();
        for line in [
            "doorbell_notifications_total{channel=\"web_push\",outcome=\"sent\"} 2",
            "doorbell_notifications_total{channel=\"web_push\",outcome=\"failed\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
    }

    #[test]
    fn resident_memory_is_read_from_vm_rss_in_bytes() {
        assert_eq!(
            parse_vm_rss("Name:\tx\nVmRSS:\t   2048 kB\nVmSwap: 0 kB\n"),
            Some(2048 * 1024)
        );
        assert_eq!(parse_vm_rss("Name: x\n"), None);
        assert!(resident_bytes().is_some_and(|b| b > 0));
    }
}
