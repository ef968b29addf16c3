//! The synthetic microphone: a steady sine tone.

use crate::{AudioSource, FRAME_SAMPLES, MediaError, SAMPLE_RATE};

/// Peak level of [`Tone::new`]: loud enough to hear and to measure, far from clipping.
pub const TONE_PEAK_DBFS: f32 = -12.0;

/// A sine tone at 48 kHz. Not live: the caller paces `read()` every 20 ms.
#[derive(Debug, Clone)]
pub struct Tone {
    /// Phase advance per sample, in cycles.
    cycles_per_sample: f64,
    /// Current phase in cycles, kept in 0..1 so precision never degrades.
    phase: f64,
    amplitude: f64,
}

impl Tone {
    /// A tone of `frequency_hz` (e.g. 440.0) with a peak of -12 dBFS (RMS about -15 dBFS).
    /// Frequencies that are not finite or not below 24 kHz (Nyquist) give silence.
    pub fn new(frequency_hz: f32) -> Self {
        Self::with_level(frequency_hz, TONE_PEAK_DBFS)
    }

    /// A tone with the given peak level in dBFS (0 = full scale; values above 0 are capped).
    pub fn with_level(frequency_hz: f32, peak_dbfs: f32) -> Self {
        let nyquist = f64::from(SAMPLE_RATE) / 2.0;
        let frequency = f64::from(frequency_hz);
        let cycles_per_sample = if frequency.is_finite() && frequency > 0.0 && frequency < nyquist {
            frequency / f64::from(SAMPLE_RATE)
        } else {
            0.0
        };
        let peak = f64::from(peak_dbfs.min(0.0));
        let amplitude = if peak.is_finite() {
            10_f64.powf(peak / 20.0) * f64::from(i16::MAX)
        } else {
            0.0
        };
        Self {
            cycles_per_sample,
            phase: 0.0,
            amplitude,
        }
    }
}

impl AudioSource for Tone {
    fn is_live(&self) -> bool {
        false
    }

    /// A test signal: tests measure it as generated.
    fn is_acoustic(&self) -> bool {
        false
    }

    fn read(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        for sample in out.iter_mut() {
            let value = (self.phase * std::f64::consts::TAU).sin() * self.amplitude;
            *sample = value.round() as i16;
            self.phase = (self.phase + self.cycles_per_sample).fract();
        }
        Ok(())
    }
}

/// A silent microphone (for a listen-only doorbell and for tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct Silence;

impl AudioSource for Silence {
    fn is_live(&self) -> bool {
        false
    }

    fn is_acoustic(&self) -> bool {
        false
    }

    fn read(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        out.fill(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rms_dbfs;

    /// Upward zero crossings per second of `pcm` at 48 kHz: the dominant frequency of a tone.
    fn frequency_by_zero_crossings(pcm: &[i16]) -> f32 {
        let crossings = pcm.windows(2).filter(|w| w[0] < 0 && w[1] >= 0).count();
        crossings as f32 * SAMPLE_RATE as f32 / pcm.len() as f32
    }

    fn read_seconds(source: &mut impl AudioSource, blocks: usize) -> Vec<i16> {
        let mut pcm = Vec::new();
        let mut block = [0_i16; FRAME_SAMPLES];
        for _ in 0..blocks {
            source.read(&mut block).unwrap();
            pcm.extend_from_slice(&block);
        }
        pcm
    }

    #[test]
    fn tone_has_its_frequency_and_level() {
        let mut tone = Tone::new(440.0);
        assert!(!tone.is_live());
        let pcm = read_seconds(&mut tone, 50);
        let frequency = frequency_by_zero_crossings(&pcm);
        assert!((frequency - 440.0).abs() <= 2.0, "{frequency} Hz");
        let peak = pcm.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((8_100..=8_300).contains(&peak), "peak {peak}");
        let rms = rms_dbfs(&pcm);
        assert!((rms - (-15.05)).abs() < 0.2, "rms {rms} dBFS");
    }

    #[test]
    fn tone_is_continuous_across_blocks() {
        let mut tone = Tone::new(1000.0);
        let pcm = read_seconds(&mut tone, 3);
        // A 1 kHz sine at 8230 peak changes by at most 2*pi*1000/48000*8230 = 1078 per sample.
        let max_step = pcm
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap();
        assert!(max_step <= 1100, "discontinuity of {max_step}");
    }

    #[test]
    fn out_of_range_frequencies_and_silence_are_silent() {
        for frequency in [f32::NAN, f32::INFINITY, -5.0, 0.0, 24_000.0, 1e9] {
            let pcm = read_seconds(&mut Tone::new(frequency), 2);
            assert!(pcm.iter().all(|&s| s == 0), "{frequency} Hz not silent");
        }
        let pcm = read_seconds(&mut Silence, 2);
        assert_eq!(rms_dbfs(&pcm), f32::NEG_INFINITY);
    }
}
