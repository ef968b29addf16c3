//! A press reaches the owner through a configured channel with the visitor's snapshot: the
//! real agent binary, the real server, and a webhook receiver on loopback. Also when the
//! call service is unreachable.

mod support;

use base64::Engine;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;
use support::{Agent, Server};

const WAIT: Duration = Duration::from_secs(45);

/// A minimal HTTP receiver: every POST body arrives on the channel; answers 200.
fn webhook_receiver() -> (u16, mpsc::Receiver<Value>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                let _ = tx.send(v);
            }
        }
    });
    (port, rx)
}

/// Width and height from a baseline JPEG's SOF0 segment.
fn jpeg_size(jpeg: &[u8]) -> Option<(u16, u16)> {
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG starts with SOI");
    let mut i = 2;
    while i + 9 < jpeg.len() {
        if jpeg[i] != 0xFF {
            return None;
        }
        let marker = jpeg[i + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if marker == 0xC0 {
            let h = u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]);
            let w = u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]);
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

fn config_with_webhook(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let path = dir.join("doorbell.toml");
    std::fs::write(
        &path,
        format!(
            "[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n\n\
             [[notify]]\nkind = \"console\"\n"
        ),
    )
    .expect("write config");
    path
}

#[test]
fn a_press_sends_the_link_and_a_snapshot_to_the_webhook() {
    let server = Server::start();
    let (port, bodies) = webhook_receiver();
    let config = config_with_webhook(server.data_dir.path(), port);
    let mut agent = Agent::for_server(
        &server,
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--video-size",
            "320x240",
        ],
    );
    agent.wait_for("connected", WAIT);
    agent.press();
    let notified = agent.wait_for("notified", WAIT);
    let body = bodies.recv_timeout(WAIT).expect("webhook called");
    assert_eq!(body["event"], "ring");
    assert_eq!(body["url"], notified["url"]);
    assert_eq!(body["room"], notified["room"]);
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(body["snapshot_jpeg_base64"].as_str().expect("a snapshot"))
        .expect("base64");
    assert_eq!(jpeg_size(&jpeg), Some((320, 240)));
    let mut channels = Vec::new();
    while channels.len() < 2 {
        let sent = agent.wait_for("notify_sent", WAIT);
        // The ring history's snapshot upload is a channel too; these are the configured ones.
        if sent["channel"] != "history" {
            channels.push(sent["channel"].as_str().unwrap_or("").to_owned());
        }
    }
    channels.sort();
    assert_eq!(channels.len(), 2, "{channels:?}");
    assert!(
        channels.iter().any(|c| c.starts_with("webhook")),
        "{channels:?}"
    );
    assert!(
        channels.iter().any(|c| c.starts_with("console")),
        "{channels:?}"
    );
    // Nobody answers: the ring times out by itself (default 60 s is too long for a test, so
    // just leave; the process is killed on drop).
}

#[test]
fn a_press_while_the_server_is_unreachable_still_notifies_the_owner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (port, bodies) = webhook_receiver();
    let config = config_with_webhook(dir.path(), port);
    let closed_port = support::free_port();
    let mut agent = Agent::start(
        &[
            "--config",
            config.to_str().expect("utf-8"),
            "--server",
            &format!("https://127.0.0.1:{closed_port}"),
            "--insecure",
            "--video-size",
            "320x240",
        ],
        &[("DOORBELL_TOKEN", "whatever-token")],
    );
    let error = agent.wait_for("error", WAIT);
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("cannot reach the signaling server"),
        "{error}"
    );
    agent.press();
    let trigger = agent.wait_for("trigger", WAIT);
    assert_eq!(trigger["busy"], false);
    let unreachable = agent.wait_for("error", WAIT);
    assert!(
        unreachable["message"]
            .as_str()
            .unwrap_or("")
            .contains("unreachable"),
        "{unreachable}"
    );
    let body = bodies.recv_timeout(WAIT).expect("webhook called");
    assert_eq!(body["event"], "ring");
    assert!(body["url"].is_null(), "no link without a call: {body}");
    assert!(body["snapshot_jpeg_base64"].is_string(), "still a snapshot");
    agent.wait_for("notify_sent", WAIT);
    // The agent stays ready for the next ring.
    agent.close_stdin();
    assert!(agent.wait_exit(WAIT).success());
}
