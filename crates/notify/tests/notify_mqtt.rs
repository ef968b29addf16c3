//! The MQTT channel against a real broker (Debian's `mosquitto`, started here on a free port):
//! Home Assistant discovery, a ring's event and photo, the Ring button, a broker that goes away
//! and comes back, the last will, and bad config.

use doorbell_notify::{HomeDevice, Notifier, Ring, build_notifiers_with_env, dispatch};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::collections::BTreeMap;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);

/// A mosquitto on 127.0.0.1:`port`, killed on drop.
struct Broker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    setup: Setup,
}

/// How a test broker is set up.
#[derive(Clone, Default)]
struct Setup {
    /// Only these users (name, password) may connect; anyone when empty.
    users: Vec<(&'static str, &'static str)>,
    /// Keeps sessions and retained messages across a restart (in its directory).
    persistence: bool,
    /// TLS with this certificate and key (PEM).
    tls: Option<(String, String)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Broker {
    fn start() -> Broker {
        Broker::with(Setup::default())
    }

    fn with(setup: Setup) -> Broker {
        Broker::start_on(free_port(), tempfile::tempdir().expect("tempdir"), setup)
    }

    fn start_on(port: u16, dir: tempfile::TempDir, setup: Setup) -> Broker {
        // mosquitto started as root runs as user `mosquitto`: it must be able to write its
        // database and reread the password file there.
        open_to_all(dir.path(), 0o777);
        let mut conf = format!("listener {port} 127.0.0.1\n");
        if setup.persistence {
            conf += &format!(
                "persistence true\npersistence_location {}/\n",
                dir.path().display()
            );
        } else {
            conf += "persistence false\n";
        }
        if setup.users.is_empty() {
            conf += "allow_anonymous true\n";
        } else {
            let file = write_users(dir.path(), &setup.users);
            conf += &format!("allow_anonymous false\npassword_file {}\n", file.display());
        }
        if let Some((cert, key)) = &setup.tls {
            let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            std::fs::write(&cert_path, cert).expect("write cert");
            std::fs::write(&key_path, key).expect("write key");
            conf += &format!(
                "certfile {}\nkeyfile {}\n",
                cert_path.display(),
                key_path.display()
            );
        }
        let conf_path = dir.path().join("mosquitto.conf");
        std::fs::write(&conf_path, conf).expect("write conf");
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto runs: apt-get install mosquitto (.ci/run does)");
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Broker {
            child,
            port,
            dir,
            setup,
        }
    }

    /// Lets only `users` in from now on (mosquitto rereads its password file on SIGHUP).
    fn set_users(&mut self, users: &[(&'static str, &'static str)]) {
        write_users(self.dir.path(), users);
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGHUP to mosquitto");
    }

    /// Stops the broker (killed, or stopped by its service manager when it persists);
    /// `restart` brings it back on the same port, with what it persisted if it persists.
    fn stop(mut self) -> Stopped {
        if self.setup.persistence {
            // Saves what it keeps on SIGTERM (a killed one saves only every 30 minutes).
            let _ = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status();
        } else {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().expect("tempdir"));
        Stopped {
            port: self.port,
            dir,
            setup: self.setup.clone(),
        }
    }
}

/// The password file for `users` in `dir`.
fn write_users(dir: &std::path::Path, users: &[(&str, &str)]) -> PathBuf {
    let file = dir.join("passwords");
    std::fs::write(&file, "").expect("write password file");
    for (user, password) in users {
        let made = Command::new("mosquitto_passwd")
            .arg("-b")
            .arg(&file)
            .args([user, password])
            .status()
            .expect("mosquitto_passwd runs (apt-get install mosquitto)");
        assert!(made.success());
    }
    open_to_all(&file, 0o644);
    file
}

fn open_to_all(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

struct Stopped {
    port: u16,
    dir: tempfile::TempDir,
    setup: Setup,
}

impl Stopped {
    fn restart(self) -> Broker {
        Broker::start_on(self.port, self.dir, self.setup)
    }

    /// Back, but letting in only `users` for now.
    fn restart_for(mut self, users: &[(&'static str, &'static str)]) -> Broker {
        self.setup.users = users.to_vec();
        self.restart()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `mosquitto_pub`: returns once the broker has the message (QoS 1).
fn publish(port: u16, topic: &str, payload: &str, retain: bool) {
    let mut command = Command::new("mosquitto_pub");
    command
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", topic, "-m", payload]);
    if retain {
        command.arg("-r");
    }
    let status = command
        .status()
        .expect("mosquitto_pub runs: apt-get install mosquitto-clients (.ci/run does)");
    assert!(status.success(), "mosquitto_pub {topic} {payload}");
}

/// A test client subscribed to `filter`, collecting (topic, payload, retained).
struct Watcher {
    messages: mpsc::UnboundedReceiver<(String, Vec<u8>, bool)>,
    client: AsyncClient,
}

impl Watcher {
    async fn start(port: u16, filter: &str) -> Watcher {
        Watcher::start_as(port, filter, None).await
    }

    /// A watcher logging in as `user` (name, password).
    async fn start_as(port: u16, filter: &str, user: Option<(&str, &str)>) -> Watcher {
        let mut options = MqttOptions::new(format!("watcher-{}", free_port()), "127.0.0.1", port);
        options.set_max_packet_size(1 << 22, 1 << 22);
        if let Some((name, password)) = user {
            options.set_credentials(name, password);
        }
        let (client, mut events) = AsyncClient::new(options, 64);
        client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        let (tx, messages) = mpsc::unbounded_channel();
        let (subscribed, is_subscribed) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut subscribed = Some(subscribed);
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let _ = tx.send((p.topic.clone(), p.payload.to_vec(), p.retain));
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(subscribed) = subscribed.take() {
                            let _ = subscribed.send(());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        // Messages published before the broker confirmed the subscription would be missed.
        tokio::time::timeout(WAIT, is_subscribed)
            .await
            .expect("subscribed within the wait")
            .expect("the watcher runs");
        Watcher { messages, client }
    }

    /// Waits for `payload` on `topic` (earlier ones, e.g. a retained old state, are skipped).
    async fn wait_for(&mut self, topic: &str, payload: &[u8]) {
        let deadline = Instant::now() + WAIT;
        loop {
            let (got, _) = self.next_on(topic).await;
            if got == payload {
                return;
            }
            assert!(Instant::now() < deadline, "{topic} never said {payload:?}");
        }
    }

    /// The next message on any topic: (topic, payload).
    async fn next(&mut self) -> (String, Vec<u8>) {
        match tokio::time::timeout(WAIT, self.messages.recv()).await {
            Ok(Some((topic, payload, _))) => (topic, payload),
            _ => panic!("no message within {WAIT:?}"),
        }
    }

    /// The next message on `topic`.
    async fn next_on(&mut self, topic: &str) -> (Vec<u8>, bool) {
        let found = tokio::time::timeout(WAIT, async {
            while let Some((t, payload, retained)) = self.messages.recv().await {
                if t == topic {
                    return Some((payload, retained));
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(found)) => found,
            _ => panic!("nothing on {topic} within {WAIT:?}"),
        }
    }
}

fn table(text: &str) -> toml::Table {
    text.parse().expect("valid TOML")
}

fn channel(port: u16, extra: &str) -> Arc<dyn Notifier> {
    let text = format!(
        "kind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{port}\"\ndevice_id = \"front\"\n{extra}"
    );
    let mut built = build_notifiers_with_env(&[table(&text)], &|_| None).expect("valid config");
    built.remove(0)
}

fn started(notifier: &Arc<dyn Notifier>) -> (Arc<dyn HomeDevice>, mpsc::Receiver<()>) {
    let device = notifier.device().expect("an MQTT channel is a device");
    let (presses, pressed) = mpsc::channel(4);
    device.start(presses);
    (device, pressed)
}

fn ring(jpeg: Option<Vec<u8>>) -> Arc<Ring> {
    Arc::new(Ring {
        at: SystemTime::now(),
        link: Some("https://door.example/?room=AbCdEfGhIjKlMnOpQrStUv".into()),
        room: doorbell_protocol::RoomId::parse("AbCdEfGhIjKlMnOpQrStUv").ok(),
        snapshot_jpeg: jpeg.map(Arc::new),
        message: None,
    })
}

/// A ring in room `room` (its event names the room: tests tell rings apart by it).
fn ring_in(room: &str) -> Arc<Ring> {
    Arc::new(Ring {
        at: SystemTime::now(),
        link: Some(format!("https://door.example/?room={room}")),
        room: doorbell_protocol::RoomId::parse(room).ok(),
        snapshot_jpeg: None,
        message: None,
    })
}

/// What Home Assistant's MQTT discovery requires of each platform's config.
fn required_keys(component: &str) -> &'static [&'static str] {
    match component {
        "event" => &["state_topic", "event_types"],
        "image" => &["image_topic"],
        "binary_sensor" | "sensor" => &["state_topic"],
        "button" => &["command_topic"],
        other => panic!("unexpected component {other}"),
    }
}

/// Waits until a device on a fresh broker has announced itself: online, then (after its
/// subscriptions and discovery configs, in order on its connection) its call state.
async fn online(port: u16) {
    let mut watcher = Watcher::start(port, "doorbell/front/#").await;
    watcher
        .wait_for("doorbell/front/availability", b"online")
        .await;
    watcher.next_on("doorbell/front/in_call").await;
}

/// The next `count` discovery configs `watcher` gets, by topic.
async fn discovery_configs(
    watcher: &mut Watcher,
    count: usize,
) -> BTreeMap<String, serde_json::Value> {
    let mut configs = BTreeMap::new();
    while configs.len() < count {
        let (topic, payload) = watcher.next().await;
        let config = serde_json::from_slice(&payload).expect("discovery config is JSON");
        configs.insert(topic, config);
    }
    configs
}

/// Checks one config the way Home Assistant's discovery schema does for its platform.
fn assert_valid_config(topic: &str, config: &serde_json::Value) {
    let component = topic.split('/').nth(1).expect("component");
    for key in required_keys(component).iter().chain(&[
        "unique_id",
        "name",
        "device",
        "availability_topic",
        "default_entity_id",
        "origin",
    ]) {
        assert!(config.get(key).is_some(), "{topic} lacks {key}: {config}");
    }
    assert!(
        config.get("object_id").is_none(),
        "object_id is deprecated: {config}"
    );
    let entity_id = config["default_entity_id"].as_str().unwrap_or_default();
    assert!(
        entity_id.starts_with(&format!("{component}.")),
        "{entity_id} names its platform"
    );
    let device = &config["device"];
    for key in ["identifiers", "name", "model", "manufacturer", "sw_version"] {
        assert!(device.get(key).is_some(), "{topic}: the device lacks {key}");
    }
    assert_eq!(device["identifiers"][0], "doorbell_front", "{config}");
    assert_eq!(config["availability_topic"], "doorbell/front/availability");
}

#[tokio::test]
async fn discovery_is_retained_complete_and_stable_across_restarts() {
    let broker = Broker::start();
    let port = broker.port;
    let mut live = Watcher::start(port, "homeassistant/#").await;
    let runtime = doorbell_runtime();
    let first = channel(port, "");
    let device = first.device().expect("device");
    runtime.spawn(async move {
        let (presses, _pressed) = mpsc::channel(1);
        device.start(presses);
        std::future::pending::<()>().await;
    });
    let configs = discovery_configs(&mut live, 5).await;
    // A new subscriber (Home Assistant starting) gets them all: they are retained.
    let mut fresh = Watcher::start(port, "homeassistant/#").await;
    let mut retained = BTreeMap::new();
    while retained.len() < 5 {
        let (topic, payload, flag) = fresh.messages.recv().await.expect("a config");
        assert!(flag, "{topic} is retained");
        retained.insert(topic, payload);
    }
    assert_eq!(
        retained.keys().collect::<Vec<_>>(),
        configs.keys().collect::<Vec<_>>()
    );
    for (topic, config) in &configs {
        assert_valid_config(topic, config);
    }
    let config = |topic: &str| &configs[topic];
    let event = config("homeassistant/event/doorbell_front/ring/config");
    assert_eq!(event["device_class"], "doorbell");
    assert_eq!(event["event_types"], serde_json::json!(["ring"]));
    assert_eq!(event["state_topic"], "doorbell/front/event");
    let image = config("homeassistant/image/doorbell_front/snapshot/config");
    assert_eq!(image["image_topic"], "doorbell/front/snapshot");
    assert_eq!(image["content_type"], "image/jpeg");
    let in_call = config("homeassistant/binary_sensor/doorbell_front/in_call/config");
    assert_eq!(in_call["state_topic"], "doorbell/front/in_call");
    let last_ring = config("homeassistant/sensor/doorbell_front/last_ring/config");
    assert_eq!(last_ring["device_class"], "timestamp");
    assert_eq!(last_ring["state_topic"], "doorbell/front/last_ring");
    let button = config("homeassistant/button/doorbell_front/ring_button/config");
    assert_eq!(button["command_topic"], "doorbell/front/ring/set");
    assert_eq!(button["payload_press"], "PRESS");

    // Another process start: the same unique ids, so Home Assistant keeps the same entities.
    runtime.shutdown_background();
    drop(first);
    let second = channel(port, "");
    let (_device, _pressed) = started(&second);
    let again = discovery_configs(&mut live, 5).await;
    let ids = |c: &BTreeMap<String, serde_json::Value>| -> Vec<String> {
        c.values().map(|v| v["unique_id"].to_string()).collect()
    };
    assert_eq!(ids(&configs), ids(&again));
}

#[tokio::test]
async fn a_ring_publishes_the_event_the_photo_and_the_time() {
    let broker = Broker::start();
    let notifier = channel(broker.port, "");
    let (_device, _pressed) = started(&notifier);
    let mut watcher = Watcher::start(broker.port, "doorbell/front/#").await;
    let jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9];
    let sent = Instant::now();
    notifier
        .notify(ring(Some(jpeg.clone())))
        .await
        .expect("queued");
    let (event, retained) = watcher.next_on("doorbell/front/event").await;
    let event: serde_json::Value = serde_json::from_slice(&event).expect("JSON");
    assert!(!retained);
    assert_eq!(event["event_type"], "ring");
    assert_eq!(event["room"], "AbCdEfGhIjKlMnOpQrStUv");
    assert!(
        event["url"]
            .as_str()
            .is_some_and(|u| u.ends_with("AbCdEfGhIjKlMnOpQrStUv"))
    );
    let mut photo = Watcher::start(broker.port, "doorbell/front/snapshot").await;
    assert_eq!(photo.next_on("doorbell/front/snapshot").await, (jpeg, true));
    assert!(
        sent.elapsed() < Duration::from_secs(1),
        "took {:?}",
        sent.elapsed()
    );
    let mut last = Watcher::start(broker.port, "doorbell/front/last_ring").await;
    let (at, _) = last.next_on("doorbell/front/last_ring").await;
    assert!(String::from_utf8_lossy(&at).ends_with('Z'), "RFC 3339 UTC");
}

#[tokio::test]
async fn the_ring_button_presses_and_other_payloads_do_not() {
    let broker = Broker::start();
    let notifier = channel(broker.port, "");
    let (device, mut pressed) = started(&notifier);
    // Wait until the device is connected and subscribed.
    online(broker.port).await;
    let watcher = Watcher::start(broker.port, "doorbell/front/availability").await;
    let command = |payload: &'static str| {
        let client = watcher.client.clone();
        async move {
            client
                .publish("doorbell/front/ring/set", QoS::AtLeastOnce, false, payload)
                .await
                .expect("publish")
        }
    };
    command("HELLO").await;
    command("PRESS").await;
    tokio::time::timeout(WAIT, pressed.recv())
        .await
        .expect("a press")
        .expect("open");
    assert!(pressed.try_recv().is_err(), "only PRESS presses");

    device.in_call(true);
    let mut calls = Watcher::start(broker.port, "doorbell/front/in_call").await;
    calls.wait_for("doorbell/front/in_call", b"ON").await;
    device.in_call(false);
    calls.wait_for("doorbell/front/in_call", b"OFF").await;
}

#[tokio::test]
async fn a_broker_that_is_down_delays_no_other_channel_and_the_ring_is_not_retried() {
    let broker = Broker::start();
    let notifier = channel(broker.port, "");
    let (_device, _pressed) = started(&notifier);
    let mut watcher = Watcher::start(broker.port, "doorbell/front/availability").await;
    watcher.next_on("doorbell/front/availability").await;
    let stopped = broker.stop();

    // The other channel hears the ring at once; MQTT's is queued.
    let (other, heard) = Recorder::counting();
    let (report, mut outcomes) = mpsc::unbounded_channel();
    let _tasks = dispatch(&[Arc::clone(&notifier), other], ring(None), WAIT, report);
    let first = tokio::time::timeout(Duration::from_secs(1), outcomes.recv())
        .await
        .expect("the other channel does not wait for the broker")
        .expect("an outcome");
    assert_eq!(first.channel, "recorder");
    assert!(first.result.is_ok(), "{first}");
    assert_eq!(heard.load(std::sync::atomic::Ordering::SeqCst), 1);
    // MQTT says within its bound that the broker does not have it yet, and does not retry.
    let mqtt = tokio::time::timeout(Duration::from_secs(5), outcomes.recv())
        .await
        .expect("the MQTT outcome within its bound")
        .expect("an outcome");
    assert!(
        mqtt.result
            .as_ref()
            .is_err_and(|e| e.contains("sent when the broker is back")),
        "{mqtt}"
    );
    // (Its delivery once the broker is back: the two `…arrive_exactly_once` tests below.)
    drop(stopped);
}

/// Rings while the broker is away arrive once each when it is back: those the client held
/// when the broker went (it resends them with a kept session; we send them again without
/// one) and those that came while it was away.
async fn rings_while_the_broker_is_away_arrive_exactly_once(persistence: bool) {
    const DOORBELL: (&str, &str) = ("doorbell", "doorbell-pw");
    const WATCHER: (&str, &str) = ("watcher", "watcher-pw");
    let broker = Broker::with(Setup {
        users: vec![DOORBELL, WATCHER],
        persistence,
        ..Setup::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = dir.path().join("pw");
    std::fs::write(&secret, DOORBELL.1).expect("write");
    let notifier = channel(
        broker.port,
        &format!(
            "username = \"doorbell\"\npassword_file = \"{}\"\n",
            secret.display()
        ),
    );
    let (_device, _pressed) = started(&notifier);
    let mut watcher = Watcher::start_as(broker.port, "doorbell/front/#", Some(WATCHER)).await;
    watcher
        .wait_for("doorbell/front/availability", b"online")
        .await;
    let stopped = broker.stop();
    let port = stopped.port;
    // The first ring races the client noticing the broker is gone; by the end of its wait
    // for the broker (3 s) the client has noticed, so the second comes while it is down.
    let first = notifier.notify(ring_in("ringAxxxxxxxxxxxxxxxxx")).await;
    assert!(first.is_err(), "the broker is down");
    let second = notifier.notify(ring_in("ringBxxxxxxxxxxxxxxxxx")).await;
    assert!(second.is_err(), "the broker is down");

    // Back, first for the watcher only, so that it misses nothing the doorbell sends.
    let mut broker = stopped.restart_for(&[WATCHER]);
    let mut watcher = Watcher::start_as(port, "doorbell/front/#", Some(WATCHER)).await;
    broker.set_users(&[DOORBELL, WATCHER]);
    let mut seen = Vec::new();
    // Resent events may come before the doorbell says it is online.
    loop {
        let (topic, payload) = watcher.next().await;
        if topic == "doorbell/front/availability" && payload == b"online" {
            break;
        }
        seen.extend(room_of(&topic, &payload));
    }
    // A ring with the broker up: everything the doorbell sent before it arrives before it.
    notifier
        .notify(ring_in("ringCxxxxxxxxxxxxxxxxx"))
        .await
        .expect("the broker confirms a ring once it is back");
    while !seen.iter().any(|room: &String| room.starts_with("ringC")) {
        let (topic, payload) = watcher.next().await;
        seen.extend(room_of(&topic, &payload));
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "ringAxxxxxxxxxxxxxxxxx",
            "ringBxxxxxxxxxxxxxxxxx",
            "ringCxxxxxxxxxxxxxxxxx"
        ]
    );
}

#[tokio::test]
async fn rings_while_a_broker_without_sessions_is_away_arrive_exactly_once() {
    rings_while_the_broker_is_away_arrive_exactly_once(false).await;
}

#[tokio::test]
async fn rings_while_a_broker_keeping_sessions_is_away_arrive_exactly_once() {
    rings_while_the_broker_is_away_arrive_exactly_once(true).await;
}

#[tokio::test]
async fn retained_and_stale_ring_commands_do_not_ring() {
    let broker = Broker::start();
    let port = broker.port;
    // Left on the broker by a misconfigured tool: it would ring at every reconnection.
    publish(port, "doorbell/front/ring/set", "PRESS", true);
    let runtime = doorbell_runtime();
    let notifier = channel(port, "");
    let (presses, mut pressed) = mpsc::channel(8);
    let device = notifier.device().expect("device");
    runtime.spawn(async move { device.start(presses) });
    online(port).await;
    // The doorbell goes away (without a goodbye); a press meanwhile is not kept for it.
    runtime.shutdown_background();
    let mut availability = Watcher::start(port, "doorbell/front/#").await;
    availability
        .wait_for("doorbell/front/availability", b"offline")
        .await;
    publish(port, "doorbell/front/ring/set", "PRESS", false);

    // Back (same device, same persistent session): only a press made now rings.
    let notifier = channel(port, "");
    let (_device, mut pressed_again) = started(&notifier);
    availability
        .wait_for("doorbell/front/availability", b"online")
        .await;
    // Said after its subscriptions (in order on its connection): it is subscribed.
    availability
        .wait_for("doorbell/front/in_call", b"OFF")
        .await;
    publish(port, "doorbell/front/ring/set", "PRESS", false);
    // The broker has the press; a ring confirmed after it means the press was delivered.
    notifier
        .notify(ring_in("markerxxxxxxxxxxxxxxxx"))
        .await
        .expect("the broker is up");
    let mut count = 0;
    while pressed_again.try_recv().is_ok() {
        count += 1;
    }
    assert_eq!(
        count, 1,
        "one press: the one made while the doorbell was there"
    );
    assert!(pressed.try_recv().is_err(), "the first run rang nothing");
}

#[tokio::test]
async fn mqtts_with_the_brokers_ca_file_connects() {
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    let broker = Broker::with(Setup {
        tls: Some((cert.pem(), key.serialize_pem())),
        ..Setup::default()
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, cert.pem()).expect("write ca");
    let text = format!(
        "kind = \"mqtt\"\nurl = \"mqtts://127.0.0.1:{}\"\ndevice_id = \"front\"\nca_file = \"{}\"\n",
        broker.port,
        ca.display()
    );
    let notifier = build_notifiers_with_env(&[table(&text)], &|_| None)
        .expect("valid config")
        .remove(0);
    let (_device, _pressed) = started(&notifier);
    tokio::time::timeout(WAIT, notifier.notify(ring(None)))
        .await
        .expect("within the wait")
        .expect("the broker behind TLS confirms the ring");
}

#[tokio::test]
async fn a_test_ring_beside_a_running_doorbell_leaves_it_online_and_in_charge() {
    let broker = Broker::start();
    let port = broker.port;
    let doorbell = channel(port, "");
    let (_device, mut pressed) = started(&doorbell);
    online(port).await;
    let mut watcher = Watcher::start(port, "doorbell/front/#").await;
    watcher
        .wait_for("doorbell/front/availability", b"online")
        .await;

    // `--test-notify` with the same config, in its own process (runtime), then gone.
    let runtime = doorbell_runtime();
    let tester = channel(port, "");
    let device = tester.device().expect("device");
    let attempt = tester.notify(ring_in("testxxxxxxxxxxxxxxxxxx"));
    let sent = runtime
        .spawn(async move {
            device.start_sending_only();
            attempt.await
        })
        .await
        .expect("the test ring's task");
    assert!(sent.is_ok(), "the test ring is confirmed: {sent:?}");
    runtime.shutdown_background();

    // The doorbell kept its connection: its Ring button and its rings still work.
    publish(port, "doorbell/front/ring/set", "PRESS", false);
    doorbell
        .notify(ring_in("afterxxxxxxxxxxxxxxxxx"))
        .await
        .expect("the doorbell is still connected");
    assert!(
        pressed.try_recv().is_ok(),
        "the doorbell still has its button"
    );
    let mut said = Vec::new();
    while let Ok((topic, payload, _)) = watcher.messages.try_recv() {
        if topic == "doorbell/front/availability" {
            said.push(String::from_utf8_lossy(&payload).into_owned());
        }
    }
    assert!(said.is_empty(), "availability never changed: {said:?}");
}

#[tokio::test]
async fn the_last_will_says_offline_when_the_doorbell_dies() {
    let broker = Broker::start();
    let port = broker.port;
    // The doorbell on its own runtime, shut down without a goodbye (as a killed process).
    let runtime = doorbell_runtime();
    let notifier = channel(port, "");
    let device = notifier.device().expect("device");
    runtime.spawn(async move {
        let (presses, _pressed) = mpsc::channel(1);
        device.start(presses);
        std::future::pending::<()>().await;
    });
    let mut watcher = Watcher::start(port, "doorbell/front/availability").await;
    assert_eq!(
        watcher.next_on("doorbell/front/availability").await.0,
        b"online"
    );
    runtime.shutdown_background();
    drop(notifier);
    // mosquitto sends the will when it notices the dropped connection.
    assert_eq!(
        watcher.next_on("doorbell/front/availability").await.0,
        b"offline"
    );
}

#[tokio::test]
async fn a_broker_with_a_password_takes_it_from_the_password_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let secret_file = dir.path().join("mqtt-password");
    std::fs::write(&secret_file, "s3cret-pw\n").expect("write");
    let broker = Broker::with(Setup {
        users: vec![("doorbell", "s3cret-pw")],
        ..Setup::default()
    });
    let notifier = channel(
        broker.port,
        &format!(
            "username = \"doorbell\"\npassword_file = \"{}\"\n",
            secret_file.display()
        ),
    );
    let (_device, _pressed) = started(&notifier);
    // The broker refuses anonymous watchers; a watcher with the password sees online.
    let mut options = MqttOptions::new("watcher-auth", "127.0.0.1", broker.port);
    options.set_credentials("doorbell", "s3cret-pw");
    let (client, mut events) = AsyncClient::new(options, 8);
    client
        .subscribe("doorbell/front/availability", QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let online = tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(Event::Incoming(Packet::Publish(p))) = events.poll().await {
                return p.payload.to_vec();
            }
        }
    })
    .await
    .expect("online within the wait");
    assert_eq!(online, b"online");
}

#[test]
fn bad_config_is_refused_by_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing: PathBuf = dir.path().join("no-such-file");
    for (text, key, words) in [
        ("url = \"http://broker\"", "notify[0].url", "mqtt://"),
        (
            "url = \"mqtt://b\"\nbrokr = 1",
            "notify[0].brokr",
            "unknown key",
        ),
        (
            &format!(
                "url = \"mqtt://b\"\nusername = \"u\"\npassword_file = \"{}\"",
                missing.display()
            ) as &str,
            "notify[0].password_file",
            "cannot read",
        ),
        (
            "url = \"mqtt://b\"\npassword = \"p\"",
            "notify[0].username",
            "missing",
        ),
        (
            "url = \"mqtt://b\"\ntopic_prefix = \"door/#\"",
            "notify[0].topic_prefix",
            "wildcards",
        ),
        (
            "url = \"mqtt://b\"\ndevice_id = \"Front Door\"",
            "notify[0].device_id",
            "lower-case",
        ),
    ] {
        let table = table(&format!("kind = \"mqtt\"\n{text}"));
        let problems = match build_notifiers_with_env(&[table], &|_| None) {
            Ok(_) => panic!("{text} accepted"),
            Err(problems) => problems,
        };
        assert!(
            problems
                .iter()
                .any(|p| p.key == key && p.message.contains(words)),
            "{text}: {problems:?}"
        );
    }
}

/// The room of a ring event, if this is one.
fn room_of(topic: &str, payload: &[u8]) -> Option<String> {
    if topic != "doorbell/front/event" {
        return None;
    }
    let event: serde_json::Value = serde_json::from_slice(payload).expect("JSON event");
    event["room"].as_str().map(str::to_owned)
}

/// A runtime for a doorbell that a test kills: shutting it down drops the connection
/// without a goodbye, as a killed process does.
fn doorbell_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A channel that counts rings.
struct Recorder(Arc<std::sync::atomic::AtomicUsize>);

impl Recorder {
    fn counting() -> (Arc<dyn Notifier>, Arc<std::sync::atomic::AtomicUsize>) {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        (Arc::new(Recorder(Arc::clone(&count))), count)
    }
}

impl Notifier for Recorder {
    fn channel(&self) -> String {
        "recorder".into()
    }
    fn notify(
        &self,
        _ring: Arc<Ring>,
    ) -> futures_util::future::BoxFuture<'static, Result<(), doorbell_notify::NotifyError>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}
