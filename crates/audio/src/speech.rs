//! A speech-like test signal: voiced syllables on a gliding pitch with formant structure,
//! about four a second with pauses between words. Echo cancellers behave very differently on
//! tones and white noise than on speech; this is close enough to speech to test one honestly
//! without shipping a recording.

use crate::echo_room::Noise;
use doorbell_media::SAMPLE_RATE;
use std::f32::consts::PI;

const SYLLABLES_PER_SECOND: f32 = 4.0;
/// Peak level of the signal, about -9 dBFS.
const PEAK: f32 = 11_000.0;

/// `seconds` of a talker with base pitch `pitch_hz` (≈120 Hz a man, ≈210 Hz a woman).
pub fn speech_like(seconds: f32, pitch_hz: f32, seed: u64) -> Vec<i16> {
    let rate = SAMPLE_RATE as f32;
    let total = (seconds * rate) as usize;
    let mut noise = Noise::new(seed);
    let syllables = (seconds * SYLLABLES_PER_SECOND).ceil() as usize + 1;
    // Per syllable: voiced or a pause, and two formant frequencies.
    let plan: Vec<(bool, f32, f32)> = (0..syllables)
        .map(|_| {
            let voiced = noise.next_f32() > -0.6; // about 80 % of syllables
            let f1 = 300.0 + (noise.next_f32() + 1.0) * 250.0;
            let f2 = 900.0 + (noise.next_f32() + 1.0) * 650.0;
            (voiced, f1, f2)
        })
        .collect();
    let mut phase = 0.0_f32;
    let mut out = Vec::with_capacity(total);
    for n in 0..total {
        let t = n as f32 / rate;
        let position = t * SYLLABLES_PER_SECOND;
        let index = position as usize;
        let (voiced, f1, f2) = plan.get(index).copied().unwrap_or((false, 500.0, 1500.0));
        let within = position.fract();
        let envelope = if voiced {
            (PI * within).sin().powi(2)
        } else {
            0.0
        };
        let pitch = pitch_hz * (1.0 + 0.12 * (2.0 * PI * 0.7 * t).sin());
        phase = (phase + 2.0 * PI * pitch / rate) % (2.0 * PI * 64.0);
        let mut voice = 0.0;
        let mut harmonic = 1;
        while harmonic as f32 * pitch < 4_000.0 {
            let f = harmonic as f32 * pitch;
            let formants =
                (-((f - f1) / 180.0).powi(2)).exp() + 0.6 * (-((f - f2) / 250.0).powi(2)).exp();
            voice += (0.15 + formants) / (harmonic as f32).sqrt() * (phase * harmonic as f32).sin();
            harmonic += 1;
        }
        // A little breath noise, as in real voices.
        let breath = 0.05 * noise.next_f32();
        out.push((envelope * (voice * 0.35 + breath) * PEAK).clamp(-32_768.0, 32_767.0) as i16);
    }
    out
}
