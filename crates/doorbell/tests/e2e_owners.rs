//! The owner app end to end: the real server, agent and `doorbell owners` command, two paired
//! devices in headless Chromium. Pair from the link, see a ring appear in the history with its
//! snapshot, answer it from the history, the other device is told who answered, revoke; live
//! view; Web Push to a real headless Firefox through a push service stand-in.

mod support;

use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::{
    Agent, HeldBrowser, Server, owners, paired_browser, pairing_link, until, workspace_root,
};

const WAIT: Duration = Duration::from_secs(45);

#[test]
fn owners_pair_see_rings_live_answer_from_the_history_and_are_told_who_answered() {
    let server = Server::start();
    let mut anna = paired_browser(&pairing_link(&server, "Anna"));
    let mut ben = paired_browser(&pairing_link(&server, "Ben"));
    let listed = owners(&server, &["list"]);
    assert!(
        listed.contains("Anna") && listed.contains("Ben"),
        "{listed}"
    );

    // Anna's home: the history, empty, live.
    anna.command(&format!("goto {}/", server.url()), WAIT);
    let home = anna.command("wait-state home", WAIT);
    assert_eq!(home["state"], "home", "{home}");
    let mut agent = Agent::for_server(&server, &["--video-size", "320x240"]);
    agent.wait_for("connected", WAIT);
    let url = agent.ring(WAIT);

    // The ring appears by itself, ringing, with the visitor's photo.
    let state = until(&mut anna, "a ringing entry with its photo", |s| {
        s["history"][0]["outcome"] == "ringing" && s["history"][0]["thumbnail_loaded"] == true
    });
    assert_eq!(
        state["history"].as_array().map(Vec::len),
        Some(1),
        "{state}"
    );

    // Ben has the ring's link open; Anna answers from the history.
    let ringing = ben.command(&format!("goto {url}"), WAIT);
    assert_eq!(ringing["state"], "ringing", "{ringing}");
    anna.command("click-css #history li.ringing a", WAIT);
    let call_page = anna.command("wait-state ringing", WAIT);
    assert_eq!(call_page["state"], "ringing", "{call_page}");
    anna.command("click answer", WAIT);
    let in_call = anna.command("wait-state in-call", WAIT);
    assert_eq!(in_call["state"], "in-call", "{in_call}");
    agent.wait_for("media_connected", WAIT);

    // Ben's page is told at once, without trying to answer.
    let told = ben.command("wait-state full", WAIT);
    assert_eq!(told["status"], "Answered by Anna", "{told}");

    anna.command("click hangup", WAIT);
    agent.wait_for("call_end", WAIT);
    anna.command(&format!("goto {}/", server.url()), WAIT);
    anna.command("wait-state home", WAIT);
    let home = until(&mut anna, "the answered entry", |s| {
        s["history"][0]["outcome"] == "answered"
    });
    let entry = &home["history"][0];
    assert_eq!(entry["outcome"], "answered", "{home}");
    assert!(
        entry["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Answered by Anna"),
        "{home}"
    );

    // Revoking Ben ends his access: his page no longer gets the history.
    owners(&server, &["revoke", "Ben"]);
    ben.command(&format!("goto {}/", server.url()), WAIT);
    let after = until(&mut ben, "the page knows it is not paired any more", |s| {
        s["owner"] == "unpaired"
    });
    assert_eq!(after["state"], "no-room", "{after}");
    assert!(owners(&server, &["list"]).contains("revoked"));

    // Revoking Anna while her history is open closes her connection: the next ring reaches
    // Cleo's open history, not Anna's.
    let mut cleo = paired_browser(&pairing_link(&server, "Cleo"));
    cleo.command(&format!("goto {}/", server.url()), WAIT);
    cleo.command("wait-state home", WAIT);
    owners(&server, &["revoke", "Anna"]);
    std::thread::sleep(Duration::from_millis(1500)); // the server's revocation sweep: 1 s
    agent.wait_for("ready", WAIT);
    agent.ring(WAIT);
    until(&mut cleo, "the second ring at Cleo's", |s| {
        s["history"].as_array().map(Vec::len) == Some(2)
    });
    let anna_now = anna.command("state", WAIT);
    assert_eq!(
        anna_now["history"].as_array().map(Vec::len),
        Some(1),
        "a revoked device hears nothing more: {anna_now}"
    );
    for device in [anna, ben, cleo] {
        device.finish("close");
    }
}

#[test]
fn a_paired_owner_opens_a_live_view_without_a_ring_and_a_ring_takes_it_over() {
    let server = Server::start();
    let mut anna = paired_browser(&pairing_link(&server, "Anna"));
    let mut agent = Agent::for_server(&server, &["--video-size", "320x240"]);
    agent.wait_for("connected", WAIT);
    agent.take_seen();
    anna.command(&format!("goto {}/", server.url()), WAIT);
    anna.command("wait-state home", WAIT);

    // Live view: the camera without a ring, the owner not heard until they unmute.
    anna.command("click live", WAIT);
    let live = until(&mut anna, "the live view's call", |s| {
        s["state"] == "in-call" && s["video_width"].as_u64().unwrap_or(0) > 0
    });
    assert_eq!(live["status"], "Live view", "{live}");
    assert_eq!(live["mute_label"], "Unmute", "{live}");
    assert_eq!(
        live["mic_track_enabled"],
        Value::Null,
        "no microphone on the sender before Unmute: {live}"
    );
    let live_url = live["url"].as_str().unwrap_or_default().to_owned();
    assert!(live_url.contains("live=1"), "{live}");
    agent.wait_for("media_connected", WAIT);
    let seen = agent.take_seen();
    assert!(seen.contains(&"live_view".to_owned()), "{seen:?}");
    for quiet in ["trigger", "notified", "notify_sent", "notify_failed"] {
        assert!(
            !seen.iter().any(|e| e == quiet),
            "a live view rings nothing and tells nobody ({quiet}): {seen:?}"
        );
    }
    // Unmute puts the owner's microphone on the call.
    anna.command("click mute", WAIT);
    let talking = anna.command("wait-mic", WAIT);
    assert_eq!(talking["attached"], true, "{talking}");

    // Someone rings: the live view ends and Anna's device is handed the ring.
    agent.press();
    let end = agent.wait_for("call_end", WAIT);
    assert_eq!(end["reason"], "ring_took_over", "{end}");
    agent.wait_for("notified", WAIT);
    let handed = until(&mut anna, "the ring opened where the live view was", |s| {
        s["state"] == "in-call"
            && s["url"]
                .as_str()
                .is_some_and(|u| u != live_url && u.contains("live=1"))
    });
    assert_eq!(handed["mute_label"], "Unmute", "still not heard: {handed}");
    agent.wait_for("media_connected", WAIT);
    anna.command("click hangup", WAIT);
    agent.wait_for("call_end", WAIT);

    // The history has the ring, answered by Anna, and nothing for the live view.
    anna.command(&format!("goto {}/", server.url()), WAIT);
    let home = until(&mut anna, "the answered ring", |s| {
        s["history"][0]["outcome"] == "answered"
    });
    assert_eq!(home["history"].as_array().map(Vec::len), Some(1), "{home}");
    assert!(
        home["history"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("Answered by Anna"),
        "{home}"
    );
    anna.finish("close");
}

/// tests/e2e/push_service.js: the push service Firefox subscribes with, on loopback.
struct PushService {
    child: Child,
    _stdin: ChildStdin,
    events: mpsc::Receiver<Value>,
    port: u16,
}

impl PushService {
    fn start() -> PushService {
        let mut child = Command::new("node")
            .arg(workspace_root().join("tests/e2e/push_service.js"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn push_service.js");
        let stdout = child.stdout.take().expect("stdout");
        let stdin = child.stdin.take().expect("stdin");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[push service] {line}");
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && tx.send(v).is_err()
                {
                    break;
                }
            }
        });
        let mut service = PushService {
            child,
            _stdin: stdin,
            events,
            port: 0,
        };
        let listening = service.wait_for("listening");
        service.port = listening["port"].as_u64().expect("port") as u16;
        service
    }

    fn wait_for(&mut self, name: &str) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self
                .events
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("the push service saw no {name}"));
            if event["event"] == name {
                return event;
            }
        }
    }

    /// Drops a channel, as a push service does when a subscription expires.
    fn drop_channel(&mut self, channel: &str) {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        write!(
            stream,
            "DELETE /push/{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut answer = String::new();
        let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
        assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
        self.wait_for("dropped");
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_ring_reaches_a_subscribed_firefox_by_web_push_and_a_gone_subscription_is_forgotten() {
    let mut push = PushService::start();
    let server = Server::start_with(&["--push-allow-http"]);
    let service_url = format!("ws://127.0.0.1:{}", push.port);
    let link = pairing_link(&server, "Firefox");
    let mut firefox = HeldBrowser::open(
        &link,
        &[
            "--browser",
            "firefox",
            "--push-service",
            &service_url,
            "--timeout-ms",
            "30000",
        ],
    );
    firefox.command("wait-state pairing", WAIT);
    firefox.command("click pair-confirm", WAIT);
    firefox.command("wait-state paired", WAIT);
    firefox.command(&format!("goto {}/", server.url()), WAIT);
    firefox.command("wait-state home", WAIT);
    let ready = until(&mut firefox, "the notify button", |s| s["push"] == "off");
    assert_eq!(ready["owner"], "paired", "{ready}");

    // "Notify this device": Firefox registers with its push service, the server keeps it.
    firefox.command("click notify", WAIT);
    let registered = push.wait_for("register");
    let channel = registered["channel"].as_str().expect("channel").to_owned();
    until(&mut firefox, "subscribed", |s| s["push"] == "on");

    // Nobody answers: each ring ends after 5 s.
    let mut agent = Agent::for_server(
        &server,
        &["--video-size", "320x240", "--ring-timeout", "5s"],
    );
    agent.wait_for("connected", WAIT);
    let url = agent.ring(WAIT);
    let room = url.split("room=").nth(1).expect("room").to_owned();
    let pushed = push.wait_for("push");
    assert_eq!(pushed["status"], 201, "{pushed}");
    assert_eq!(pushed["encoding"], "aes128gcm", "{pushed}");
    assert_eq!(pushed["vapid"], true, "{pushed}");
    assert_eq!(pushed["urgency"], "high", "{pushed}");
    let acked = push.wait_for("ack");
    assert_eq!(acked["updates"][0], 100, "Firefox decrypted it: {acked}");

    // The service worker shows it: who, when, the photo, and Answer opening the call.
    let deadline = Instant::now() + WAIT;
    let shown = loop {
        let reply = firefox.command("notifications", WAIT);
        if let Some(first) = reply["shown"].as_array().and_then(|a| a.first()).cloned() {
            break first;
        }
        assert!(Instant::now() < deadline, "no notification shown: {reply}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(shown["title"], "Someone is at the door", "{shown}");
    assert_eq!(shown["tag"], room.as_str(), "{shown}");
    assert_eq!(shown["url"], format!("/?room={room}"), "{shown}");
    assert_eq!(shown["photo"], true, "the visitor's photo: {shown}");
    assert_eq!(shown["actions"][0], "answer", "{shown}");
    assert!(
        shown["body"]
            .as_str()
            .is_some_and(|b| b.starts_with("Rang at ")),
        "{shown}"
    );
    agent.wait_for("call_end", WAIT);

    // The push service drops the subscription: the next ring gets 410 and the server forgets
    // it, so the ring after that is pushed to nobody.
    push.drop_channel(&channel);
    agent.wait_for("ready", WAIT);
    agent.ring(WAIT);
    assert_eq!(push.wait_for("push")["status"], 410);
    agent.wait_for("call_end", WAIT);
    agent.wait_for("ready", WAIT);
    agent.ring(WAIT);
    std::thread::sleep(Duration::from_secs(2)); // the push waits ≤ 1 s for the photo
    let late: Vec<Value> = push.events.try_iter().collect();
    assert!(
        !late.iter().any(|e| e["event"] == "push"),
        "a forgotten subscription gets nothing: {late:?}"
    );
    firefox.finish("close");
}
