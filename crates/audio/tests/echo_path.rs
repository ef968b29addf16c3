//! The processing against a simulated doorbell housing: a speech-like far end played on the
//! speaker, its echo through a room (20–120 ms, a decaying response, a mildly distorting
//! speaker), microphone noise, and in part of the file a visitor talking.

use doorbell_audio::check::check;
use doorbell_audio::echo_room::{Noise, Room};
use doorbell_audio::measure::{FAR_ACTIVE_DBFS, level_dbfs, power};
use doorbell_audio::speech::speech_like;
use doorbell_audio::{AudioSettings, FRAME_10MS};
use std::time::Duration;

const SECONDS: f32 = 8.0;
/// Where the visitor talks (double talk with the far end), in seconds.
const NEAR_FROM: f32 = 5.0;
const NEAR_TO: f32 = 8.0;

struct Scene {
    far: Vec<i16>,
    /// What the microphone records: echo + noise + the visitor.
    mic: Vec<i16>,
    /// The visitor alone, as the microphone hears them.
    near: Vec<i16>,
}

fn scene(delay_ms: u64, seed: u64) -> Scene {
    let far = speech_like(SECONDS, 125.0, seed);
    let talker = speech_like(NEAR_TO - NEAR_FROM, 215.0, seed + 100);
    let mut room = Room::new(Duration::from_millis(delay_ms), 0.6, seed + 7);
    let echo = room.echo(&far);
    let mut noise = Noise::new(seed + 13);
    let from = (NEAR_FROM * 48_000.0) as usize;
    let mut near = vec![0_i16; far.len()];
    for (i, sample) in talker.iter().enumerate() {
        if let Some(slot) = near.get_mut(from + i) {
            // The visitor stands further away than the speaker is: about 6 dB quieter.
            *slot = sample / 2;
        }
    }
    let mic = echo
        .iter()
        .zip(&near)
        .map(|(echo, near)| {
            (echo + f32::from(*near) + noise.next_f32() * 40.0)
                .round()
                .clamp(-32_768.0, 32_767.0) as i16
        })
        .collect();
    Scene { far, mic, near }
}

fn seconds_to_frame(seconds: f32) -> usize {
    (seconds * 100.0) as usize
}

/// ERLE over the far-end-only part after 2 s of convergence (before the visitor talks).
fn far_only_erle(scene: &Scene, out: &[i16]) -> f64 {
    let (mut mic, mut processed) = (0.0, 0.0);
    for frame in seconds_to_frame(2.0)..seconds_to_frame(NEAR_FROM) {
        let span = frame * FRAME_10MS..(frame + 1) * FRAME_10MS;
        if level_dbfs(&scene.far[span.clone()]) > FAR_ACTIVE_DBFS {
            mic += power(&scene.mic[span.clone()]);
            processed += power(&out[span]);
        }
    }
    10.0 * (mic / processed.max(1e-3)).log10()
}

#[test]
fn echo_is_cancelled_by_25_db_where_only_the_far_end_talks() {
    for (delay_ms, seed) in [(20, 1), (60, 2), (120, 3)] {
        let scene = scene(delay_ms, seed);
        let report = check(&scene.far, &scene.mic, &AudioSettings::default(), 0).unwrap();
        let erle = far_only_erle(&scene, &report.out);
        eprintln!("echo delay {delay_ms} ms: ERLE {erle:.1} dB");
        assert!(
            erle >= 25.0,
            "echo delay {delay_ms} ms: ERLE {erle:.1} dB, want ≥ 25 dB"
        );
    }
}

#[test]
fn the_visitor_talking_over_the_far_end_loses_at_most_6_db() {
    let scene = scene(60, 4);
    // The gain control's job is to change the level; this measures what echo cancellation,
    // noise suppression and the high-pass filter do to the visitor, so it is off here.
    let settings = AudioSettings {
        auto_gain: false,
        ..AudioSettings::default()
    };
    let report = check(&scene.far, &scene.mic, &settings, 0).unwrap();
    // The output's power in the frames where the visitor talks (over the far end), against
    // the visitor alone at the microphone. (A waveform correlation would not do: noise
    // suppression's spectral gains change the phase, not the level.) Residual echo in the
    // output can only raise its power; the far-end-only part of this same run shows it is
    // more than 25 dB down, so it cannot hide a real loss of the visitor.
    let (mut near, mut processed) = (0.0, 0.0);
    for frame in seconds_to_frame(NEAR_FROM + 0.2)..seconds_to_frame(NEAR_TO) {
        let span = frame * FRAME_10MS..(frame + 1) * FRAME_10MS;
        if level_dbfs(&scene.near[span.clone()]) > -40.0 {
            near += power(&scene.near[span.clone()]);
            processed += power(&report.out[span]);
        }
    }
    let attenuation = 10.0 * (near / processed.max(1e-3)).log10();
    let erle = far_only_erle(&scene, &report.out);
    eprintln!(
        "double talk: the visitor attenuated by {attenuation:.1} dB (far end alone: ERLE {erle:.1} dB)"
    );
    assert!(erle >= 25.0, "echo left in the output: ERLE {erle:.1} dB");
    assert!(
        attenuation <= 6.0,
        "the visitor was attenuated by {attenuation:.1} dB in double talk, want ≤ 6 dB"
    );
}

#[test]
fn with_every_stage_off_the_microphone_passes_bit_exact() {
    let scene = scene(40, 5);
    let report = check(&scene.far, &scene.mic, &AudioSettings::OFF, 0).unwrap();
    assert_eq!(report.out, scene.mic);
}

#[test]
fn echo_cancellation_off_leaves_the_echo() {
    let scene = scene(40, 6);
    let settings = AudioSettings {
        echo_cancel: false,
        ..AudioSettings::default()
    };
    let report = check(&scene.far, &scene.mic, &settings, 0).unwrap();
    let erle = far_only_erle(&scene, &report.out);
    eprintln!("echo canceller off: ERLE {erle:.1} dB");
    assert!(
        erle < 10.0,
        "without the echo canceller ERLE was {erle:.1} dB"
    );
}

#[test]
fn auto_gain_raises_a_quiet_visitor() {
    // A visitor far from the microphone: speech about 30 dB below the usual level, no echo.
    let quiet: Vec<i16> = speech_like(SECONDS, 180.0, 9)
        .iter()
        .map(|s| s / 32)
        .collect();
    let silence = vec![0_i16; quiet.len()];
    let level_after_4_s = |settings: &AudioSettings| {
        let report = check(&silence, &quiet, settings, 0).unwrap();
        level_dbfs(&report.out[4 * 48_000..])
    };
    let without = level_after_4_s(&AudioSettings {
        auto_gain: false,
        ..AudioSettings::default()
    });
    let with = level_after_4_s(&AudioSettings::default());
    eprintln!("quiet visitor: {without:.1} dBFS without auto gain, {with:.1} dBFS with");
    assert!(
        with - without >= 10.0,
        "raised by only {:.1} dB",
        with - without
    );
}
