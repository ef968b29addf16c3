//! The doorbell as an MQTT device (`[[notify]] kind = "mqtt"`): every ring as an event and
//! the visitor's photo, whether a call is up, the time of the last ring, a Ring button, and
//! its availability — announced to Home Assistant by MQTT discovery, usable from any MQTT tool.
//!
//! One long-lived connection (rumqttc: QoS 1, a persistent session, reconnecting with
//! backoff). A ring never waits for the broker. Each ring event is kept until the broker
//! delivers it back to us (we subscribe to our own event topic): a broker that restarts without
//! its sessions loses what was in flight, and those events are sent again when it is back —
//! once each, whether or not the broker kept our session ([`Outbox`]); the retained state
//! (photo, last ring, call state) is said again at every connection. The Ring button takes
//! only presses made while we are connected (QoS 0, retained commands ignored).
//!
//! Topics, under `topic_prefix` (default `doorbell/<device id>`):
//!
//! | topic | payload | retained |
//! |---|---|---|
//! | `…/availability` | `online` / `offline` (the last will) | yes |
//! | `…/event` | `{"event_type": "ring", "url": …, "room": …, "at": RFC 3339}` | no |
//! | `…/snapshot` | the JPEG taken at the press | yes |
//! | `…/last_ring` | RFC 3339 time of the last press | yes |
//! | `…/in_call` | `ON` / `OFF` | yes |
//! | `…/ring/set` | `PRESS` rings the bell (the Ring button) | — |

use crate::endpoint::is_loopback_host;
use crate::notifier::{HomeDevice, Notifier, NotifyError, Ring};
use doorbell_protocol::Secret;
use doorbell_protocol::wall_clock::rfc3339_utc;
use futures_util::future::BoxFuture;
use rumqttc::{
    AsyncClient, ClientError, Event, EventLoop, LastWill, MqttOptions, Packet, Publish, QoS,
    TlsConfiguration, Transport,
};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::mpsc;

/// Messages waiting for the broker: a day of rings at a busy door, with their photos.
const QUEUE: usize = 256;
/// Reconnect backoff: from 1 s, doubling, at most 30 s.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The largest message accepted from or sent to the broker (a snapshot is bounded well below).
const MAX_PACKET: usize = 4 * 1024 * 1024;
/// How long a ring waits for the broker's confirmation before its channel reports it as not
/// delivered yet (it is still sent when the broker is back).
const CONFIRM_WAIT: Duration = Duration::from_secs(3);
/// What the Ring button's command topic must carry.
pub const PRESS_PAYLOAD: &str = "PRESS";

/// Where the broker is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub host: String,
    pub port: u16,
    pub tls: bool,
}

impl Broker {
    /// `mqtt://HOST[:PORT]` (1883) or `mqtts://HOST[:PORT]` (8883).
    pub fn parse(url: &str) -> Result<Broker, String> {
        let bad =
            || format!("{url:?} is not a broker URL; use mqtt://HOST:1883 or mqtts://HOST:8883");
        let (tls, rest) = if let Some(rest) = url.strip_prefix("mqtts://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("mqtt://") {
            (false, rest)
        } else {
            return Err(bad());
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') || rest.contains('@') {
            // Credentials belong in username and the password file, not the URL (it is logged).
            return Err(bad());
        }
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => {
                (host, port.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (rest, if tls { 8883 } else { 1883 }),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(bad());
        }
        Ok(Broker {
            host: host.to_owned(),
            port,
            tls,
        })
    }
}

/// Everything one MQTT channel is made from (the `[[notify]]` table, checked).
#[derive(Debug, Clone)]
pub struct MqttSettings {
    pub broker: Broker,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// Extra trusted CA for `mqtts://` (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Stable across restarts: names the client, the topics and the entities' unique ids.
    pub device_id: String,
    pub topic_prefix: String,
    /// `None`: no Home Assistant discovery.
    pub discovery_prefix: Option<String>,
}

/// The topics of one device.
#[derive(Debug, Clone)]
struct Topics {
    availability: String,
    event: String,
    snapshot: String,
    last_ring: String,
    in_call: String,
    ring_command: String,
}

impl Topics {
    fn new(prefix: &str) -> Self {
        Self {
            availability: format!("{prefix}/availability"),
            event: format!("{prefix}/event"),
            snapshot: format!("{prefix}/snapshot"),
            last_ring: format!("{prefix}/last_ring"),
            in_call: format!("{prefix}/in_call"),
            ring_command: format!("{prefix}/ring/set"),
        }
    }
}

/// The MQTT channel. Its client starts with [`HomeDevice::start`]; rings given before are
/// refused as retryable (the dispatcher tries again).
pub struct MqttNotifier {
    name: String,
    shared: Arc<Shared>,
}

struct Shared {
    client: Mutex<Option<AsyncClient>>,
    state: Arc<State>,
}

struct State {
    settings: MqttSettings,
    topics: Topics,
    /// Everything the device owes the broker. One lock for the outbox and the hand-off to the
    /// client, so that nothing is handed while the connection is down (see [`run`]).
    outbox: Mutex<Outbox>,
    /// Woken at every confirmation.
    confirmations: tokio::sync::Notify,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MqttNotifier {
    pub fn new(name: String, settings: MqttSettings) -> Result<Self, String> {
        if settings.broker.tls {
            // Fail at start, not at the first connection, when the CA file is no certificate.
            crate::http::tls_config(settings.ca_pem.as_deref())?;
        }
        let topics = Topics::new(&settings.topic_prefix);
        Ok(Self {
            name,
            shared: Arc::new(Shared {
                client: Mutex::new(None),
                state: Arc::new(State {
                    settings,
                    topics,
                    outbox: Mutex::new(Outbox::default()),
                    confirmations: tokio::sync::Notify::new(),
                }),
            }),
        })
    }
}

impl Notifier for MqttNotifier {
    fn channel(&self) -> String {
        self.name.clone()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let client = lock(&shared.client)
                .clone()
                .ok_or_else(|| NotifyError::retry("the MQTT client has not started yet"))?;
            let state = &shared.state;
            let at = rfc3339_utc(ring.at);
            let event = json!({
                "event_type": "ring",
                "url": ring.link,
                "room": ring.room.as_ref().map(|room| room.as_str().to_owned()),
                "at": at,
            })
            .to_string();
            {
                let mut outbox = lock(&state.outbox);
                if outbox.ring(event.clone(), ring.snapshot_jpeg.clone(), at) {
                    tracing::warn!(
                        "MQTT: the broker has been away for {QUEUE} rings; the oldest is dropped"
                    );
                }
                // Never blocks: a broker that is down never holds up the ring. While the
                // connection is down nothing is handed; the connection task sends it all
                // when the broker is back.
                state.flush(&mut outbox, &client);
            }
            // Delivered means the broker has it. Waiting here holds up no other channel (each
            // runs on its own) and not the ring; the event stays queued either way, so this is
            // never retried (a retry would send it twice).
            let deadline = tokio::time::Instant::now() + CONFIRM_WAIT;
            loop {
                let confirmed = state.confirmations.notified();
                tokio::pin!(confirmed);
                confirmed.as_mut().enable();
                if !lock(&state.outbox).is_unconfirmed(&event) {
                    return Ok(());
                }
                if tokio::time::timeout_at(deadline, confirmed).await.is_err() {
                    return Err(NotifyError::Failed(format!(
                        "the broker has not confirmed the ring within {}s; it is sent when the \
                         broker is back",
                        CONFIRM_WAIT.as_secs()
                    )));
                }
            }
        })
    }

    fn device(&self) -> Option<Arc<dyn HomeDevice>> {
        Some(Arc::clone(&self.shared) as Arc<dyn HomeDevice>)
    }
}

impl HomeDevice for Shared {
    fn start(&self, presses: mpsc::Sender<()>) {
        self.connect(Some(presses));
    }

    fn start_sending_only(&self) {
        self.connect(None);
    }

    fn in_call(&self, on: bool) {
        // The client's lock is never held while taking the outbox's (nor the other way round).
        let client = lock(&self.client).clone();
        let state = &self.state;
        let mut outbox = lock(&state.outbox);
        outbox.in_call(on);
        if let Some(client) = &client {
            state.flush(&mut outbox, client);
        }
    }
}

impl Shared {
    /// Starts the connection task: as the device (with `presses` for its Ring button), or,
    /// without, only to deliver rings.
    fn connect(&self, presses: Option<mpsc::Sender<()>>) {
        let mut slot = lock(&self.client);
        if slot.is_some() {
            return;
        }
        let broker = &self.state.settings.broker;
        if !broker.tls && !is_loopback_host(&broker.host) {
            // Allowed (a broker on the home network is the common case), but said: the link
            // in every ring opens the door camera.
            tracing::warn!(
                host = %broker.host,
                "MQTT without TLS: every ring's link crosses the network unencrypted and \
                 every client of the broker allowed to read doorbell topics can answer the \
                 door; use mqtts:// unless you trust that network and the broker's users"
            );
        }
        let device = presses.is_some();
        let options = match options(&self.state.settings, &self.state.topics, device) {
            Ok(options) => options,
            Err(error) => {
                tracing::error!(%error, "MQTT: cannot set up the connection");
                return;
            }
        };
        let (client, events) = AsyncClient::new(options, QUEUE);
        *slot = Some(client.clone());
        drop(slot);
        lock(&self.state.outbox).send_only = !device;
        tokio::spawn(run(events, client, Arc::clone(&self.state), presses));
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

/// The connection's options; `device`: as the device (its own session and last will), else
/// only to deliver rings beside a running doorbell (`--test-notify`), which must not take over
/// the doorbell's session or say it is offline when done.
fn options(settings: &MqttSettings, topics: &Topics, device: bool) -> Result<MqttOptions, String> {
    let broker = &settings.broker;
    let suffix = if device { "" } else { "-test" };
    let mut options = MqttOptions::new(
        format!("doorbell-{}{suffix}", settings.device_id),
        broker.host.clone(),
        broker.port,
    );
    options
        .set_keep_alive(Duration::from_secs(30))
        // The device's session is persistent: the broker keeps our subscriptions and QoS 1
        // messages across reconnects.
        .set_clean_session(!device)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET);
    if device {
        options.set_last_will(LastWill::new(
            &topics.availability,
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
    }
    if let Some(username) = &settings.username {
        let password = settings
            .password
            .as_ref()
            .map(|p| p.expose().to_owned())
            .unwrap_or_default();
        options.set_credentials(username.clone(), password);
    }
    if broker.tls {
        let tls = crate::http::tls_config(settings.ca_pem.as_deref())?;
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
            Arc::new(tls),
        )));
    }
    Ok(options)
}

/// One message the device owes the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Due {
    /// The latest photo (retained).
    Photo(Arc<Vec<u8>>),
    /// The time of the latest ring (retained).
    LastRing(String),
    /// Whether a call is up (retained).
    InCall(bool),
    /// A ring event (not retained).
    Event(String),
}

/// A ring event the broker has not confirmed yet.
#[derive(Debug)]
struct Pending {
    event: String,
    /// Given to the client during the current connection (it is then the client's, or the
    /// broker's session's, to deliver).
    handed: bool,
}

/// What the device owes the broker, and what of it the client already has: the decisions of
/// the channel, without I/O (the connection task and `notify` carry them out).
///
/// Ring events are kept until the broker delivers them back to us (we subscribe to our own
/// event topic). While the connection is down nothing is handed to the client: what the
/// client holds at a disconnection is exactly what it resends when the broker kept our
/// session, and what was lost when it did not. So at a reconnection only the events the
/// client does not hold are handed: with a kept session, the ones that came while the broker
/// was away; with a new one, every unconfirmed event. Each arrives once.
#[derive(Debug, Default)]
struct Outbox {
    connected: bool,
    /// Only delivering rings (`--test-notify`): the call state is the running doorbell's.
    send_only: bool,
    /// Unconfirmed ring events, oldest first.
    events: VecDeque<Pending>,
    photo: Option<Arc<Vec<u8>>>,
    last_ring: Option<String>,
    in_call: bool,
    /// The retained state not handed in this connection yet.
    photo_due: bool,
    in_call_due: bool,
}

impl Outbox {
    /// A ring: its event, its photo (if any) and its time. Returns true when the queue was
    /// full and the oldest event was dropped.
    fn ring(&mut self, event: String, photo: Option<Arc<Vec<u8>>>, at: String) -> bool {
        let full = self.events.len() >= QUEUE;
        if full {
            self.events.pop_front();
        }
        self.events.push_back(Pending {
            event,
            handed: false,
        });
        if photo.is_some() {
            self.photo = photo;
        }
        self.last_ring = Some(at);
        self.photo_due = true;
        full
    }

    fn in_call(&mut self, on: bool) {
        self.in_call = on;
        self.in_call_due = !self.send_only;
    }

    /// The broker accepted the connection. Every retained state is said again (a broker that
    /// restarted without persistence forgot it); without a kept session, every unconfirmed
    /// event is handed again.
    fn connected(&mut self, session_present: bool) {
        self.connected = true;
        self.photo_due = true;
        self.in_call_due = !self.send_only;
        if !session_present {
            for pending in &mut self.events {
                pending.handed = false;
            }
        }
    }

    fn disconnected(&mut self) {
        self.connected = false;
    }

    /// Whether anything waits to be handed over (cheap; asked after every packet).
    fn has_due(&self) -> bool {
        self.connected
            && (self.photo_due || self.in_call_due || self.events.iter().any(|p| !p.handed))
    }

    /// Hands what is due to `hand`, oldest first, photo and time before the events (an
    /// automation reacting to the event finds the picture already there). Stops at the first
    /// refusal (the client's queue is full): the rest is handed after the next packet.
    fn flush(&mut self, mut hand: impl FnMut(Due) -> bool) {
        if !self.connected {
            return;
        }
        if self.photo_due {
            if let Some(photo) = &self.photo
                && !hand(Due::Photo(Arc::clone(photo)))
            {
                return;
            }
            if let Some(at) = &self.last_ring
                && !hand(Due::LastRing(at.clone()))
            {
                return;
            }
            self.photo_due = false;
        }
        if self.in_call_due {
            if !hand(Due::InCall(self.in_call)) {
                return;
            }
            self.in_call_due = false;
        }
        for pending in self.events.iter_mut().filter(|p| !p.handed) {
            if !hand(Due::Event(pending.event.clone())) {
                return;
            }
            pending.handed = true;
        }
    }

    /// The broker delivered `event` back to us: it has it. true when it was ours.
    fn confirmed(&mut self, event: &[u8]) -> bool {
        match self.events.iter().position(|p| p.event.as_bytes() == event) {
            Some(at) => {
                self.events.remove(at);
                true
            }
            None => false,
        }
    }

    fn is_unconfirmed(&self, event: &str) -> bool {
        self.events.iter().any(|p| p.event == event)
    }
}

impl State {
    /// Hands what is due to `client` (see [`Outbox::flush`]).
    fn flush(&self, outbox: &mut Outbox, client: &AsyncClient) {
        let topics = &self.topics;
        outbox.flush(|due| {
            let handed = match due {
                Due::Photo(jpeg) => {
                    client.try_publish(&topics.snapshot, QoS::AtLeastOnce, true, jpeg.to_vec())
                }
                Due::LastRing(at) => {
                    client.try_publish(&topics.last_ring, QoS::AtLeastOnce, true, at)
                }
                Due::InCall(on) => {
                    client.try_publish(&topics.in_call, QoS::AtLeastOnce, true, on_off(on))
                }
                Due::Event(event) => {
                    client.try_publish(&topics.event, QoS::AtLeastOnce, false, event)
                }
            };
            if let Err(error) = &handed {
                tracing::debug!(%error, "MQTT: the client's queue is full; sent later");
            }
            handed.is_ok()
        });
    }

    /// What is said at every (re)connection before the state: online, the subscriptions and
    /// the discovery configs (all idempotent); only the echo subscription when `device` is
    /// false.
    fn announce(&self, client: &AsyncClient, device: bool) -> Result<(), ClientError> {
        let topics = &self.topics;
        // Our own ring events come back to us: the broker's word that it has them.
        client.try_subscribe(&topics.event, QoS::AtLeastOnce)?;
        if !device {
            return Ok(());
        }
        client.try_publish(&topics.availability, QoS::AtLeastOnce, true, "online")?;
        // QoS 0: the broker keeps no Ring presses for us while we are away (a press from an
        // hour ago must not ring when the doorbell comes back).
        client.try_subscribe(&topics.ring_command, QoS::AtMostOnce)?;
        if let Some(prefix) = &self.settings.discovery_prefix {
            for (topic, config) in discovery(&self.settings, topics, prefix) {
                client.try_publish(topic, QoS::AtLeastOnce, true, config.to_string())?;
            }
        }
        Ok(())
    }

    /// A message on one of our subscriptions.
    fn received(&self, publish: &Publish, presses: Option<&mpsc::Sender<()>>) {
        let topics = &self.topics;
        if publish.topic == topics.event {
            if lock(&self.outbox).confirmed(&publish.payload) {
                self.confirmations.notify_waiters();
            }
        } else if let Some(presses) = presses
            && publish.topic == topics.ring_command
        {
            if publish.retain {
                // A retained command would ring at every reconnection.
                tracing::warn!(
                    topic = %topics.ring_command,
                    "MQTT: ignored a retained Ring command; publish it without retain (and \
                     clear the retained one with an empty retained message)"
                );
            } else if publish.payload.as_ref() == PRESS_PAYLOAD.as_bytes() {
                if presses.try_send(()).is_err() {
                    tracing::debug!("MQTT: a Ring press while the last ones wait; dropped");
                }
            } else {
                tracing::warn!("MQTT: ignored a Ring command that is not {PRESS_PAYLOAD}");
            }
        }
    }
}

/// Drives the connection for as long as the agent runs.
async fn run(
    mut events: EventLoop,
    client: AsyncClient,
    state: Arc<State>,
    presses: Option<mpsc::Sender<()>>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut was_down = false;
    let broker = state.settings.broker.host.clone();
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(connack))) => {
                backoff = BACKOFF_MIN;
                tracing::info!(%broker, again = was_down, "MQTT: connected");
                was_down = false;
                let mut outbox = lock(&state.outbox);
                outbox.connected(connack.session_present);
                if let Err(error) = state.announce(&client, presses.is_some()) {
                    tracing::warn!(%error, "MQTT: could not queue the announcement");
                }
                state.flush(&mut outbox, &client);
            }
            Ok(event) => {
                if let Event::Incoming(Packet::Publish(publish)) = &event {
                    state.received(publish, presses.as_ref());
                }
                // What the client's full queue refused earlier goes now.
                let mut outbox = lock(&state.outbox);
                if outbox.has_due() {
                    state.flush(&mut outbox, &client);
                }
            }
            Err(error) => {
                {
                    let mut outbox = lock(&state.outbox);
                    outbox.disconnected();
                    // `poll` has moved what the client held into its resend list; this also
                    // takes what was handed between that and `disconnected` above. From here
                    // on nothing is handed until the broker is back.
                    events.clean();
                }
                if !was_down {
                    tracing::warn!(
                        %error,
                        %broker,
                        "MQTT: the broker is unreachable; retrying (rings wait for it)"
                    );
                }
                was_down = true;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Home Assistant MQTT discovery: one retained config per entity, all under one device.
/// Each platform's keys as Home Assistant documents them (`event`: `state_topic`,
/// `event_types`; `image`: `image_topic`, `content_type`; `binary_sensor`/`sensor`:
/// `state_topic`; `button`: `command_topic`); the entity id is suggested with
/// `default_entity_id` (`object_id` is deprecated since Home Assistant 2025.10).
fn discovery(settings: &MqttSettings, topics: &Topics, prefix: &str) -> Vec<(String, Value)> {
    let id = &settings.device_id;
    let node = format!("doorbell_{id}");
    let device = json!({
        "identifiers": [node],
        "name": format!("Doorbell {id}"),
        "model": "Doorbell agent",
        "manufacturer": "Doorbell (self-hosted)",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    // Who published the config: Home Assistant names it in its logs.
    let origin = json!({
        "name": "doorbell",
        "sw_version": env!("CARGO_PKG_VERSION"),
    });
    let entity = |component: &str, object: &str, name: &str, mut config: Value| {
        if let Some(map) = config.as_object_mut() {
            map.insert("name".into(), json!(name));
            map.insert("unique_id".into(), json!(format!("{node}_{object}")));
            map.insert(
                "default_entity_id".into(),
                json!(format!("{component}.{node}_{object}")),
            );
            map.insert("availability_topic".into(), json!(topics.availability));
            map.insert("device".into(), device.clone());
            map.insert("origin".into(), origin.clone());
        }
        (
            format!("{prefix}/{component}/{node}/{object}/config"),
            config,
        )
    };
    vec![
        entity(
            "event",
            "ring",
            "Doorbell",
            json!({
                "state_topic": topics.event,
                "event_types": ["ring"],
                "device_class": "doorbell",
                "qos": 1,
            }),
        ),
        entity(
            "image",
            "snapshot",
            "Visitor",
            json!({ "image_topic": topics.snapshot, "content_type": "image/jpeg" }),
        ),
        entity(
            "binary_sensor",
            "in_call",
            "In call",
            json!({ "state_topic": topics.in_call, "payload_on": "ON", "payload_off": "OFF" }),
        ),
        entity(
            "sensor",
            "last_ring",
            "Last ring",
            json!({ "state_topic": topics.last_ring, "device_class": "timestamp" }),
        ),
        entity(
            "button",
            "ring_button",
            "Ring",
            json!({
                "command_topic": topics.ring_command,
                "payload_press": PRESS_PAYLOAD,
                "retain": false,
            }),
        ),
    ]
}

/// A device id from the host name: lower case letters, digits, `-` and `_` only (topics and
/// unique ids), `doorbell` when there is none.
pub fn default_device_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default();
    sanitize_device_id(&host).unwrap_or_else(|| "doorbell".to_owned())
}

/// `text` as a device id, or `None` when nothing usable is left.
pub fn sanitize_device_id(text: &str) -> Option<String> {
    let id: String = text
        .trim()
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    (!id.is_empty() && id.chars().any(|c| c.is_ascii_alphanumeric())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls_parse_with_default_ports_and_refuse_the_rest() {
        assert_eq!(
            Broker::parse("mqtt://broker.lan"),
            Ok(Broker {
                host: "broker.lan".into(),
                port: 1883,
                tls: false
            })
        );
        assert_eq!(
            Broker::parse("mqtts://10.0.0.2:9999").map(|b| (b.port, b.tls)),
            Ok((9999, true))
        );
        assert_eq!(
            Broker::parse("mqtt://[::1]:1884").map(|b| b.host),
            Ok("::1".to_owned())
        );
        for bad in [
            "http://broker",
            "mqtt://",
            "mqtt://host:notaport",
            "mqtt://user:pw@host",
            "mqtt://host/topic",
            "mqtt://host:0",
        ] {
            assert!(Broker::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn device_ids_are_topic_safe() {
        assert_eq!(
            sanitize_device_id("Front-Door.local\n"),
            Some("front-door_local".into())
        );
        assert_eq!(sanitize_device_id("  "), None);
        assert_eq!(sanitize_device_id("#+/"), None);
    }

    #[test]
    fn discovery_names_one_device_with_stable_unique_ids() {
        let settings = MqttSettings {
            broker: Broker::parse("mqtt://b").unwrap(),
            username: None,
            password: None,
            ca_pem: None,
            device_id: "front".into(),
            topic_prefix: "doorbell/front".into(),
            discovery_prefix: Some("homeassistant".into()),
        };
        let topics = Topics::new(&settings.topic_prefix);
        let configs = discovery(&settings, &topics, "homeassistant");
        let ids: Vec<&str> = configs
            .iter()
            .filter_map(|(_, c)| c["unique_id"].as_str())
            .collect();
        assert_eq!(
            ids,
            [
                "doorbell_front_ring",
                "doorbell_front_snapshot",
                "doorbell_front_in_call",
                "doorbell_front_last_ring",
                "doorbell_front_ring_button"
            ]
        );
        assert_eq!(
            configs[0].0,
            "homeassistant/event/doorbell_front/ring/config"
        );
        assert!(
            configs
                .iter()
                .all(|(_, c)| c["device"]["identifiers"][0] == "doorbell_front")
        );
    }

    /// What a flush hands, as short labels.
    fn flushed(outbox: &mut Outbox) -> Vec<String> {
        let mut handed = Vec::new();
        outbox.flush(|due| {
            handed.push(match due {
                Due::Photo(_) => "photo".to_owned(),
                Due::LastRing(at) => format!("last_ring {at}"),
                Due::InCall(on) => format!("in_call {on}"),
                Due::Event(event) => event,
            });
            true
        });
        handed
    }

    #[test]
    fn nothing_is_handed_while_the_broker_is_away_and_all_of_it_once_it_is_back() {
        let mut outbox = Outbox::default();
        outbox.ring("e1".into(), Some(Arc::new(vec![0xFF, 0xD8])), "t1".into());
        assert!(flushed(&mut outbox).is_empty(), "not connected");
        outbox.connected(true);
        assert_eq!(
            flushed(&mut outbox),
            ["photo", "last_ring t1", "in_call false", "e1"]
        );
        assert!(flushed(&mut outbox).is_empty(), "handed once");
        assert!(!outbox.has_due());
    }

    #[test]
    fn with_a_kept_session_what_the_client_holds_is_not_handed_again() {
        let mut outbox = Outbox::default();
        outbox.connected(true);
        outbox.ring("e1".into(), None, "t1".into());
        flushed(&mut outbox);
        outbox.disconnected();
        outbox.ring("e2".into(), None, "t2".into());
        outbox.connected(true);
        // e1 is in the client's resend list; e2 came while the broker was away.
        assert_eq!(
            flushed(&mut outbox),
            ["last_ring t2", "in_call false", "e2"]
        );
    }

    #[test]
    fn without_a_kept_session_every_unconfirmed_event_is_handed_again() {
        let mut outbox = Outbox::default();
        outbox.connected(true);
        outbox.ring("e1".into(), None, "t1".into());
        outbox.ring("e2".into(), None, "t2".into());
        flushed(&mut outbox);
        assert!(outbox.confirmed(b"e1"));
        outbox.disconnected();
        outbox.connected(false);
        assert_eq!(
            flushed(&mut outbox),
            ["last_ring t2", "in_call false", "e2"]
        );
        assert!(outbox.is_unconfirmed("e2"));
        assert!(!outbox.is_unconfirmed("e1"));
        assert!(!outbox.confirmed(b"someone else's"));
    }

    #[test]
    fn a_full_client_queue_hands_the_rest_after_the_next_packet() {
        let mut outbox = Outbox::default();
        outbox.connected(true);
        flushed(&mut outbox);
        outbox.ring("e1".into(), None, "t1".into());
        outbox.ring("e2".into(), None, "t2".into());
        let mut room = 2; // last ring and e1
        outbox.flush(|_| {
            room -= 1;
            room >= 0
        });
        assert!(outbox.has_due());
        assert_eq!(flushed(&mut outbox), ["e2"]);
    }

    #[test]
    fn the_call_state_is_said_when_it_changes_and_at_every_connection() {
        let mut outbox = Outbox::default();
        outbox.in_call(true);
        assert!(!outbox.has_due(), "not connected");
        outbox.connected(false);
        assert_eq!(flushed(&mut outbox), ["in_call true"]);
        outbox.in_call(false);
        assert_eq!(flushed(&mut outbox), ["in_call false"]);
        outbox.disconnected();
        outbox.connected(true);
        assert_eq!(flushed(&mut outbox), ["in_call false"]);
    }

    #[test]
    fn a_broker_away_for_too_long_loses_the_oldest_ring_not_the_newest() {
        let mut outbox = Outbox::default();
        for i in 0..QUEUE {
            assert!(!outbox.ring(format!("e{i}"), None, "t".into()));
        }
        assert!(outbox.ring("newest".into(), None, "t".into()));
        assert!(!outbox.is_unconfirmed("e0"));
        assert!(outbox.is_unconfirmed("newest"));
    }
}
