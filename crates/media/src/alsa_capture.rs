//! The microphone (`--audio-in alsa:NAME`): any ALSA capture PCM, e.g. `default` or `plughw:1,0`
//! for a USB webcam's microphone.
//!
//! The device's own rate and channel count are taken as they come; [`CaptureChain`] mixes to
//! mono, resamples to 48 kHz, cuts 20 ms blocks and recovers from overruns (the agent was too
//! slow to read: a short gap, not the end of the call). The chain runs over a [`PcmInput`], so
//! everything but the device itself is tested with a scripted one; the real device
//! ([`AlsaCapture`]) needs the `alsa` feature.

use crate::pcm_io::PcmIoError;
use crate::resample::Resampler;
use crate::{AudioSource, FRAME_SAMPLES, MediaError, SAMPLE_RATE};
use std::collections::VecDeque;
use std::time::Duration;

/// A capture device delivering interleaved i16 frames.
pub trait PcmInput: Send + 'static {
    fn rate(&self) -> u32;
    fn channels(&self) -> u32;
    /// Blocks until some frames arrive; fills `buf` (interleaved) and returns the frame count.
    fn read(&mut self, buf: &mut [i16]) -> Result<usize, PcmIoError>;
    /// Brings the device back after [`PcmIoError::Xrun`].
    fn recover(&mut self) -> Result<(), PcmIoError>;
    /// Frames captured by the device but not yet read, if it can tell.
    fn delay_frames(&self) -> Option<u64> {
        None
    }
}

/// Xruns in a row (without a good read in between) before the device counts as broken.
const MAX_XRUNS_IN_A_ROW: u32 = 10;

/// Device frames → 48 kHz mono 20 ms blocks.
pub struct CaptureChain<P: PcmInput> {
    device: String,
    pcm: P,
    resampler: Resampler,
    /// Interleaved frames from the device.
    raw: Vec<i16>,
    mono: Vec<i16>,
    resampled: Vec<i16>,
    ready: VecDeque<i16>,
    xruns: u64,
}

impl<P: PcmInput> CaptureChain<P> {
    pub fn new(device: impl Into<String>, pcm: P) -> Self {
        let rate = pcm.rate();
        let channels = pcm.channels().max(1) as usize;
        // Read about 10 ms at a time.
        let frames = (rate as usize / 100).max(16);
        Self {
            device: device.into(),
            resampler: Resampler::new(rate, SAMPLE_RATE),
            raw: vec![0; frames * channels],
            mono: Vec::with_capacity(frames),
            resampled: Vec::with_capacity(frames * 4),
            ready: VecDeque::with_capacity(FRAME_SAMPLES * 2),
            pcm,
            xruns: 0,
        }
    }

    /// Overruns recovered from so far.
    pub fn xruns(&self) -> u64 {
        self.xruns
    }

    fn fatal(&self, why: String) -> MediaError {
        MediaError::AudioDevice {
            device: self.device.clone(),
            problem: format!(
                "{why}; is the microphone still plugged in? `doorbell devices` lists them"
            ),
        }
    }

    fn fill(&mut self) -> Result<(), MediaError> {
        let channels = self.pcm.channels().max(1) as usize;
        let mut xruns_in_a_row = 0;
        let frames = loop {
            match self.pcm.read(&mut self.raw) {
                Ok(frames) => break frames.min(self.raw.len() / channels),
                Err(PcmIoError::Xrun) => {
                    self.xruns += 1;
                    xruns_in_a_row += 1;
                    if xruns_in_a_row == 1 {
                        tracing::debug!(device = %self.device, "microphone overrun, recovering");
                    }
                    if xruns_in_a_row > MAX_XRUNS_IN_A_ROW {
                        return Err(self.fatal("keeps overrunning".into()));
                    }
                    self.pcm.recover().map_err(|e| match e {
                        PcmIoError::Fatal(why) => self.fatal(why),
                        PcmIoError::Xrun => self.fatal("cannot recover from an overrun".into()),
                    })?;
                }
                Err(PcmIoError::Fatal(why)) => return Err(self.fatal(why)),
            }
        };
        self.mono.clear();
        for frame in self.raw[..frames * channels].chunks_exact(channels) {
            let sum: i32 = frame.iter().map(|&s| i32::from(s)).sum();
            self.mono.push((sum / channels as i32) as i16);
        }
        self.resampled.clear();
        self.resampler.process(&self.mono, &mut self.resampled);
        self.ready.extend(self.resampled.iter().copied());
        Ok(())
    }
}

impl<P: PcmInput> AudioSource for CaptureChain<P> {
    fn is_live(&self) -> bool {
        true
    }

    fn latency(&self) -> Option<Duration> {
        let device = self.pcm.delay_frames()? as f64 / f64::from(self.pcm.rate().max(1));
        let ready = self.ready.len() as f64 / f64::from(SAMPLE_RATE);
        Some(Duration::from_secs_f64(device + ready))
    }

    fn read(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        while self.ready.len() < FRAME_SAMPLES {
            self.fill()?;
        }
        for (slot, sample) in out.iter_mut().zip(self.ready.drain(..FRAME_SAMPLES)) {
            *slot = sample;
        }
        Ok(())
    }
}

#[cfg(feature = "alsa")]
pub use hardware::{AlsaCapture, open_alsa_capture};

#[cfg(feature = "alsa")]
mod hardware {
    use super::{CaptureChain, PcmInput, PcmIoError};
    use crate::alsa_pcm::{alsa_problem, classify, configure};
    use crate::{MediaError, SAMPLE_RATE};
    use alsa::Direction;
    use alsa::pcm::PCM;

    /// An ALSA capture PCM.
    pub struct AlsaCapture {
        pcm: PCM,
        rate: u32,
        channels: u32,
    }

    impl PcmInput for AlsaCapture {
        fn rate(&self) -> u32 {
            self.rate
        }
        fn channels(&self) -> u32 {
            self.channels
        }
        fn read(&mut self, buf: &mut [i16]) -> Result<usize, PcmIoError> {
            let io = self
                .pcm
                .io_i16()
                .map_err(|e| PcmIoError::Fatal(e.to_string()))?;
            io.readi(buf).map_err(|e| classify(&e))
        }
        fn recover(&mut self) -> Result<(), PcmIoError> {
            self.pcm
                .prepare()
                .and_then(|()| self.pcm.start())
                .map_err(|e| PcmIoError::Fatal(e.to_string()))
        }
        fn delay_frames(&self) -> Option<u64> {
            self.pcm
                .delay()
                .ok()
                .and_then(|frames| u64::try_from(frames).ok())
        }
    }

    /// Opens the microphone `device` (an ALSA PCM name) as a 48 kHz mono source.
    pub fn open_alsa_capture(device: &str) -> Result<CaptureChain<AlsaCapture>, MediaError> {
        let pcm = PCM::new(device, Direction::Capture, false)
            .map_err(|e| alsa_problem(device, "microphone", &e))?;
        let (rate, channels) =
            configure(&pcm, 1).map_err(|e| alsa_problem(device, "microphone", &e))?;
        pcm.start()
            .map_err(|e| alsa_problem(device, "microphone", &e))?;
        tracing::info!(
            device,
            rate,
            channels,
            resampled = rate != SAMPLE_RATE,
            "microphone opened"
        );
        Ok(CaptureChain::new(
            device,
            AlsaCapture {
                pcm,
                rate,
                channels,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stereo 16 kHz microphone playing a 1 kHz tone (left) and silence (right), with
    /// scripted overruns.
    struct ScriptedMic {
        t: u64,
        reads: u32,
        xrun_on_reads: Vec<u32>,
        recoveries: u32,
        fail_after: Option<u32>,
    }

    impl PcmInput for ScriptedMic {
        fn rate(&self) -> u32 {
            16_000
        }
        fn channels(&self) -> u32 {
            2
        }
        fn read(&mut self, buf: &mut [i16]) -> Result<usize, PcmIoError> {
            self.reads += 1;
            if self.fail_after.is_some_and(|n| self.reads > n) {
                return Err(PcmIoError::Fatal("No such device".into()));
            }
            if self.xrun_on_reads.contains(&self.reads) {
                return Err(PcmIoError::Xrun);
            }
            // Short reads happen: deliver 100 frames at most.
            let frames = (buf.len() / 2).min(100);
            for frame in buf[..frames * 2].chunks_exact_mut(2) {
                let phase = 2.0 * std::f64::consts::PI * 1000.0 * self.t as f64 / 16_000.0;
                frame[0] = (20_000.0 * phase.sin()) as i16;
                frame[1] = 0;
                self.t += 1;
            }
            Ok(frames)
        }
        fn recover(&mut self) -> Result<(), PcmIoError> {
            self.recoveries += 1;
            Ok(())
        }
        fn delay_frames(&self) -> Option<u64> {
            // 10 ms waiting at 16 kHz.
            Some(160)
        }
    }

    fn mic(xrun_on_reads: Vec<u32>, fail_after: Option<u32>) -> ScriptedMic {
        ScriptedMic {
            t: 0,
            reads: 0,
            xrun_on_reads,
            recoveries: 0,
            fail_after,
        }
    }

    #[test]
    fn stereo_16k_becomes_mono_48k_blocks_through_overruns() {
        let mut chain = CaptureChain::new("hw:1,0", mic(vec![3, 7, 8], None));
        let mut block = [0i16; FRAME_SAMPLES];
        let mut all = Vec::new();
        for _ in 0..50 {
            chain.read(&mut block).unwrap();
            all.extend_from_slice(&block);
        }
        assert_eq!(chain.xruns(), 3);
        assert_eq!(chain.pcm.recoveries, 3);
        // One second at 48 kHz of a 1 kHz tone: ~2000 zero crossings; mono = half the left.
        let crossings = all.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        assert!(crossings.abs_diff(2000) <= 4, "{crossings}");
        let peak = all.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!((9_000..=10_001).contains(&peak), "{peak}");
    }

    #[test]
    fn the_latency_is_the_device_buffer_plus_what_waits_to_be_read() {
        let mut chain = CaptureChain::new("hw:1,0", mic(vec![], None));
        let mut block = [0i16; FRAME_SAMPLES];
        chain.read(&mut block).unwrap();
        let waiting = chain.ready.len() as f64 / 48_000.0;
        let latency = chain.latency().unwrap().as_secs_f64();
        assert!((latency - (0.010 + waiting)).abs() < 1e-6, "{latency}");
    }

    #[test]
    fn an_unplugged_mic_is_an_error_naming_the_device() {
        let mut chain = CaptureChain::new("hw:1,0", mic(vec![], Some(20)));
        let mut block = [0i16; FRAME_SAMPLES];
        let error = loop {
            if let Err(e) = chain.read(&mut block) {
                break e.to_string();
            }
        };
        assert!(error.contains("hw:1,0"), "{error}");
        assert!(error.contains("plugged in"), "{error}");
    }

    #[test]
    fn endless_overruns_give_up() {
        let mut chain = CaptureChain::new("default", mic((1..100).collect(), None));
        let mut block = [0i16; FRAME_SAMPLES];
        let error = chain.read(&mut block).unwrap_err().to_string();
        assert!(error.contains("overrunning"), "{error}");
    }
}
