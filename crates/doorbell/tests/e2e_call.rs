//! End to end: the real `doorbell server` and `doorbell agent` binaries (test pattern + tone),
//! answered by headless Chromium opening the link with fake media devices, on loopback.

mod support;

use std::time::Duration;
use support::{Agent, HeldBrowser, Server, browser};

const WAIT: Duration = Duration::from_secs(45);

fn assert_call_end(event: &serde_json::Value, reason: &str) {
    assert_eq!(event["reason"], reason, "call_end: {event}");
}

#[test]
fn a_ring_answered_in_chromium_then_busy_link_closed_page_and_ended_link() {
    let server = Server::start();
    let wav = server.data_dir.path().join("owner.wav");
    let wav_spec = format!("wav:{}", wav.display());
    let mut agent = Agent::for_server(
        &server,
        &[
            "--video-size",
            "320x240",
            "--fps",
            "30",
            "--audio-out",
            &wav_spec,
        ],
    );
    agent.wait_for("connected", WAIT);

    // --- First ring: answer, see and hear, hang up from the page.
    agent.press();
    let notified = agent.wait_for("notified", WAIT);
    let url = notified["url"].as_str().expect("url").to_owned();
    assert!(
        url.starts_with(&format!("{}/?room=", server.url())),
        "{url}"
    );
    let room = url.rsplit('=').next().expect("room").to_owned();
    assert!(room.len() >= 22, "room ids carry >= 96 random bits: {room}");

    let result = browser(
        &url,
        &[
            "--answer",
            "--measure-seconds",
            "3",
            "--hangup",
            "--timeout-ms",
            "30000",
        ],
    );
    eprintln!("browser result: {result}");
    assert_eq!(result["video_width"], 320, "{result}");
    assert_eq!(result["video_height"], 240, "{result}");
    assert!(
        result["measured_seconds"].as_f64().unwrap_or(0.0) >= 2.0,
        "{result}"
    );
    support::assert_live_video(&result, 25.0);

    let end = agent.wait_for("call_end", WAIT);
    assert_call_end(&end, "hangup");
    assert!(end["video_frames_sent"].as_u64().unwrap_or(0) > 60, "{end}");
    assert!(
        end["audio_frames_nonsilent"].as_u64().unwrap_or(0) > 25,
        "the agent decoded the page's fake microphone: {end}"
    );
    agent.wait_for("ready", WAIT);
    // The event stream tells the whole story, in order (notifier outcomes come whenever the
    // channel finishes, so they are left out of the order).
    let order: Vec<String> = agent
        .take_seen()
        .into_iter()
        .filter(|e| !e.starts_with("notify_"))
        .collect();
    assert_eq!(
        order,
        [
            "ready",
            "connected",
            "trigger",
            "created",
            "notified",
            "new_peer",
            "invite",
            "ok_sent",
            "media_connected",
            "bye_received",
            "call_end",
            "ready"
        ]
    );
    let wav_len = std::fs::metadata(&wav).map(|m| m.len()).unwrap_or(0);
    assert!(
        wav_len > 44 + 48_000,
        "owner audio written to the WAV sink: {wav_len} bytes"
    );

    // --- Second ring in the same agent: a second browser on a live link is turned away,
    // and a page closed without hanging up ends the call by itself.
    agent.press();
    let url2 = agent.wait_for("notified", WAIT)["url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert_ne!(url2, url, "each ring has a fresh room");
    let mut owner = HeldBrowser::open(&url2, &["--answer", "--timeout-ms", "30000"]);
    let state = owner.command("wait-state in-call", WAIT);
    assert_eq!(state["state"], "in-call", "{state}");
    agent.wait_for("media_connected", WAIT);

    // A second device on the link learns it while the page loads: no Answer to tap.
    let second = browser(&url2, &["--wait-state", "full", "--timeout-ms", "20000"]);
    assert_eq!(second["state"], "full", "{second}");
    assert!(
        second["status"]
            .as_str()
            .unwrap_or("")
            .contains("already answered"),
        "{second}"
    );

    // A press during the call is reported busy and starts nothing.
    agent.press();
    let busy = agent.wait_for("trigger", WAIT);
    assert_eq!(busy["busy"], true);

    let closed = owner.finish("close");
    assert_eq!(closed["closed"], true, "{closed}");
    let end = agent.wait_for("call_end", Duration::from_secs(15));
    assert_call_end(&end, "hangup");
    agent.wait_for("ready", WAIT);

    // --- The link after the call shows that it has ended.
    let after = browser(
        &url2,
        &["--wait-state", "no-such-room", "--timeout-ms", "20000"],
    );
    assert_eq!(after["state"], "no-such-room", "{after}");

    // --- End of input while idle: the agent exits cleanly.
    agent.close_stdin();
    let status = agent.wait_exit(WAIT);
    assert!(status.success(), "agent exit: {status}");
}

/// The lab's own page — its socket.io 2.x client, a complete offer after full gathering, its
/// `#callButton` — calling our agent through our server (the page served from elsewhere, as
/// the lab's Flask app served it).
#[test]
fn the_labs_page_with_its_socket_io_2_client_calls_through_our_server() {
    let server = Server::start();
    let pages = support::LabServer::start();
    let mut agent = Agent::for_server(&server, &["--video-size", "320x240"]);
    agent.wait_for("connected", WAIT);
    let url = agent.ring(WAIT);
    let room = url.rsplit('=').next().expect("room");
    let lab_page = format!("{}/?room={room}&server={}", pages.url(), server.url());
    lab_page_calls(&mut agent, &lab_page);
}

/// A lab-style page at `url` answers, shows 320x240 video for 2 s and hangs up; the doorbell
/// heard its microphone.
fn lab_page_calls(agent: &mut Agent, url: &str) {
    let result = browser(
        url,
        &[
            "--answer",
            "--wait-state-after",
            "in-call",
            "--measure-seconds",
            "2",
            "--hangup",
            "--timeout-ms",
            "30000",
        ],
    );
    eprintln!("lab page result: {result}");
    assert_eq!(result["video_width"], 320, "{result}");
    assert!(result["fps"].as_f64().unwrap_or(0.0) >= 20.0, "{result}");
    let end = agent.wait_for("call_end", WAIT);
    assert_call_end(&end, "hangup");
    assert!(
        end["audio_frames_nonsilent"].as_u64().unwrap_or(0) > 0,
        "the lab page's microphone reached the doorbell: {end}"
    );
}

/// The same call through the lab's stack: a Flask-SocketIO 5.x server running the lab's
/// protocol, and a page that sends a complete offer and ignores trickled candidates.
#[test]
fn a_ring_through_the_lab_flask_server_answered_by_a_lab_style_page() {
    let lab = support::LabServer::start();
    let mut agent = Agent::start(&["--server", &lab.url(), "--video-size", "320x240"], &[]);
    agent.wait_for("connected", WAIT);
    agent.press();
    let url = agent.wait_for("notified", WAIT)["url"]
        .as_str()
        .expect("url")
        .to_owned();
    assert!(url.starts_with(&format!("{}/?room=", lab.url())), "{url}");
    lab_page_calls(&mut agent, &url);
    agent.wait_for("ready", WAIT);
}
