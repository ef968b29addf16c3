//! The speaker (`--audio-out alsa:NAME[:volume=PERCENT]`): any ALSA playback PCM.
//!
//! [`PlaybackChain`] applies the volume (a software gain, clipped; the card's own mixer stays
//! the user's, via `alsamixer`), resamples 48 kHz to the device's rate, copies mono to every
//! channel and recovers from underruns (the owner's audio arrived late: a click, not the end of
//! the call). It runs over a [`PcmOutput`], so it is tested with a recording one; the real
//! device ([`AlsaPlayback`]) needs the `alsa` feature.

use crate::pcm_io::PcmIoError;
use crate::resample::Resampler;
use crate::{AudioSink, MediaError, SAMPLE_RATE};
use std::time::Duration;

/// The loudest volume: twice the decoded level (clipped).
pub const MAX_VOLUME_PERCENT: u32 = 200;

/// A playback device taking interleaved i16 frames.
pub trait PcmOutput: Send + 'static {
    fn rate(&self) -> u32;
    fn channels(&self) -> u32;
    /// Queues frames (interleaved); returns how many frames were taken (may be fewer).
    fn write(&mut self, frames: &[i16]) -> Result<usize, PcmIoError>;
    /// Brings the device back after [`PcmIoError::Xrun`].
    fn recover(&mut self) -> Result<(), PcmIoError>;
    /// Plays what is queued, then stops.
    fn drain(&mut self) -> Result<(), PcmIoError>;
    /// Frames queued in the device and not yet played, if it can tell.
    fn delay_frames(&self) -> Option<u64> {
        None
    }
}

/// Writes in a row that take nothing (or underrun) before the device counts as stuck.
const MAX_FUTILE_WRITES: u32 = 20;

/// 48 kHz mono → the device's rate and channels, at a volume.
pub struct PlaybackChain<P: PcmOutput> {
    device: String,
    pcm: P,
    /// Gain in 1/100.
    volume_percent: u32,
    resampler: Resampler,
    scaled: Vec<i16>,
    resampled: Vec<i16>,
    interleaved: Vec<i16>,
    underruns: u64,
    finished: bool,
}

impl<P: PcmOutput> PlaybackChain<P> {
    /// `volume_percent`: 100 plays the owner's voice as decoded; clamped to
    /// 0..=[`MAX_VOLUME_PERCENT`].
    pub fn new(device: impl Into<String>, pcm: P, volume_percent: u32) -> Self {
        Self {
            device: device.into(),
            resampler: Resampler::new(SAMPLE_RATE, pcm.rate()),
            pcm,
            volume_percent: volume_percent.min(MAX_VOLUME_PERCENT),
            scaled: Vec::new(),
            resampled: Vec::new(),
            interleaved: Vec::new(),
            underruns: 0,
            finished: false,
        }
    }

    /// Underruns recovered from so far.
    pub fn underruns(&self) -> u64 {
        self.underruns
    }

    fn fatal(&self, why: String) -> MediaError {
        MediaError::AudioDevice {
            device: self.device.clone(),
            problem: format!(
                "{why}; is the speaker still connected? `doorbell devices` lists them"
            ),
        }
    }
}

impl<P: PcmOutput> AudioSink for PlaybackChain<P> {
    fn write(&mut self, pcm: &[i16]) -> Result<(), MediaError> {
        if self.finished {
            return Err(MediaError::SinkFinished);
        }
        let gain = i32::try_from(self.volume_percent).unwrap_or(100);
        self.scaled.clear();
        self.scaled.extend(pcm.iter().map(|&s| {
            (i32::from(s) * gain / 100).clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
        }));
        self.resampled.clear();
        self.resampler.process(&self.scaled, &mut self.resampled);
        let channels = self.pcm.channels().max(1) as usize;
        self.interleaved.clear();
        for &sample in &self.resampled {
            self.interleaved
                .extend(std::iter::repeat_n(sample, channels));
        }
        let mut offset = 0;
        let mut futile = 0;
        while offset < self.interleaved.len() {
            match self.pcm.write(&self.interleaved[offset..]) {
                Ok(0) => futile += 1,
                Ok(frames) => {
                    offset += frames * channels;
                    futile = 0;
                }
                Err(PcmIoError::Xrun) => {
                    self.underruns += 1;
                    futile += 1;
                    tracing::debug!(device = %self.device, "speaker underrun, recovering");
                    self.pcm.recover().map_err(|e| match e {
                        PcmIoError::Fatal(why) => self.fatal(why),
                        PcmIoError::Xrun => self.fatal("cannot recover from an underrun".into()),
                    })?;
                }
                Err(PcmIoError::Fatal(why)) => return Err(self.fatal(why)),
            }
            if futile > MAX_FUTILE_WRITES {
                return Err(self.fatal("takes no more audio".into()));
            }
        }
        Ok(())
    }

    fn latency(&self) -> Option<Duration> {
        let frames = self.pcm.delay_frames()?;
        Some(Duration::from_secs_f64(
            frames as f64 / f64::from(self.pcm.rate().max(1)),
        ))
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        if self.finished {
            return Ok(());
        }
        self.finished = true;
        self.pcm.drain().map_err(|e| match e {
            PcmIoError::Fatal(why) => self.fatal(why),
            PcmIoError::Xrun => self.fatal("underrun while draining".into()),
        })
    }
}

#[cfg(feature = "alsa")]
pub use hardware::{AlsaDevice, AlsaPlayback, list_alsa_devices, open_alsa_playback};

#[cfg(feature = "alsa")]
mod hardware {
    use super::{PcmIoError, PcmOutput, PlaybackChain};
    use crate::alsa_pcm::{alsa_problem, classify, configure};
    use crate::{MediaError, SAMPLE_RATE};
    use alsa::Direction;
    use alsa::pcm::PCM;

    /// An ALSA playback PCM.
    pub struct AlsaPlayback {
        pcm: PCM,
        rate: u32,
        channels: u32,
    }

    impl PcmOutput for AlsaPlayback {
        fn rate(&self) -> u32 {
            self.rate
        }
        fn channels(&self) -> u32 {
            self.channels
        }
        fn write(&mut self, frames: &[i16]) -> Result<usize, PcmIoError> {
            let io = self
                .pcm
                .io_i16()
                .map_err(|e| PcmIoError::Fatal(e.to_string()))?;
            io.writei(frames).map_err(|e| classify(&e))
        }
        fn recover(&mut self) -> Result<(), PcmIoError> {
            self.pcm
                .prepare()
                .map_err(|e| PcmIoError::Fatal(e.to_string()))
        }
        fn drain(&mut self) -> Result<(), PcmIoError> {
            self.pcm.drain().map_err(|e| classify(&e))
        }
        fn delay_frames(&self) -> Option<u64> {
            self.pcm
                .delay()
                .ok()
                .and_then(|frames| u64::try_from(frames).ok())
        }
    }

    /// Opens the speaker `device` (an ALSA PCM name) for 48 kHz mono at `volume_percent`.
    pub fn open_alsa_playback(
        device: &str,
        volume_percent: u32,
    ) -> Result<PlaybackChain<AlsaPlayback>, MediaError> {
        let pcm = PCM::new(device, Direction::Playback, false)
            .map_err(|e| alsa_problem(device, "speaker", &e))?;
        let (rate, channels) =
            configure(&pcm, 1).map_err(|e| alsa_problem(device, "speaker", &e))?;
        tracing::info!(
            device,
            rate,
            channels,
            volume_percent,
            resampled = rate != SAMPLE_RATE,
            "speaker opened"
        );
        Ok(PlaybackChain::new(
            device,
            AlsaPlayback {
                pcm,
                rate,
                channels,
            },
            volume_percent,
        ))
    }

    /// One ALSA PCM as `doorbell devices` shows it.
    #[derive(Debug, Clone)]
    pub struct AlsaDevice {
        /// The name to put in the config, e.g. `plughw:CARD=U0x46d0x825,DEV=0`.
        pub name: String,
        pub description: String,
        pub capture: bool,
        pub playback: bool,
    }

    /// The PCMs ALSA knows (the same list as `arecord -L` / `aplay -L`).
    pub fn list_alsa_devices() -> Result<Vec<AlsaDevice>, String> {
        let hints = alsa::device_name::HintIter::new_str(None, "pcm")
            .map_err(|e| format!("cannot list ALSA devices: {e}"))?;
        Ok(hints
            .filter_map(|hint| {
                let name = hint.name?;
                if name == "null" {
                    return None;
                }
                let (capture, playback) = match hint.direction {
                    Some(Direction::Capture) => (true, false),
                    Some(Direction::Playback) => (false, true),
                    None => (true, true),
                };
                Some(AlsaDevice {
                    name,
                    description: hint.desc.unwrap_or_default().replace('\n', " — "),
                    capture,
                    playback,
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stereo 44.1 kHz speaker that records what it gets, takes at most 300 frames per write
    /// and underruns on scripted writes.
    #[derive(Default)]
    struct RecordingSpeaker {
        played: Vec<i16>,
        writes: u32,
        underrun_on_writes: Vec<u32>,
        recoveries: u32,
        drained: bool,
        dead: bool,
    }

    impl PcmOutput for RecordingSpeaker {
        fn rate(&self) -> u32 {
            44_100
        }
        fn channels(&self) -> u32 {
            2
        }
        fn write(&mut self, frames: &[i16]) -> Result<usize, PcmIoError> {
            self.writes += 1;
            if self.dead {
                return Err(PcmIoError::Fatal("No such device".into()));
            }
            if self.underrun_on_writes.contains(&self.writes) {
                return Err(PcmIoError::Xrun);
            }
            let n = (frames.len() / 2).min(300);
            self.played.extend_from_slice(&frames[..n * 2]);
            Ok(n)
        }
        fn recover(&mut self) -> Result<(), PcmIoError> {
            self.recoveries += 1;
            Ok(())
        }
        fn drain(&mut self) -> Result<(), PcmIoError> {
            self.drained = true;
            Ok(())
        }
        fn delay_frames(&self) -> Option<u64> {
            // What it holds, as if nothing had been played yet.
            Some(self.played.len() as u64 / 2)
        }
    }

    fn tone(len: usize) -> Vec<i16> {
        (0..len)
            .map(|i| {
                (8_000.0 * (2.0 * std::f64::consts::PI * 440.0 * i as f64 / 48_000.0).sin()) as i16
            })
            .collect()
    }

    #[test]
    fn mono_48k_plays_on_both_channels_at_the_device_rate_through_underruns() {
        let speaker = RecordingSpeaker {
            underrun_on_writes: vec![2, 9],
            ..RecordingSpeaker::default()
        };
        let mut chain = PlaybackChain::new("default", speaker, 100);
        let input = tone(48_000);
        for block in input.chunks(960) {
            chain.write(block).unwrap();
        }
        chain.finish().unwrap();
        assert_eq!(chain.underruns(), 2);
        assert_eq!(chain.pcm.recoveries, 2);
        assert!(chain.pcm.drained);
        let played = &chain.pcm.played;
        // Nothing lost to the underruns: one second at 44.1 kHz, two channels.
        assert!((played.len() / 2).abs_diff(44_100) <= 1, "{}", played.len());
        assert!(played.chunks_exact(2).all(|f| f[0] == f[1]));
        let left: Vec<i16> = played.iter().step_by(2).copied().collect();
        let crossings = left.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!(crossings.abs_diff(880) <= 2, "{crossings}");
        assert!(chain.write(&[0; 10]).is_err(), "write after finish");
    }

    #[test]
    fn the_latency_is_what_the_device_holds_at_its_rate() {
        let mut chain = PlaybackChain::new("default", RecordingSpeaker::default(), 100);
        chain.write(&tone(4_800)).unwrap();
        let latency = chain.latency().unwrap().as_secs_f64();
        assert!(
            (latency - 0.1).abs() < 0.001,
            "100 ms queued, got {latency}"
        );
    }

    #[test]
    fn volume_scales_and_clips() {
        let mut half = PlaybackChain::new("default", RecordingSpeaker::default(), 50);
        half.resampler = Resampler::new(48_000, 48_000); // compare samples one to one
        half.write(&[1000, -1000, 30_000]).unwrap();
        assert_eq!(half.pcm.played, [500, 500, -500, -500, 15_000, 15_000]);

        let mut loud = PlaybackChain::new("default", RecordingSpeaker::default(), 500);
        loud.resampler = Resampler::new(48_000, 48_000);
        loud.write(&[1000, 30_000, -30_000]).unwrap();
        // Clamped to 200 %, then clipped to the i16 range.
        assert_eq!(
            loud.pcm.played,
            [2000, 2000, 32_767, 32_767, -32_768, -32_768]
        );
    }

    #[test]
    fn a_vanished_speaker_is_an_error_naming_it() {
        let speaker = RecordingSpeaker {
            dead: true,
            ..RecordingSpeaker::default()
        };
        let mut chain = PlaybackChain::new("plughw:2,0", speaker, 100);
        let error = chain.write(&tone(960)).unwrap_err().to_string();
        assert!(error.contains("plughw:2,0"), "{error}");
    }
}
