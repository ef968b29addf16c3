//! The doorbell as an MQTT device (`[[notify]] kind = "mqtt"`): every ring as an event and
//! the visitor's photo, whether a call is up, the time of the last ring, a Ring button, and
//! its availability — announced to Home Assistant by MQTT discovery, usable from any MQTT tool.
//!
//! One long-lived connection (rumqttc: QoS 1, a persistent session, reconnecting with
//! backoff). A ring never waits for the broker. Each ring event is kept until the broker
//! delivers it back to us (we subscribe to our own event topic): a broker that restarts without
//! its sessions loses what was in flight, and those events are sent again when it is back;
//! the retained state (photo, last ring, call state) is said again at every connection.
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

use crate::notifier::{HomeDevice, Notifier, NotifyError, Ring};
use doorbell_protocol::Secret;
use doorbell_protocol::wall_clock::rfc3339_utc;
use futures_util::future::BoxFuture;
use rumqttc::{
    AsyncClient, ClientError, Event, EventLoop, LastWill, MqttOptions, Packet, QoS,
    TlsConfiguration, Transport,
};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// What the device has to say, kept so that a broker that lost it hears it again.
struct State {
    settings: MqttSettings,
    topics: Topics,
    in_call: AtomicBool,
    /// Ring events the broker has not confirmed yet (its echo on our own subscription), oldest
    /// first. A broker restarted without its sessions drops what was in flight; these are
    /// sent again when it is back.
    unconfirmed: Mutex<VecDeque<String>>,
    /// The latest photo and ring time (retained state: sending them again is harmless).
    snapshot: Mutex<Option<Arc<Vec<u8>>>>,
    last_ring: Mutex<Option<String>>,
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
                    in_call: AtomicBool::new(false),
                    unconfirmed: Mutex::new(VecDeque::new()),
                    snapshot: Mutex::new(None),
                    last_ring: Mutex::new(None),
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
                let mut unconfirmed = lock(&state.unconfirmed);
                if unconfirmed.len() >= QUEUE {
                    tracing::warn!(
                        "MQTT: the broker has been away for {QUEUE} rings; the oldest is dropped"
                    );
                    unconfirmed.pop_front();
                }
                unconfirmed.push_back(event.clone());
            }
            if let Some(jpeg) = &ring.snapshot_jpeg {
                *lock(&state.snapshot) = Some(Arc::clone(jpeg));
            }
            *lock(&state.last_ring) = Some(at);
            // Non-blocking: a broker that is down never holds up the ring. What cannot be
            // queued now is sent from `unconfirmed` and the retained state at reconnection.
            if let Err(error) = state.publish_ring(&client, event.clone()) {
                tracing::debug!(%error, "MQTT: the ring waits for the broker");
            }
            // Delivered means the broker has it. Waiting here holds up no other channel (each
            // runs on its own) and not the ring; the event stays queued either way, so this is
            // never retried (a retry would send it twice).
            let deadline = tokio::time::Instant::now() + CONFIRM_WAIT;
            loop {
                let confirmed = state.confirmations.notified();
                tokio::pin!(confirmed);
                confirmed.as_mut().enable();
                if !lock(&state.unconfirmed).contains(&event) {
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
        let mut slot = lock(&self.client);
        if slot.is_some() {
            return;
        }
        let options = match options(&self.state.settings, &self.state.topics) {
            Ok(options) => options,
            Err(error) => {
                tracing::error!(%error, "MQTT: cannot set up the connection");
                return;
            }
        };
        let (client, events) = AsyncClient::new(options, QUEUE);
        *slot = Some(client.clone());
        tokio::spawn(run(events, client, Arc::clone(&self.state), presses));
    }

    fn in_call(&self, on: bool) {
        self.state.in_call.store(on, Ordering::Relaxed);
        if let Some(client) = lock(&self.client).clone()
            && let Err(error) = client.try_publish(
                &self.state.topics.in_call,
                QoS::AtLeastOnce,
                true,
                on_off(on),
            )
        {
            // Sent again at reconnection from `in_call`.
            tracing::debug!(%error, "MQTT: the call state waits for the broker");
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "ON" } else { "OFF" }
}

fn options(settings: &MqttSettings, topics: &Topics) -> Result<MqttOptions, String> {
    let broker = &settings.broker;
    let mut options = MqttOptions::new(
        format!("doorbell-{}", settings.device_id),
        broker.host.clone(),
        broker.port,
    );
    options
        .set_keep_alive(Duration::from_secs(30))
        // A persistent session: the broker keeps our subscriptions and QoS 1 messages across
        // reconnects.
        .set_clean_session(false)
        .set_max_packet_size(MAX_PACKET, MAX_PACKET)
        .set_last_will(LastWill::new(
            &topics.availability,
            "offline",
            QoS::AtLeastOnce,
            true,
        ));
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

impl State {
    fn publish_ring(&self, client: &AsyncClient, event: String) -> Result<(), ClientError> {
        let topics = &self.topics;
        if let Some(jpeg) = lock(&self.snapshot).clone() {
            client.try_publish(&topics.snapshot, QoS::AtLeastOnce, true, jpeg.to_vec())?;
        }
        if let Some(at) = lock(&self.last_ring).clone() {
            client.try_publish(&topics.last_ring, QoS::AtLeastOnce, true, at.into_bytes())?;
        }
        client.try_publish(&topics.event, QoS::AtLeastOnce, false, event)
    }

    /// Everything said at a (re)connection: online, the subscriptions, the state, the
    /// discovery configs; and, when the broker kept no session for us, every ring event it
    /// has not confirmed.
    fn announce(&self, client: &AsyncClient, session_present: bool) -> Result<(), ClientError> {
        let topics = &self.topics;
        client.try_publish(&topics.availability, QoS::AtLeastOnce, true, "online")?;
        client.try_subscribe(&topics.ring_command, QoS::AtLeastOnce)?;
        // Our own ring events come back to us: the broker's word that it has them.
        client.try_subscribe(&topics.event, QoS::AtLeastOnce)?;
        let in_call = self.in_call.load(Ordering::Relaxed);
        client.try_publish(&topics.in_call, QoS::AtLeastOnce, true, on_off(in_call))?;
        if let Some(prefix) = &self.settings.discovery_prefix {
            for (topic, config) in discovery(&self.settings, topics, prefix) {
                client.try_publish(topic, QoS::AtLeastOnce, true, config.to_string())?;
            }
        }
        if !session_present {
            let unconfirmed: Vec<String> = lock(&self.unconfirmed).iter().cloned().collect();
            if let Some(last) = unconfirmed.last().cloned() {
                for event in &unconfirmed[..unconfirmed.len() - 1] {
                    client.try_publish(&topics.event, QoS::AtLeastOnce, false, event.clone())?;
                }
                self.publish_ring(client, last)?;
            }
        }
        Ok(())
    }

    /// The broker delivered one of our ring events back: it has it.
    fn confirmed(&self, event: &[u8]) {
        let mut unconfirmed = lock(&self.unconfirmed);
        if let Some(at) = unconfirmed.iter().position(|e| e.as_bytes() == event) {
            unconfirmed.remove(at);
            self.confirmations.notify_waiters();
        }
    }
}

/// Drives the connection for as long as the agent runs.
async fn run(
    mut events: EventLoop,
    client: AsyncClient,
    state: Arc<State>,
    presses: mpsc::Sender<()>,
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
                if let Err(error) = state.announce(&client, connack.session_present) {
                    tracing::warn!(%error, "MQTT: could not queue the announcement");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                if publish.topic == state.topics.event {
                    state.confirmed(&publish.payload);
                } else if publish.topic == state.topics.ring_command {
                    if publish.payload.as_ref() == PRESS_PAYLOAD.as_bytes() {
                        if presses.try_send(()).is_err() {
                            tracing::debug!("MQTT: a Ring press while the last one waits; dropped");
                        }
                    } else {
                        tracing::warn!("MQTT: ignored a Ring command that is not {PRESS_PAYLOAD}");
                    }
                }
            }
            Ok(_) => {}
            Err(error) => {
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
    let entity = |component: &str, object: &str, name: &str, mut config: Value| {
        if let Some(map) = config.as_object_mut() {
            map.insert("name".into(), json!(name));
            map.insert("unique_id".into(), json!(format!("{node}_{object}")));
            map.insert("object_id".into(), json!(format!("{node}_{object}")));
            map.insert("availability_topic".into(), json!(topics.availability));
            map.insert("device".into(), device.clone());
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
            "Ring",
            json!({
                "state_topic": topics.event,
                "event_types": ["ring"],
                "device_class": "doorbell",
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
            json!({ "command_topic": topics.ring_command, "payload_press": PRESS_PAYLOAD }),
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
}
