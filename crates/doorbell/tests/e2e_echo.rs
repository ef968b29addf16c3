//! End to end: the owner's page sends a steady tone; the agent's speaker and microphone sit in
//! a simulated housing (`echo-room`: 40 ms, a decaying room, a mildly distorting speaker), so
//! the microphone hears the owner's tone back. With the audio processing on, the page must
//! hear its own tone at least 20 dB quieter than with every stage off.

mod support;

use std::time::Duration;
use support::{Agent, Server, browser};

const WAIT: Duration = Duration::from_secs(45);
const TONE_HZ: &str = "1000";

/// The level of the page's own tone in what it receives from the doorbell, after 3 s of call
/// (the echo canceller's convergence), over 2 s.
fn own_tone_heard_back(processing: &[&str]) -> f64 {
    let server = Server::start();
    let mut args = vec![
        "--video-size",
        "320x240",
        "--audio-in",
        "echo-room",
        "--audio-out",
        "echo-room",
    ];
    args.extend_from_slice(processing);
    let mut agent = Agent::for_server(&server, &args);
    agent.wait_for("connected", WAIT);
    agent.press();
    let notified = agent.wait_for("notified", WAIT);
    let url = notified["url"].as_str().expect("url").to_owned();
    let tone_level = format!("{TONE_HZ}:2");
    let result = browser(
        &url,
        &[
            "--send-tone",
            TONE_HZ,
            "--answer",
            "--measure-seconds",
            "3",
            "--tone-level",
            &tone_level,
            "--hangup",
            "--timeout-ms",
            "30000",
        ],
    );
    eprintln!("processing {processing:?}: {}", result["tone_level_db"]);
    agent.wait_for("call_end", WAIT);
    result["tone_level_db"]
        .as_f64()
        .unwrap_or_else(|| panic!("no tone level measured: {result}"))
}

#[test]
fn the_owner_hears_their_own_voice_back_20_db_quieter_with_echo_cancellation() {
    let off = own_tone_heard_back(&[
        "--echo-cancel",
        "false",
        "--noise-suppression",
        "false",
        "--auto-gain",
        "false",
        "--high-pass",
        "false",
    ]);
    let on = own_tone_heard_back(&[]);
    // The echo canceller alone, so noise suppression cannot take the credit.
    let echo_cancel_alone =
        own_tone_heard_back(&["--noise-suppression", "false", "--auto-gain", "false"]);
    assert!(
        off - echo_cancel_alone >= 20.0,
        "echo cancellation alone: only {:.1} dB quieter (off {off:.1} dB, on {echo_cancel_alone:.1} dB)",
        off - echo_cancel_alone
    );
    // Without processing the echo is plainly there; the comparison means something only then.
    assert!(off > on, "processing off {off:.1} dB, on {on:.1} dB");
    assert!(
        off - on >= 20.0,
        "the echo is only {:.1} dB quieter with processing (off {off:.1} dB, on {on:.1} dB)",
        off - on
    );
}
