//! Faults with the real binaries (issue #6): a server restarted or killed, a page that vanishes,
//! a notifier that hangs, a media path that goes silent. Each test asserts the recovery and the
//! final state; the time limits are failure limits for a loaded 2-core machine, and the measured
//! times are printed (`cargo test -p doorbell --test e2e_faults -- --nocapture`).

mod support;

use std::net::TcpListener;
use std::time::{Duration, Instant, SystemTime};
use support::{Agent, HeldBrowser, Server, answer_briefly_and_hang_up, browser, seconds_after};

const WAIT: Duration = Duration::from_secs(45);

fn agent_for(server: &Server, extra: &[&str]) -> Agent {
    let mut args = vec!["--video-size", "320x240", "--fps", "15"];
    args.extend_from_slice(extra);
    Agent::for_server(server, &args)
}

fn ring(agent: &mut Agent) -> String {
    agent.ring(WAIT)
}

/// A browser in the call, media flowing both ways as far as the agent can tell.
fn answered(agent: &mut Agent, url: &str) -> HeldBrowser {
    let mut page = HeldBrowser::open(url, &["--answer", "--timeout-ms", "30000"]);
    let state = page.command("wait-state in-call", WAIT);
    assert_eq!(state["state"], "in-call", "{state}");
    agent.wait_for("media_connected", WAIT);
    page
}

#[test]
fn server_restarted_while_idle_agent_reconnects_and_the_next_ring_works() {
    let mut server = Server::start();
    let mut agent = agent_for(&server, &[]);
    agent.wait_for("connected", WAIT);

    let killed_at = SystemTime::now();
    server.kill();
    let lost = agent.wait_for("disconnected", WAIT);
    eprintln!(
        "measured: disconnected {:.3} s after the kill",
        seconds_after(&lost, killed_at)
    );
    // Stay down long enough for the backoff to reach its cap (250 ms → 1.5 s).
    std::thread::sleep(Duration::from_secs(4));

    server.restart();
    let back_at = SystemTime::now();
    let connected = agent.wait_for("connected", WAIT);
    let recovery = seconds_after(&connected, back_at);
    eprintln!("measured: connected again {recovery:.3} s after the server was back");
    // Target 2 s (backoff capped at 1.5 s); the limit leaves room for a loaded CI machine.
    assert!(
        recovery < 3.0,
        "connected {recovery:.3} s after the server came back"
    );
    // While down, the agent said at most once that it cannot reach the server, and nothing
    // else but the disconnect and reconnect.
    let seen = agent.take_seen();
    assert_eq!(seen.first().map(String::as_str), Some("ready"), "{seen:?}");
    let errors = seen.iter().filter(|e| *e == "error").count();
    assert!(errors <= 1, "one error per outage: {seen:?}");
    assert!(
        seen.iter()
            .all(|e| ["ready", "connected", "disconnected", "error"].contains(&e.as_str())),
        "{seen:?}"
    );

    // The next ring works end to end: created, notified, answered, hung up.
    let url = ring(&mut agent);
    answer_briefly_and_hang_up(&mut agent, &url, WAIT);
    agent.wait_for("ready", WAIT);
}

/// The server dies mid-call. The call is peer to peer: the media must keep flowing, the call
/// end by itself (here the 8 s maximum length), and the agent find the server again.
/// (The page keeps a call whose media flows when its Socket.IO connection drops.)
#[test]
fn server_killed_mid_call_media_keeps_flowing_and_the_agent_recovers() {
    let mut server = Server::start();
    let mut agent = agent_for(&server, &["--max-call", "8s", "--ice-lost-timeout", "2s"]);
    agent.wait_for("connected", WAIT);
    let url = ring(&mut agent);
    let mut page = answered(&mut agent, &url);

    server.kill();
    agent.wait_for("disconnected", WAIT);
    let after = page.command("measure 2", WAIT);
    eprintln!("measured after the server kill: {after}");
    let state = page.command("state", WAIT);
    assert!(
        after["frames_decoded"].as_u64().unwrap_or(0) > 10,
        "frames decoded after the server died: {after}; page {state}"
    );

    let end = agent.wait_for("call_end", WAIT);
    assert!(
        ["max_duration", "ice_lost"].contains(&end["reason"].as_str().unwrap_or("")),
        "{end}"
    );
    agent.wait_for("ready", WAIT);
    drop(page);

    server.restart();
    let back_at = SystemTime::now();
    let connected = agent.wait_for("connected", WAIT);
    eprintln!(
        "measured: connected {:.3} s after the server was back",
        seconds_after(&connected, back_at)
    );
}

/// What the agent sees when the server dies mid-call, whatever the page does: the call is
/// not cut by the agent (no `signaling_lost`), it ends by itself within its bounds, the agent
/// is `ready`, and `connected` again once the server is back.
#[test]
fn server_killed_mid_call_the_agent_ends_the_call_cleanly_and_reconnects() {
    let mut server = Server::start();
    let mut agent = agent_for(&server, &["--max-call", "8s", "--ice-lost-timeout", "2s"]);
    agent.wait_for("connected", WAIT);
    let url = ring(&mut agent);
    let page = answered(&mut agent, &url);

    let killed_at = SystemTime::now();
    server.kill();
    agent.wait_for("disconnected", WAIT);
    let end = agent.wait_for("call_end", WAIT);
    let ended = seconds_after(&end, killed_at);
    eprintln!(
        "measured: call_end ({}) {ended:.3} s after the kill",
        end["reason"]
    );
    assert!(
        ["max_duration", "ice_lost"].contains(&end["reason"].as_str().unwrap_or("")),
        "an established call is not cut by the agent for a signaling loss: {end}"
    );
    assert!(ended < 15.0, "call ended {ended:.3} s after the kill");
    agent.wait_for("ready", WAIT);
    drop(page);

    server.restart();
    let back_at = SystemTime::now();
    let connected = agent.wait_for("connected", WAIT);
    let recovery = seconds_after(&connected, back_at);
    eprintln!("measured: connected {recovery:.3} s after the server was back");
    assert!(recovery < 3.0, "reconnected after {recovery:.3} s");
}

#[test]
fn page_killed_without_hanging_up_ends_the_call_within_the_bound() {
    let server = Server::start();
    let mut agent = agent_for(&server, &["--ice-lost-timeout", "2s"]);
    agent.wait_for("connected", WAIT);
    let url = ring(&mut agent);
    let page = answered(&mut agent, &url);

    let killed_at = SystemTime::now();
    let result = page.finish("kill");
    assert_eq!(result["closed"], true, "{result}");
    let end = agent.wait_for("call_end", WAIT);
    let ended = seconds_after(&end, killed_at);
    eprintln!(
        "measured: call_end ({}) {ended:.3} s after the browser was killed",
        end["reason"]
    );
    // The server sees the socket die and relays `bye` (hangup); ICE loss is the fallback.
    assert!(
        ["hangup", "ice_lost"].contains(&end["reason"].as_str().unwrap_or("")),
        "{end}"
    );
    // Issue bound: 5 s; the limit allows for a loaded machine.
    assert!(ended < 8.0, "call ended {ended:.3} s after the kill");
    agent.wait_for("ready", WAIT);

    // And the doorbell rings again.
    ring(&mut agent);
}

#[test]
fn a_hanging_notifier_does_not_delay_the_call() {
    let server = Server::start();
    // Accepts connections and never answers a byte.
    let hanging = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = hanging.local_addr().expect("addr").port();
    let (accepted_tx, accepted) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in hanging.incoming() {
            let Ok(stream) = stream else { break };
            held.push(stream);
            if accepted_tx.send(()).is_err() {
                break;
            }
        }
    });
    let config = server.data_dir.path().join("doorbell.toml");
    std::fs::write(
        &config,
        format!("[[notify]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/hook\"\n"),
    )
    .expect("write config");
    let mut agent = agent_for(&server, &["--config", config.to_str().expect("utf-8")]);
    agent.wait_for("connected", WAIT);

    agent.press();
    let trigger = agent.wait_for("trigger", WAIT);
    let notified = agent.wait_for("notified", WAIT);
    let url = notified["url"].as_str().expect("url").to_owned();
    accepted
        .recv_timeout(WAIT)
        .expect("the webhook was tried (and hangs)");
    let to_notified =
        notified["ts"].as_f64().unwrap_or(f64::NAN) - trigger["ts"].as_f64().unwrap_or(f64::NAN);
    eprintln!("measured: trigger → notified {to_notified:.3} s with a hanging webhook");
    assert!(to_notified < 5.0, "notified after {to_notified:.3} s");

    let answered_at = Instant::now();
    answer_briefly_and_hang_up(&mut agent, &url, WAIT);
    agent.wait_for("ready", WAIT);
    eprintln!(
        "measured: whole call {:.3} s with the webhook hanging",
        answered_at.elapsed().as_secs_f64()
    );
    // The webhook's attempt is still hanging (its bound is 15 s): the call did not wait for it.
    let seen = agent.take_seen();
    assert!(seen.contains(&"media_connected".to_owned()), "{seen:?}");
}

/// The media path goes silent mid-call: every Chromium process is frozen (SIGSTOP), so no
/// STUN consent, RTP or RTCP comes back, while the TCP connection to the server stays open
/// (the kernel keeps it) and no `bye` is relayed. The agent must end the call on ICE loss.
#[test]
fn media_path_cut_mid_call_the_agent_ends_the_call_on_ice_loss() {
    let server = Server::start();
    let mut agent = agent_for(&server, &["--ice-lost-timeout", "2s"]);
    agent.wait_for("connected", WAIT);
    let url = ring(&mut agent);
    let page = answered(&mut agent, &url);

    let chromium = support::descendants(page.driver_pid());
    assert!(!chromium.is_empty(), "Chromium runs under the driver");
    let cut_at = SystemTime::now();
    support::signal_all(&chromium, "STOP");
    let end = agent.wait_for("call_end", Duration::from_secs(60));
    support::signal_all(&chromium, "KILL");
    let ended = seconds_after(&end, cut_at);
    eprintln!(
        "measured: call_end ({}) {ended:.3} s after the media path was cut",
        end["reason"]
    );
    assert_eq!(end["reason"], "ice_lost", "{end}");
    // ICE notices silence after ~5 s (webrtc-rs' disconnected timeout), then our 2 s bound.
    assert!(ended < 20.0, "call ended {ended:.3} s after the cut");
    agent.wait_for("ready", WAIT);
    drop(page);

    // The agent is still connected to the server and rings again.
    ring(&mut agent);
}

/// The doorbell token never reaches a log line, even at RUST_LOG=trace, over Engine.IO 4 (auth
/// payload) and Engine.IO 3 (query string): server and agent stderr are searched after a ring.
///
/// At debug/trace the server's socketioxide would log the CONNECT packet with the auth
/// payload (`socketioxide::client: auth ...`, `socketioxide::parser: decoding str payload
/// ... {"token":"..."}`) unless `init_logging` caps those crates at info, as it does.
#[test]
fn the_token_is_in_no_log_line_even_at_trace() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let token = "tok-7f3a9c1e5b2d4068a1c3e5f7";
    let port = support::free_port();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let server_log = dir.path().join("server.log");
    let server = Command::new(support::doorbell_bin())
        .args(["server", "--listen", &addr.to_string(), "--data-dir"])
        .arg(dir.path().join("data"))
        .env("DOORBELL_TOKEN", token)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&server_log).expect("log file"))
        .spawn()
        .expect("spawn server");
    let _server = support::Proc {
        child: server,
        name: "server".into(),
    };
    support::wait_for_port(addr, Duration::from_secs(20));
    let cert = dir.path().join("data/cert.pem");

    for eio in ["4", "3"] {
        let agent_log = dir.path().join(format!("agent{eio}.log"));
        let mut child = Command::new(support::doorbell_bin())
            .args(["agent", "--server", &format!("https://127.0.0.1:{port}")])
            .arg("--ca-cert")
            .arg(&cert)
            .args(["--engine-io", eio, "--trigger", "stdin", "--events", "json"])
            .args([
                "--ice-host",
                "127.0.0.1",
                "--video-size",
                "160x120",
                "--message-length",
                "0s",
            ])
            .env("DOORBELL_TOKEN", token)
            .env("RUST_LOG", "trace")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&agent_log).expect("log file"))
            .spawn()
            .expect("spawn agent");
        let stdout = child.stdout.take().expect("stdout");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut agent = support::Proc {
            child,
            name: "agent".into(),
        };
        let mut lines = BufReader::new(stdout).lines();
        let mut pressed = false;
        let mut events = Vec::new();
        loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("agent (EIO{eio}) ended early: {events:?}"))
                .expect("agent output");
            assert!(
                !line.contains(token),
                "the token in the event stream: {line}"
            );
            let event: serde_json::Value = serde_json::from_str(&line).expect("JSON line");
            let name = event["event"].as_str().unwrap_or("").to_owned();
            events.push(name.clone());
            if name == "connected" && !pressed {
                writeln!(stdin,).expect("press");
                pressed = true;
            }
            if name == "notified" {
                break;
            }
        }
        let _ = agent.child.kill();
        let _ = agent.child.wait();
        let text = std::fs::read_to_string(&agent_log).expect("agent log");
        assert!(text.len() > 1000, "the agent logged at trace");
        assert!(
            !text.contains(token),
            "EIO{eio}: the token in the agent's log: {}",
            text.lines().find(|l| l.contains(token)).unwrap_or("")
        );
    }
    let text = std::fs::read_to_string(&server_log).expect("server log");
    assert!(
        !text.contains(token),
        "the token in the server's log: {}",
        text.lines().find(|l| l.contains(token)).unwrap_or("")
    );
}

/// The media path cut from the page's side: the agent process is frozen (SIGSTOP), so the page
/// gets no media and no ICE consent answers. The page must say "connection lost"; once the
/// agent runs again it ends the call and is `ready` for the next ring.
#[test]
fn media_path_cut_the_page_shows_connection_lost_and_the_agent_recovers() {
    let server = Server::start();
    let mut agent = agent_for(&server, &["--ice-lost-timeout", "2s"]);
    agent.wait_for("connected", WAIT);
    let url = ring(&mut agent);
    let mut page = answered(&mut agent, &url);

    let agent_pid = [agent.pid()];
    let cut = Instant::now();
    support::signal_all(&agent_pid, "STOP");
    let state = page.command("wait-state lost", WAIT);
    let lost_after = cut.elapsed().as_secs_f64();
    support::signal_all(&agent_pid, "CONT");
    eprintln!(
        "measured: the page showed {} {lost_after:.3} s after the cut",
        state["state"]
    );
    assert_eq!(state["state"], "lost", "{state}");
    assert!(
        state["status"]
            .as_str()
            .unwrap_or("")
            .to_lowercase()
            .contains("connection lost"),
        "{state}"
    );
    // Chromium: ICE disconnected after a few seconds of silence, then the page's 4 s grace.
    assert!(lost_after < 20.0, "page lost after {lost_after:.3} s");

    let end = agent.wait_for("call_end", WAIT);
    eprintln!(
        "measured: agent call_end ({}) after resuming",
        end["reason"]
    );
    // The page's disconnect reaches the agent as `bye`; or ICE notices first.
    assert!(
        ["hangup", "ice_lost"].contains(&end["reason"].as_str().unwrap_or("")),
        "{end}"
    );
    agent.wait_for("ready", WAIT);
    drop(page);
    ring(&mut agent);
}

/// A camera that is missing at the ring: the call still goes on (audio only), and the agent
/// says why in its event stream.
#[test]
fn a_failing_camera_leaves_an_audio_only_call() {
    let server = Server::start();
    let mut agent = agent_for(&server, &["--video", "/dev/video-missing-for-test"]);
    agent.wait_for("connected", WAIT);
    let url = ring(&mut agent);
    let result = browser(
        &url,
        &[
            "--answer",
            "--wait-state-after",
            "in-call",
            "--settle-ms",
            "2000",
            "--hangup",
            "--timeout-ms",
            "30000",
        ],
    );
    eprintln!("page with a failing camera: {result}");
    assert_eq!(result["state"], "ended-local", "{result}");
    let end = agent.wait_for("call_end", WAIT);
    assert_eq!(end["reason"], "hangup", "{end}");
    assert_eq!(end["video_frames_sent"], 0, "{end}");
    assert!(
        end["audio_frames_nonsilent"].as_u64().unwrap_or(0) > 0,
        "the owner is still heard: {end}"
    );
    let errors = agent.error_messages();
    eprintln!("agent errors: {errors:?}");
    assert!(
        errors.iter().any(|m| m.contains("video-missing-for-test")),
        "the event stream names the failing camera: {errors:?}"
    );
    agent.wait_for("ready", WAIT);
}

/// An audio sink that cannot be opened: the visitor's video still reaches the page.
#[test]
fn a_failing_audio_sink_leaves_the_video() {
    let server = Server::start();
    let bad = server.data_dir.path().join("no-such-dir/owner.wav");
    let spec = format!("wav:{}", bad.display());
    let mut agent = agent_for(&server, &["--audio-out", &spec]);
    agent.wait_for("connected", WAIT);
    let url = ring(&mut agent);
    answer_briefly_and_hang_up(&mut agent, &url, WAIT);
    let errors = agent.error_messages();
    eprintln!("agent errors: {errors:?}");
    assert!(
        errors.iter().any(|m| m.contains("owner.wav")),
        "the event stream names the failing sink: {errors:?}"
    );
    agent.wait_for("ready", WAIT);
}
