//! One whole call scenario, run in every browser we test here: Debian's Chromium (through
//! playwright-core) and Debian's Firefox ESR (through puppeteer-core over WebDriver BiDi), with
//! the real server and agent binaries on loopback. Firefox as Debian ships it has no H.264, so
//! its call carries VP8; Chromium's carries H.264.

mod support;

use std::time::Duration;
use support::{Agent, HeldBrowser, Server, browser};

const WAIT: Duration = Duration::from_secs(45);

/// Ring, answer, see and hear both ways, hang up from the page; ring, answer, the doorbell ends
/// the call (its maximum length); ring, answer, close the tab.
fn whole_call(browser_name: &str, expected_codec: &str) {
    let server = Server::start();
    let wav = server.data_dir.path().join("owner.wav");
    let wav_spec = format!("wav:{}", wav.display());
    let mut agent = Agent::for_server(
        &server,
        &[
            "--video-size",
            "320x240",
            "--audio-out",
            &wav_spec,
            "--max-call",
            "12s",
        ],
    );
    agent.wait_for("connected", WAIT);
    let pick = ["--browser", browser_name];

    // --- 1: the page hangs up.
    let url = agent.ring(WAIT);
    let args = [
        &pick[..],
        &[
            "--answer",
            "--measure-seconds",
            "3",
            "--hangup",
            "--timeout-ms",
            "30000",
        ],
    ]
    .concat();
    let result = browser(&url, &args);
    eprintln!("{browser_name}: {result}");
    assert_eq!(result["page_errors"], serde_json::json!([]), "{result}");
    assert_eq!(result["video_width"], 320, "{result}");
    assert_eq!(result["video_height"], 240, "{result}");
    support::assert_live_video(&result, 20.0);
    let end = agent.wait_for("call_end", WAIT);
    assert_eq!(end["reason"], "hangup", "{end}");
    assert!(
        end["audio_frames_nonsilent"].as_u64().unwrap_or(0) > 25,
        "the page's microphone reached the doorbell: {end}"
    );
    agent.wait_for("ready", WAIT);

    // --- 2: the doorbell ends the call; the page says so.
    let mut owner = ring_and_answer(&mut agent, browser_name);
    owner.command("measure 1", WAIT);
    let state = owner.command("state", WAIT);
    let codec = state["stats"]["video"]["codec"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        codec.eq_ignore_ascii_case(expected_codec),
        "{browser_name} receives {codec:?}, want {expected_codec}: {state}"
    );
    let energy = state["stats"]["audio"]["totalAudioEnergy"]
        .as_f64()
        .unwrap_or(0.0);
    assert!(
        energy > 0.0,
        "the doorbell's tone is heard in the page: {state}"
    );
    let end = agent.wait_for("call_end", WAIT);
    assert_eq!(end["reason"], "max_duration", "{end}");
    let ended = owner.command("wait-state ended-remote", WAIT);
    assert_eq!(ended["state"], "ended-remote", "{ended}");
    owner.finish("close");
    agent.wait_for("ready", WAIT);

    // --- 3: the owner closes the tab.
    let owner = ring_and_answer(&mut agent, browser_name);
    agent.wait_for("media_connected", WAIT);
    let closed = owner.finish("close");
    assert_eq!(closed["closed"], true, "{closed}");
    let end = agent.wait_for("call_end", Duration::from_secs(20));
    assert_eq!(end["reason"], "hangup", "{end}");
}

/// A ring answered in `browser_name`, held open in the call.
fn ring_and_answer(agent: &mut Agent, browser_name: &str) -> HeldBrowser {
    let url = agent.ring(WAIT);
    let mut owner = HeldBrowser::open(
        &url,
        &[
            "--browser",
            browser_name,
            "--answer",
            "--timeout-ms",
            "30000",
        ],
    );
    let state = owner.command("wait-state in-call", WAIT);
    assert_eq!(state["state"], "in-call", "{state}");
    owner
}

#[test]
fn a_whole_call_in_chromium_carries_h264() {
    whole_call("chromium", "video/H264");
}

#[test]
fn a_whole_call_in_firefox_carries_vp8() {
    whole_call("firefox", "video/VP8");
}
