//! A simulated doorbell housing: what the speaker plays reaches the microphone delayed, through
//! a decaying room response and a small speaker's mild distortion. The synthetic echo tests
//! use [`Room`]; `--audio-out echo-room --audio-in echo-room` puts it between a call's speaker
//! and microphone ([`echo_room_devices`]), for the end-to-end echo test.

use doorbell_media::{AudioSink, AudioSource, FRAME_SAMPLES, MediaError, SAMPLE_RATE};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Reflections after the direct path.
const REFLECTIONS: usize = 24;
/// The room's tail: reflections spread over this much time after the direct path.
const TAIL: Duration = Duration::from_millis(60);

/// A deterministic pseudo-random sequence (xorshift), so every run of a test is the same.
#[derive(Debug, Clone)]
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    /// Uniform in [-1, 1).
    pub fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1_u64 << 23) as f32) - 1.0
    }
}

/// The acoustic path from speaker to microphone.
#[derive(Debug, Clone)]
pub struct Room {
    /// (delay in samples, gain) of the direct path and each reflection.
    taps: Vec<(usize, f32)>,
    /// The speaker's recent output, newest last, as long as the longest tap.
    history: VecDeque<f32>,
}

impl Room {
    /// A room whose direct path arrives after `delay` with `gain` (a housing a few centimetres
    /// across: about 0.3–0.7), followed by reflections decaying over 60 ms.
    pub fn new(delay: Duration, gain: f32, seed: u64) -> Self {
        let rate = f64::from(SAMPLE_RATE);
        let direct = (delay.as_secs_f64() * rate) as usize;
        let tail = (TAIL.as_secs_f64() * rate) as usize;
        let mut noise = Noise::new(seed);
        let mut taps = vec![(direct, gain)];
        for _ in 0..REFLECTIONS {
            let after = ((noise.next_f32() + 1.0) / 2.0 * tail as f32) as usize + 1;
            // Exponential decay: -30 dB at the end of the tail.
            let decay = 10_f32.powf(-1.5 * after as f32 / tail as f32);
            taps.push((direct + after, gain * 0.35 * decay * noise.next_f32()));
        }
        let longest = taps.iter().map(|&(at, _)| at).max().unwrap_or(0) + 1;
        Self {
            taps,
            history: VecDeque::from(vec![0.0; longest]),
        }
    }

    /// The echo of `played` at the microphone, sample for sample (same length).
    pub fn echo(&mut self, played: &[i16]) -> Vec<f32> {
        played
            .iter()
            .map(|&sample| {
                // A small speaker driven hard: mild cubic compression.
                let x = f32::from(sample) / 32_768.0;
                let driven = (x - 0.15 * x * x * x) * 32_768.0;
                self.history.pop_front();
                self.history.push_back(driven);
                let newest = self.history.len() - 1;
                self.taps
                    .iter()
                    .map(|&(at, gain)| self.history.get(newest - at).map_or(0.0, |s| s * gain))
                    .sum()
            })
            .collect()
    }
}

/// Echo samples not yet read by the microphone; a second of them at most.
const ROOM_BUFFER: usize = SAMPLE_RATE as usize;

struct RoomAir {
    room: Room,
    at_mic: VecDeque<f32>,
}

/// The speaker of the simulated housing.
pub struct EchoRoomSpeaker(Arc<Mutex<RoomAir>>);

/// The microphone of the simulated housing: hears the speaker's echo and a faint noise floor.
pub struct EchoRoomMic {
    air: Arc<Mutex<RoomAir>>,
    noise: Noise,
}

/// A speaker and a microphone in one simulated housing (echo delay 40 ms, gain 0.5).
pub fn echo_room_devices() -> (EchoRoomSpeaker, EchoRoomMic) {
    let air = Arc::new(Mutex::new(RoomAir {
        room: Room::new(Duration::from_millis(40), 0.5, 7),
        at_mic: VecDeque::with_capacity(ROOM_BUFFER),
    }));
    (
        EchoRoomSpeaker(Arc::clone(&air)),
        EchoRoomMic {
            air,
            noise: Noise::new(11),
        },
    )
}

impl AudioSink for EchoRoomSpeaker {
    fn write(&mut self, pcm: &[i16]) -> Result<(), MediaError> {
        let mut air = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let echo = air.room.echo(pcm);
        air.at_mic.extend(echo);
        // A microphone that stopped reading: like a device buffer, the oldest is lost.
        let excess = air.at_mic.len().saturating_sub(ROOM_BUFFER);
        air.at_mic.drain(..excess);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        Ok(())
    }
}

impl AudioSource for EchoRoomMic {
    fn is_live(&self) -> bool {
        false
    }

    fn read(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        let mut air = self.air.lock().unwrap_or_else(PoisonError::into_inner);
        for sample in out.iter_mut() {
            let echo = air.at_mic.pop_front().unwrap_or(0.0);
            // About -66 dBFS of noise: a quiet street.
            let noise = self.noise.next_f32() * 30.0;
            *sample = (echo + noise).round().clamp(-32_768.0, 32_767.0) as i16;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_echo_arrives_after_the_direct_path_delay() {
        let mut room = Room::new(Duration::from_millis(20), 0.5, 3);
        let mut impulse = vec![0_i16; 4800];
        impulse[0] = 16_384;
        let echo = room.echo(&impulse);
        let first = echo.iter().position(|s| s.abs() > 1.0);
        assert_eq!(first, Some(960), "20 ms at 48 kHz");
    }

    #[test]
    fn the_speaker_is_heard_by_the_microphone_of_the_same_room() {
        let (mut speaker, mut mic) = echo_room_devices();
        speaker.write(&[10_000; FRAME_SAMPLES * 4]).unwrap();
        let mut heard = [0_i16; FRAME_SAMPLES];
        let mut loudest = 0_i16;
        for _ in 0..4 {
            mic.read(&mut heard).unwrap();
            loudest = loudest.max(heard.iter().map(|s| s.saturating_abs()).max().unwrap_or(0));
        }
        assert!(
            loudest > 3_000,
            "the echo reached the microphone: {loudest}"
        );
    }
}
