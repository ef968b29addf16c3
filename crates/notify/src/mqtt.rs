//! The doorbell as an MQTT device (`[[notify]] kind = "mqtt"`): every ring as an event and
//! the visitor's photo, whether a call is up, the time of the last ring, a Ring button, and
//! its availability — announced to Home Assistant by MQTT discovery, usable from any MQTT tool.
//!
//! One long-lived connection (rumqttc: QoS 1, a persistent session, reconnecting with
//! backoff). A ring is handed to the client's queue and never waits for the broker: while the
//! broker is down the messages wait in the queue and go out when it is back.
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
use crate::wall_clock::rfc3339_utc;
use doorbell_protocol::Secret;
use futures_util::future::BoxFuture;
use rumqttc::{
    AsyncClient, ClientError, Event, EventLoop, LastWill, MqttOptions, Packet, QoS,
    TlsConfiguration, Transport,
};
use serde_json::{Value, json};
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
        let bad = || {
            format!("{url:?} is not a broker URL; use mqtt://HOST:1883 or mqtts://HOST:8883")
        };
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
    settings: MqttSettings,
    topics: Topics,
    client: Mutex<Option<AsyncClient>>,
    in_call: Arc<AtomicBool>,
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
                settings,
                topics,
                client: Mutex::new(None),
                in_call: Arc::new(AtomicBool::new(false)),
            }),
        })
    }
}

fn publish_error(error: ClientError) -> NotifyError {
    NotifyError::retry(format!("the MQTT queue is full or closed: {error}"))
}

impl Notifier for MqttNotifier {
    fn channel(&self) -> String {
        self.name.clone()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move {
            let client = shared
                .client
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone()
                .ok_or_else(|| NotifyError::retry("the MQTT client has not started yet"))?;
            let topics = &shared.topics;
            let at = rfc3339_utc(ring.at);
            let event = json!({
                "event_type": "ring",
                "url": ring.link,
                "room": ring.room.as_ref().map(|room| room.as_str().to_owned()),
                "at": at,
            });
            // Non-blocking: a broker that is down never holds up the ring; the queue waits.
            if let Some(jpeg) = &ring.snapshot_jpeg {
                client
                    .try_publish(&topics.snapshot, QoS::AtLeastOnce, true, jpeg.to_vec())
                    .map_err(publish_error)?;
            }
            client
                .try_publish(&topics.last_ring, QoS::AtLeastOnce, true, at.into_bytes())
                .map_err(publish_error)?;
            client
                .try_publish(&topics.event, QoS::AtLeastOnce, false, event.to_string())
                .map_err(publish_error)?;
            Ok(())
        })
    }

    fn device(&self) -> Option<Arc<dyn HomeDevice>> {
        Some(Arc::clone(&self.shared) as Arc<dyn HomeDevice>)
    }
}

impl HomeDevice for Shared {
    fn start(&self, presses: mpsc::Sender<()>) {
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_some() {
            return;
        }
        let options = match options(&self.settings, &self.topics) {
            Ok(options) => options,
            Err(error) => {
                tracing::error!(%error, "MQTT: cannot set up the connection");
                return;
            }
        };
        let (client, events) = AsyncClient::new(options, QUEUE);
        *slot = Some(client.clone());
        let announce = Announce {
            client,
            settings: self.settings.clone(),
            topics: self.topics.clone(),
            in_call: Arc::clone(&self.in_call),
        };
        tokio::spawn(run(events, announce, presses));
    }

    fn in_call(&self, on: bool) {
        self.in_call.store(on, Ordering::Relaxed);
        let client = self
            .client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(client) = client
            && let Err(error) =
                client.try_publish(&self.topics.in_call, QoS::AtLeastOnce, true, on_off(on))
        {
            tracing::warn!(%error, "MQTT: could not queue the call state");
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
        // A persistent session: the broker keeps our subscription and QoS 1 messages across
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

/// What is published at every (re)connection.
struct Announce {
    client: AsyncClient,
    settings: MqttSettings,
    topics: Topics,
    in_call: Arc<AtomicBool>,
}

impl Announce {
    fn publish(&self) -> Result<(), ClientError> {
        let topics = &self.topics;
        self.client
            .try_publish(&topics.availability, QoS::AtLeastOnce, true, "online")?;
        self.client.try_subscribe(&topics.ring_command, QoS::AtLeastOnce)?;
        self.client.try_publish(
            &topics.in_call,
            QoS::AtLeastOnce,
            true,
            on_off(self.in_call.load(Ordering::Relaxed)),
        )?;
        if let Some(prefix) = &self.settings.discovery_prefix {
            for (topic, config) in discovery(&self.settings, topics, prefix) {
                self.client
                    .try_publish(topic, QoS::AtLeastOnce, true, config.to_string())?;
            }
        }
        Ok(())
    }
}

/// Drives the connection for as long as the agent runs.
async fn run(mut events: EventLoop, announce: Announce, presses: mpsc::Sender<()>) {
    let mut backoff = BACKOFF_MIN;
    let mut was_down = false;
    loop {
        match events.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_MIN;
                if was_down {
                    tracing::info!(broker = %announce.settings.broker.host, "MQTT: connected again");
                } else {
                    tracing::info!(broker = %announce.settings.broker.host, "MQTT: connected");
                }
                was_down = false;
                // The broker may have lost retained messages (restarted without persistence):
                // say everything again at every connection.
                if let Err(error) = announce.publish() {
                    tracing::warn!(%error, "MQTT: could not queue the announcement");
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish)))
                if publish.topic == announce.topics.ring_command =>
            {
                if publish.payload.as_ref() == PRESS_PAYLOAD.as_bytes() {
                    if presses.try_send(()).is_err() {
                        tracing::debug!("MQTT: a Ring press while the last one waits; dropped");
                    }
                } else {
                    tracing::warn!(
                        topic = %publish.topic,
                        "MQTT: ignored a command that is not {PRESS_PAYLOAD}"
                    );
                }
            }
            Ok(_) => {}
            Err(error) => {
                if !was_down {
                    tracing::warn!(
                        %error,
                        broker = %announce.settings.broker.host,
                        "MQTT: the broker is unreachable; retrying (rings wait in the queue)"
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
fn discovery(
    settings: &MqttSettings,
    topics: &Topics,
    prefix: &str,
) -> Vec<(String, Value)> {
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
        (format!("{prefix}/{component}/{node}/{object}/config"), config)
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
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
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
        assert_eq!(Broker::parse("mqtts://10.0.0.2:9999").map(|b| (b.port, b.tls)), Ok((9999, true)));
        assert_eq!(Broker::parse("mqtt://[::1]:1884").map(|b| b.host), Ok("::1".to_owned()));
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
        assert_eq!(sanitize_device_id("Front-Door.local\n"), Some("front-door_local".into()));
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
        assert_eq!(configs[0].0, "homeassistant/event/doorbell_front/ring/config");
        assert!(configs.iter().all(|(_, c)| c["device"]["identifiers"][0] == "doorbell_front"));
    }
}
