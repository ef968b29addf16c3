//! The real `doorbell agent` as a Home Assistant device on a real broker (Debian's
//! `mosquitto`, with its own `mosquitto_sub`/`mosquitto_pub` as the other MQTT tools): a press
//! publishes the ring and the photo, the Ring button rings, and a killed agent goes offline.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{Agent, Proc, Server, free_port};

const WAIT: Duration = Duration::from_secs(15);

fn mosquitto(dir: &std::path::Path, port: u16) -> Proc {
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
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

/// `mosquitto_sub` on `filter`: one (topic, retained, payload length, payload if text) per
/// message.
struct Subscriber {
    _child: Proc,
    lines: mpsc::Receiver<(String, bool, usize, String)>,
}

impl Subscriber {
    fn start(port: u16, filter: &str) -> Subscriber {
        let mut child: Child = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-q",
                "1",
                "-t",
                filter,
            ])
            // topic, retained flag, payload length, payload (binary payloads are cut at the
            // first newline; only their length is used).
            .args(["-F", "%t %r %l %p"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub runs: apt-get install mosquitto-clients");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).split(b'\n').map_while(Result::ok) {
                let line = String::from_utf8_lossy(&line).into_owned();
                let mut parts = line.splitn(4, ' ');
                let (Some(topic), Some(retained), Some(len)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                let Ok(len) = len.parse() else { continue };
                let payload = parts.next().unwrap_or_default().to_owned();
                if tx
                    .send((topic.to_owned(), retained == "1", len, payload))
                    .is_err()
                {
                    break;
                }
            }
        });
        // mosquitto_sub has no "subscribed" signal; give it a moment to be in.
        std::thread::sleep(Duration::from_millis(300));
        Subscriber {
            _child: Proc {
                child,
                name: "mosquitto_sub".into(),
            },
            lines,
        }
    }

    /// The next message on `topic` whose payload satisfies `wanted`.
    fn wait_for(&self, topic: &str, wanted: impl Fn(&str, usize) -> bool) -> (bool, usize, String) {
        let deadline = Instant::now() + WAIT;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok((t, retained, len, payload)) if t == topic && wanted(&payload, len) => {
                    return (retained, len, payload);
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        panic!("no matching message on {topic} within {WAIT:?}");
    }
}

fn config(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("doorbell.toml");
    std::fs::write(
        &path,
        format!(
            "[[notify]]\nkind = \"mqtt\"\nurl = \"mqtt://127.0.0.1:{port}\"\ndevice_id = \"porch\"\n"
        ),
    )
    .expect("write config");
    path
}

#[test]
fn the_agent_is_a_home_assistant_doorbell_on_a_real_broker() {
    let server = Server::start();
    let port = free_port();
    let _broker = mosquitto(server.data_dir.path(), port);
    let config = config(server.data_dir.path(), port);
    let watch = Subscriber::start(port, "#");
    let mut agent = Agent::for_server(
        &server,
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--video-size",
            "320x240",
            "--ring-timeout",
            "2s",
        ],
    );
    agent.wait_for("connected", WAIT);
    watch.wait_for("doorbell/porch/availability", |p, _| p == "online");
    let (_, _, discovery) = watch
        .wait_for("homeassistant/event/doorbell_porch/ring/config", |_, _| {
            true
        });
    assert!(
        discovery.contains("\"device_class\":\"doorbell\""),
        "{discovery}"
    );

    // A press: the event with the link, the photo (a JPEG of the test pattern) and the time.
    let pressed = Instant::now();
    agent.press();
    let notified = agent.wait_for("notified", WAIT);
    let url = notified["url"].as_str().expect("url");
    // The photo goes first, then the event (an automation reacting to the event finds the
    // image entity already showing the visitor).
    let (_, jpeg_len, _) = watch.wait_for("doorbell/porch/snapshot", |_, len| len > 1000);
    let (_, _, event) = watch.wait_for("doorbell/porch/event", |p, _| p.contains("\"ring\""));
    let event: serde_json::Value = serde_json::from_str(&event).expect("JSON event");
    assert_eq!(event["url"], url);
    eprintln!(
        "press → event and photo: {:?} ({jpeg_len} bytes)",
        pressed.elapsed()
    );
    let mut sent = agent.wait_for("notify_sent", WAIT);
    while sent["channel"] == "history" {
        sent = agent.wait_for("notify_sent", WAIT);
    }
    assert_eq!(sent["channel"], "mqtt");
    agent.wait_for("call_end", WAIT);

    // Home Assistant's Ring button: rings like the physical button.
    let published = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q", "1"])
        .args(["-t", "doorbell/porch/ring/set", "-m", "PRESS"])
        .status()
        .expect("mosquitto_pub runs");
    assert!(published.success());
    let trigger = agent.wait_for("trigger", WAIT);
    assert_eq!(trigger["busy"], false);
    agent.wait_for("notified", WAIT);

    // The agent dies without a goodbye: the broker says offline (the last will).
    let _ = agent.proc.child.kill();
    watch.wait_for("doorbell/porch/availability", |p, _| p == "offline");
}
