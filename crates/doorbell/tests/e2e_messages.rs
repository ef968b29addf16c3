//! Unanswered rings end to end: the real agent plays its prompt and records the visitor, the
//! outbox uploads the clip to the real server, the history lists it, and it plays in headless
//! Chromium (length, pictures, sound). The outbox keeps a clip while the server is away.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::{Agent, HeldBrowser, Server, pairing_link, until};

const WAIT: Duration = Duration::from_secs(45);

/// A paired Chromium on the server's home view.
fn paired_home(server: &Server) -> HeldBrowser {
    paired_home_in(server, &[])
}

/// A paired browser (`browser_args`: e.g. `--browser firefox`) on the server's home view.
fn paired_home_in(server: &Server, browser_args: &[&str]) -> HeldBrowser {
    let link = pairing_link(server, "Anna");
    let mut args = vec!["--timeout-ms", "30000"];
    args.extend_from_slice(browser_args);
    let mut anna = HeldBrowser::open(&link, &args);
    anna.command("wait-state pairing", WAIT);
    anna.command("click pair-confirm", WAIT);
    anna.command("wait-state paired", WAIT);
    anna.command(&format!("goto {}/", server.url()), WAIT);
    anna.command("wait-state home", WAIT);
    anna
}

#[test]
fn an_unanswered_ring_leaves_a_video_message_that_plays_in_the_history() {
    message_plays_in(&[]);
}

#[test]
fn the_video_message_plays_in_firefox_too() {
    message_plays_in(&["--browser", "firefox"]);
}

fn message_plays_in(browser_args: &[&str]) {
    let server = Server::start();
    let mut anna = paired_home_in(&server, browser_args);
    let spool = tempfile::tempdir().expect("tempdir");
    let spool_dir = spool.path().to_str().expect("utf-8");
    let mut agent = Agent::for_server(
        &server,
        &[
            "--video-size",
            "320x240",
            "--ring-timeout",
            "2s",
            "--message-length",
            "3s",
            "--message-dir",
            spool_dir,
        ],
    );
    agent.wait_for("connected", WAIT);
    agent.ring(WAIT);
    let end = agent.wait_for("call_end", WAIT);
    assert_eq!(end["reason"], "no_answer", "{end}");
    agent.wait_for("message_recording", WAIT);
    let recorded = agent.wait_for("message_recorded", WAIT);
    let length_ms = recorded["duration_ms"].as_u64().expect("duration_ms");
    assert!((2500..=3200).contains(&length_ms), "{recorded}");
    agent.wait_for("message_uploaded", WAIT);
    // The owners are told on the text channels (here the console), not on the history upload;
    // that outcome and `message_uploaded` come from two tasks, in either order.
    let told_already = agent
        .seen
        .iter()
        .skip_while(|e| e["event"] != "message_recorded")
        .find(|e| e["event"] == "notify_sent")
        .cloned();
    let told = match told_already {
        Some(told) => told,
        None => agent.wait_for("notify_sent", WAIT),
    };
    assert_eq!(told["channel"], "console", "{told}");
    assert_eq!(
        std::fs::read_dir(spool.path()).expect("spool").count(),
        0,
        "the outbox is empty once the server has it"
    );

    // The history lists it by itself (ring_update) and it plays.
    let listed = until(&mut anna, "the message in the history", |s| {
        s["history"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Video message (3 s)"))
    });
    assert_eq!(listed["history"][0]["outcome"], "missed", "{listed}");
    let played = anna.command("play-message", WAIT);
    assert_eq!(played["found"], true, "{played}");
    assert_eq!(played["error"], Value::Null, "{played}");
    let duration = played["duration"].as_f64().expect("duration");
    assert!(
        (duration - length_ms as f64 / 1000.0).abs() <= 0.5,
        "video.duration {duration} vs recorded {length_ms} ms: {played}"
    );
    assert!(played["frames"].as_u64().unwrap_or(0) > 5, "{played}");
    assert_eq!(played["width"], 320, "{played}");
    // Chromium counts decoded audio bytes; Firefox says whether there is sound.
    assert!(
        played["audio_bytes"].as_u64().unwrap_or(0) > 0 || played["moz_has_audio"] == true,
        "an audio track: {played}"
    );
    anna.finish("close");
}

#[test]
fn a_message_waits_on_the_doorbell_while_the_server_is_away_and_lands_when_it_is_back() {
    let mut server = Server::start();
    let spool = tempfile::tempdir().expect("tempdir");
    let spool_dir = spool.path().to_str().expect("utf-8");
    let mut agent = Agent::for_server(
        &server,
        &[
            "--video-size",
            "320x240",
            "--ring-timeout",
            "1s",
            "--message-length",
            "2s",
            "--message-dir",
            spool_dir,
        ],
    );
    agent.wait_for("connected", WAIT);
    agent.ring(WAIT);
    agent.wait_for("message_recording", WAIT);
    // The server goes away while the visitor talks.
    server.kill();
    agent.wait_for("message_recorded", WAIT);
    let failed = agent.wait_for("message_failed", WAIT);
    assert_eq!(failed["retrying"], true, "{failed}");
    let kept: Vec<_> = std::fs::read_dir(spool.path())
        .expect("spool")
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kept.len(), 1, "kept on the doorbell: {kept:?}");
    assert!(
        kept[0].ends_with(".mp4") && !kept[0].ends_with(".part"),
        "{kept:?}"
    );
    // Back (same data dir, same port): the message lands on its own.
    server.restart();
    agent.wait_for("message_uploaded", Duration::from_secs(90));
    assert_eq!(std::fs::read_dir(spool.path()).expect("spool").count(), 0);
}

/// The level of a 16-bit mono WAV file's samples, in dBFS (None: no samples).
fn wav_level_dbfs(path: &std::path::Path) -> Option<f64> {
    let bytes = std::fs::read(path).ok()?;
    let data = bytes.windows(4).position(|w| w == b"data")? + 8;
    let samples: Vec<f64> = bytes
        .get(data..)?
        .chunks_exact(2)
        .map(|b| f64::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0)
        .collect();
    if samples.is_empty() {
        return None;
    }
    let rms = (samples.iter().map(|s| s * s).sum::<f64>() / samples.len() as f64).sqrt();
    Some(20.0 * rms.max(1e-9).log10())
}

/// A doorbell whose speaker is a WAV file (`speaker_wav`) and whose messages and replies are
/// kept in `spool`.
fn agent_with_speaker(
    server: &Server,
    speaker_wav: &std::path::Path,
    spool: &std::path::Path,
) -> Agent {
    let mut agent = Agent::for_server(
        server,
        &[
            "--video-size",
            "320x240",
            "--audio-out",
            &format!("wav:{}", speaker_wav.display()),
            "--message-dir",
            spool.to_str().expect("utf-8"),
        ],
    );
    agent.wait_for("connected", WAIT);
    agent
}

/// Records a reply named `name` in the page from the (fake) microphone, for about `seconds`.
fn record_reply(anna: &mut HeldBrowser, name: &str, seconds: u64) {
    anna.command(&format!("fill reply-name {name}"), WAIT);
    anna.command("click reply-record", WAIT);
    std::thread::sleep(Duration::from_secs(seconds));
    anna.command("click reply-record", WAIT);
    until(anna, "the reply saved", |s| s["replies"] == 1);
}

/// After a reply was tapped: it played (from the doorbell's copy) and the ring ended as
/// replied; the speaker's file holds the owner's recording.
fn assert_reply_played(agent: &mut Agent, speaker_wav: &std::path::Path) {
    let playing = agent.wait_for("reply_playing", WAIT);
    assert!(playing["after_ms"].is_u64(), "{playing}");
    let end = agent
        .seen
        .iter()
        .find(|e| e["event"] == "call_end")
        .cloned()
        .expect("the ring ended");
    assert_eq!(end["reason"], "replied", "{end}");
    assert!(
        !agent.seen.iter().any(|e| e["event"] == "message_recording"),
        "an answered visitor is not asked for a message"
    );
    let deadline = Instant::now() + WAIT;
    while wav_level_dbfs(speaker_wav).is_none_or(|level| level <= -40.0) {
        assert!(
            Instant::now() < deadline,
            "no reply on the speaker: {speaker_wav:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn an_owner_records_a_quick_reply_in_the_page_and_the_doorbell_plays_it_instead_of_a_call() {
    let server = Server::start();
    let speaker = tempfile::tempdir().expect("tempdir");
    let speaker_wav = speaker.path().join("speaker.wav");
    let spool = tempfile::tempdir().expect("tempdir");
    let mut agent = agent_with_speaker(&server, &speaker_wav, spool.path());
    let mut anna = paired_home(&server);
    record_reply(&mut anna, "Leave it at the door", 2);

    agent.ring(WAIT);
    until(&mut anna, "a reply button on the ringing entry", |s| {
        s["history"][0]["outcome"] == "ringing"
            && s["history"][0]["text"]
                .as_str()
                .is_some_and(|t| t.contains("Reply: Leave it at the door"))
    });
    anna.command("click-css #history li.ringing button[data-reply-id]", WAIT);
    let reply = agent.wait_for("reply", WAIT);
    assert_eq!(reply["end"], true, "{reply}");
    assert_reply_played(&mut agent, &speaker_wav);
    // The reply and the ring's end are two updates; the entry ends with both.
    until(&mut anna, "replied and ended in the history", |s| {
        s["history"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Replied: Leave it at the door"))
            && s["history"][0]["outcome"] == "missed"
    });
    anna.finish("close");
}

#[test]
fn a_quick_reply_from_the_rings_own_page_keeps_nobody_waiting() {
    let server = Server::start();
    let speaker = tempfile::tempdir().expect("tempdir");
    let speaker_wav = speaker.path().join("speaker.wav");
    let spool = tempfile::tempdir().expect("tempdir");
    let mut anna = paired_home(&server);
    record_reply(&mut anna, "Back in five minutes", 1);
    let mut agent = agent_with_speaker(&server, &speaker_wav, spool.path());
    let url = agent.ring(WAIT);
    // The notification's link, on the paired device: the ringing page offers the reply.
    anna.command(&format!("goto {url}"), WAIT);
    anna.command("wait-state ringing", WAIT);
    anna.command("click-css #call-replies button[data-reply-id]", WAIT);
    assert_reply_played(&mut agent, &speaker_wav);
    anna.finish("close");
}
