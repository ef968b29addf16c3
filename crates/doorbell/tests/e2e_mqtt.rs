//! The real `doorbell agent` as a Home Assistant device on a real broker (Debian's
//! `mosquitto`, with its own `mosquitto_sub`/`mosquitto_pub` as the other MQTT tools): a press
//! publishes the photo and the ring within a second, the Ring button rings, a call shows as
//! "In call", a broker that is down delays no other channel and gets the ring when it is back,
//! and a killed agent goes offline.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{Agent, Proc, Server, answer_briefly_and_hang_up, free_port};

const WAIT: Duration = Duration::from_secs(15);

/// A mosquitto on 127.0.0.1:`port` with its files in `dir`; `persistence`: it keeps sessions
/// and retained messages across a restart (stop it with [`stop_gracefully`] for that).
fn mosquitto(dir: &Path, port: u16, persistence: bool) -> Proc {
    // mosquitto started as root runs as user `mosquitto`: it must be able to write there.
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let conf = dir.join("mosquitto.conf");
    let persist = if persistence {
        format!(
            "persistence true\npersistence_location {}/\n",
            dir.display()
        )
    } else {
        "persistence false\n".to_owned()
    };
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\n{persist}"),
    )
    .expect("write conf");
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto runs: apt-get install mosquitto (.ci/run does)");
    support::wait_for_port(([127, 0, 0, 1], port).into(), WAIT);
    Proc {
        child,
        name: "mosquitto".into(),
    }
}

/// Stops mosquitto as its service manager does (SIGTERM: it saves what it persists).
fn stop_gracefully(mut broker: Proc) {
    let _ = Command::new("kill")
        .args(["-TERM", &broker.child.id().to_string()])
        .status();
    let _ = broker.child.wait();
}

/// One message as `mosquitto_sub` printed it, and when it arrived.
struct Message {
    topic: String,
    retained: bool,
    len: usize,
    /// Binary payloads are cut at the first newline; only their length is used.
    payload: String,
    at: Instant,
}

/// `mosquitto_sub` on `filter`.
struct Subscriber {
    _child: Proc,
    lines: mpsc::Receiver<Message>,
}

impl Subscriber {
    fn start(port: u16, filter: &str) -> Subscriber {
        Subscriber::start_with(port, filter, &[])
    }

    /// With more `mosquitto_sub` arguments (e.g. a persistent session: `-c -i ID`).
    fn start_with(port: u16, filter: &str, extra: &[&str]) -> Subscriber {
        let mut child: Child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
            .args(["-t", filter])
            .args(extra)
            // topic, retained flag, payload length, payload
            .args(["-F", "%t %r %l %p"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub runs: apt-get install mosquitto-clients (.ci/run does)");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let at = Instant::now();
                let line = String::from_utf8_lossy(&line).into_owned();
                let mut parts = line.splitn(4, ' ');
                let (Some(topic), Some(retained), Some(len)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let Ok(len) = len.parse() else { continue };
                let message = Message {
                    topic: topic.to_owned(),
                    retained: retained == "1",
                    len,
                    payload: parts.next().unwrap_or_default().to_owned(),
                    at,
                };
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        // mosquitto_sub has no "subscribed" signal; the tests subscribe before what they
        // watch for happens, and give it a moment to be in.
        std::thread::sleep(Duration::from_millis(300));
        Subscriber {
            _child: Proc {
                child,
                name: "mosquitto_sub".into(),
            },
            lines,
        }
    }

    /// The next message on `topic` that satisfies `wanted`.
    fn wait_for(&self, topic: &str, wanted: impl Fn(&Message) -> bool) -> Message {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(message) if message.topic == topic && wanted(&message) => return message,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no matching message on {topic} within {WAIT:?}");
    }
}

/// `mosquitto_pub` one message; returns once the broker has it (QoS 1).
fn publish(port: u16, topic: &str, payload: &str) {
    let published = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", topic, "-m", payload])
        .status()
        .expect("mosquitto_pub runs: apt-get install mosquitto-clients (.ci/run does)");
    assert!(published.success());
}

/// A config with an MQTT channel (device `porch`) and `more` TOML after it.
fn config(dir: &Path, port: u16, more: &str) -> PathBuf {
    let path = dir.join("doorbell.toml");
    std::fs::write(
        &path,
        format!(
            "[[notify]]\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{port}\"\ndevice_id = \"porch\"\n{more}"
        ),
    )
    .expect("write config");
    path
}

fn agent_with(server: &Server, config: &Path, ring_timeout: &str) -> Agent {
    Agent::for_server(
        server,
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--video-size",
            "320x240",
            "--ring-timeout",
            ring_timeout,
        ],
    )
}

#[test]
fn the_agent_is_a_home_assistant_doorbell_on_a_real_broker() {
    let server = Server::start();
    let port = free_port();
    let broker_dir = tempfile::tempdir().expect("tempdir");
    let _broker = mosquitto(broker_dir.path(), port, false);
    let config = config(server.data_dir.path(), port, "");
    let watch = Subscriber::start(port, "#");
    let mut agent = agent_with(&server, &config, "2s");
    agent.wait_for("connected", WAIT);
    watch.wait_for("doorbell/porch/availability", |m| m.payload == "online");
    let discovery = watch.wait_for("homeassistant/event/doorbell_porch/ring/config", |_| true);
    assert!(discovery.retained || !discovery.payload.is_empty());
    assert!(
        discovery.payload.contains("\"device_class\":\"doorbell\""),
        "{}",
        discovery.payload
    );

    // A press: the photo (a JPEG of the test pattern), then the event with the link, each
    // within a second of the press.
    let pressed = Instant::now();
    agent.press();
    let notified = agent.wait_for("notified", WAIT);
    let url = notified["url"].as_str().expect("url");
    let photo = watch.wait_for("doorbell/porch/snapshot", |m| m.len > 1000);
    let last_ring = watch.wait_for("doorbell/porch/last_ring", |_| true);
    assert!(last_ring.payload.ends_with('Z'), "{}", last_ring.payload);
    let event = watch.wait_for("doorbell/porch/event", |m| m.payload.contains("\"ring\""));
    let parsed: serde_json::Value = serde_json::from_str(&event.payload).expect("JSON event");
    assert_eq!(parsed["event_type"], "ring");
    assert_eq!(parsed["url"], url);
    let (to_photo, to_event) = (photo.at - pressed, event.at - pressed);
    eprintln!(
        "press → photo {to_photo:?} ({} bytes), press → event {to_event:?}",
        photo.len
    );
    assert!(photo.at <= event.at, "the photo goes first");
    assert!(
        to_event < Duration::from_secs(1),
        "press → event {to_event:?}"
    );
    let mut sent = agent.wait_for("notify_sent", WAIT);
    while sent["channel"] == "history" {
        sent = agent.wait_for("notify_sent", WAIT);
    }
    assert_eq!(sent["channel"], "mqtt");
    agent.wait_for("call_end", WAIT);

    // Home Assistant's Ring button: rings like the physical button.
    publish(port, "doorbell/porch/ring/set", "PRESS");
    let trigger = agent.wait_for("trigger", WAIT);
    assert_eq!(trigger["busy"], false);
    agent.wait_for("notified", WAIT);
    watch.wait_for("doorbell/porch/event", |m| m.payload.contains("\"ring\""));

    // The agent dies without a goodbye: the broker says offline (the last will).
    let _ = agent.proc.child.kill();
    watch.wait_for("doorbell/porch/availability", |m| m.payload == "offline");
}

#[test]
fn a_call_answered_in_chromium_shows_in_call_until_it_ends() {
    let server = Server::start();
    let port = free_port();
    let broker_dir = tempfile::tempdir().expect("tempdir");
    let _broker = mosquitto(broker_dir.path(), port, false);
    let config = config(server.data_dir.path(), port, "");
    let watch = Subscriber::start(port, "doorbell/porch/in_call");
    let mut agent = agent_with(&server, &config, "30s");
    agent.wait_for("connected", WAIT);
    watch.wait_for("doorbell/porch/in_call", |m| m.payload == "OFF");

    let url = agent.ring(WAIT);
    answer_briefly_and_hang_up(&mut agent, &url, Duration::from_secs(45));
    watch.wait_for("doorbell/porch/in_call", |m| m.payload == "ON");
    watch.wait_for("doorbell/porch/in_call", |m| m.payload == "OFF");
}

#[test]
fn a_broker_that_is_down_delays_no_other_channel_and_gets_the_ring_when_back() {
    let server = Server::start();
    let port = free_port();
    let broker_dir = tempfile::tempdir().expect("tempdir");
    let broker = mosquitto(broker_dir.path(), port, true);
    let config = config(
        server.data_dir.path(),
        port,
        "\n[[notify]]\nkind = \"console\"\n",
    );
    // A persistent watcher: the broker keeps what the doorbell sends while it is away.
    let watcher_args = ["-c", "-i", "e2e-watcher"];
    let watch = Subscriber::start_with(port, "doorbell/porch/event", &watcher_args);
    let mut agent = agent_with(&server, &config, "30s");
    agent.wait_for("connected", WAIT);
    drop(watch);

    stop_gracefully(broker);
    let pressed = Instant::now();
    agent.press();
    let notified = agent.wait_for("notified", WAIT);
    let url = notified["url"].as_str().expect("url").to_owned();
    // The console hears it at once; MQTT says within its bound that the broker has not got it.
    let first = agent.wait_for("notify_sent", WAIT);
    assert_eq!(first["channel"], "console", "{first}");
    assert!(
        pressed.elapsed() < Duration::from_secs(2),
        "the console waited for the broker: {:?}",
        pressed.elapsed()
    );
    let mqtt = agent.wait_for("notify_failed", WAIT);
    assert_eq!(mqtt["channel"], "mqtt", "{mqtt}");
    assert!(
        mqtt["reason"]
            .as_str()
            .is_some_and(|r| r.contains("sent when the broker is back")),
        "{mqtt}"
    );

    // The broker is back: the ring reaches MQTT, once.
    let _broker = mosquitto(broker_dir.path(), port, true);
    let watch = Subscriber::start_with(port, "doorbell/porch/event", &watcher_args);
    let event = watch.wait_for("doorbell/porch/event", |m| m.payload.contains("\"ring\""));
    let event: serde_json::Value = serde_json::from_str(&event.payload).expect("JSON event");
    assert_eq!(event["url"], url.as_str());
}
