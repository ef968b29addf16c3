//! `doorbell audio-check`: the call path's microphone processing over WAV files, through the
//! binary, with the config's `[agent.audio]` and the refusals of bad input.

use doorbell_audio::echo_room::{Noise, Room};
use doorbell_audio::speech::speech_like;
use doorbell_media::{AudioSink, WavSink};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

mod support;

use support::doorbell_command as doorbell;

fn write_wav(path: &Path, samples: &[i16]) {
    let mut sink = WavSink::create(path).expect("create wav");
    sink.write(samples).expect("write wav");
    sink.finish().expect("finish wav");
}

/// A far end and the microphone hearing its echo through a housing (60 ms), 6 s.
fn recordings(dir: &Path) -> (PathBuf, PathBuf) {
    let far = speech_like(6.0, 130.0, 21);
    let mut room = Room::new(Duration::from_millis(60), 0.6, 22);
    let mut noise = Noise::new(23);
    let mic: Vec<i16> = room
        .echo(&far)
        .iter()
        .map(|echo| (echo + noise.next_f32() * 40.0).round() as i16)
        .collect();
    let (far_path, mic_path) = (dir.join("far.wav"), dir.join("mic.wav"));
    write_wav(&far_path, &far);
    write_wav(&mic_path, &mic);
    (far_path, mic_path)
}

fn audio_check(dir: &Path, far: &Path, mic: &Path, extra: &[&str]) -> Output {
    doorbell()
        .arg("audio-check")
        .arg("--far")
        .arg(far)
        .arg("--mic")
        .arg(mic)
        .arg("--out")
        .arg(dir.join("out.wav"))
        .args(extra)
        .output()
        .expect("doorbell runs")
}

/// The `erle_db` of the one JSON line printed.
fn erle(output: &Output) -> f64 {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line: serde_json::Value = serde_json::from_str(stdout.trim()).expect("one JSON line");
    assert!(line["frames"].as_u64() == Some(600), "{line}");
    assert!(
        line["ms_per_frame"].as_f64().is_some_and(|ms| ms > 0.0),
        "{line}"
    );
    line["erle_db"].as_f64().expect("erle_db")
}

#[test]
fn reports_the_echo_removed_and_writes_the_processed_microphone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (far, mic) = recordings(dir.path());
    let output = audio_check(dir.path(), &far, &mic, &[]);
    assert!(output.status.success(), "{output:?}");
    let erle = erle(&output);
    assert!(erle >= 25.0, "ERLE {erle:.1} dB");
    let out = doorbell_audio::wav_file::read_wav(&dir.path().join("out.wav")).expect("out.wav");
    assert_eq!(out.len(), 6 * 48_000);
}

#[test]
fn the_config_file_turns_the_echo_canceller_off_and_a_flag_back_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (far, mic) = recordings(dir.path());
    let config = dir.path().join("doorbell.toml");
    std::fs::write(&config, "[agent.audio]\necho_cancel = false\n").expect("config");
    let off = audio_check(
        dir.path(),
        &far,
        &mic,
        &["--config", config.to_str().unwrap()],
    );
    assert!(off.status.success(), "{off:?}");
    assert!(erle(&off) < 10.0, "echo canceller off in the file");
    let on = audio_check(
        dir.path(),
        &far,
        &mic,
        &["--config", config.to_str().unwrap(), "--echo-cancel"],
    );
    assert!(erle(&on) >= 25.0, "the flag beats the file");
}

fn refused(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn mismatched_or_foreign_files_are_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (far, _) = recordings(dir.path());
    let short = dir.path().join("short.wav");
    write_wav(&short, &[0; 48_000]);
    let error = refused(&audio_check(dir.path(), &far, &short, &[]));
    assert!(
        error.contains("6.00 s") && error.contains("1.00 s"),
        "{error}"
    );

    let text = dir.path().join("notes.wav");
    std::fs::write(&text, "not audio").expect("write");
    let error = refused(&audio_check(dir.path(), &far, &text, &[]));
    assert!(
        error.contains("notes.wav") && error.contains("not a WAV"),
        "{error}"
    );

    let missing = dir.path().join("missing.wav");
    let error = refused(&audio_check(dir.path(), &missing, &far, &[]));
    assert!(error.contains("missing.wav"), "{error}");

    let error = refused(&audio_check(dir.path(), &far, &far, &["--mic-gain", "45"]));
    assert!(error.contains("mic-gain"), "{error}");

    let config = dir.path().join("doorbell.toml");
    std::fs::write(&config, "[agent.audio]\necho_cancelation = false\n").expect("config");
    let error = refused(&audio_check(
        dir.path(),
        &far,
        &far,
        &["--config", config.to_str().unwrap()],
    ));
    assert!(error.contains("echo_cancelation"), "{error}");

    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    assert!(
        !names.iter().any(|name| name.starts_with("out.wav")),
        "nothing written: {names:?}"
    );
}
