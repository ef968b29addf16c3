//! Sample-rate conversion between a sound card's rate and the 48 kHz of Opus.
//!
//! Linear interpolation, streaming (blocks of any length join seamlessly), in exact integer
//! positions so no drift builds up over a long call. Good enough for a doorbell's speech; when
//! going down in rate (48 kHz → 16 kHz speaker) it first averages the input over one output
//! period, a crude low-pass that keeps most of the aliasing out.

/// Converts mono i16 PCM from one rate to another.
#[derive(Debug, Clone)]
pub struct Resampler {
    from: u32,
    to: u32,
    /// Position of the next output sample, in 1/`to` input samples, counted from `previous`.
    position: u64,
    /// The last input sample of the previous block (index 0 of the next block's window).
    previous: i16,
    /// Box filter length when going down in rate (1 = no filtering).
    taps: usize,
    /// The last `taps - 1` inputs, for the box filter across block edges.
    history: Vec<i16>,
}

impl Resampler {
    /// From `from` Hz to `to` Hz (both non-zero; zero is treated as 1).
    pub fn new(from: u32, to: u32) -> Self {
        let (from, to) = (from.max(1), to.max(1));
        let taps = if from > to {
            (from as usize).div_ceil(to as usize)
        } else {
            1
        };
        Self {
            from,
            to,
            position: u64::from(to),
            previous: 0,
            taps,
            history: vec![0; taps - 1],
        }
    }

    /// Whether this converts anything (equal rates pass samples through).
    pub fn is_identity(&self) -> bool {
        self.from == self.to
    }

    /// Appends the converted `input` to `out`.
    pub fn process(&mut self, input: &[i16], out: &mut Vec<i16>) {
        if self.is_identity() {
            out.extend_from_slice(input);
            return;
        }
        if input.is_empty() {
            return;
        }
        let filtered;
        let input = if self.taps > 1 {
            filtered = self.box_filter(input);
            &filtered[..]
        } else {
            input
        };
        let to = u64::from(self.to);
        let from = u64::from(self.from);
        let n = input.len() as u64;
        // Window x[0] = previous, x[1..=n] = input.
        let at = |i: u64| -> i64 {
            if i == 0 {
                i64::from(self.previous)
            } else {
                i64::from(input[(i - 1) as usize])
            }
        };
        out.reserve((n * to / from + 1) as usize);
        while self.position / to < n {
            let i = self.position / to;
            let frac = (self.position % to) as i64;
            let to_i = to as i64;
            let value = (at(i) * (to_i - frac) + at(i + 1) * frac + to_i / 2).div_euclid(to_i);
            out.push(value.clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i16);
            self.position += from;
        }
        self.position -= n * to;
        self.previous = input[input.len() - 1];
    }

    /// Moving average over `taps` inputs (including the previous block's tail).
    fn box_filter(&mut self, input: &[i16]) -> Vec<i16> {
        let taps = self.taps;
        let mut window: Vec<i16> = Vec::with_capacity(self.history.len() + input.len());
        window.extend_from_slice(&self.history);
        window.extend_from_slice(input);
        let mut sum: i64 = window[..taps - 1].iter().map(|&s| i64::from(s)).sum();
        let mut out = Vec::with_capacity(input.len());
        for i in 0..input.len() {
            sum += i64::from(window[i + taps - 1]);
            out.push((sum / taps as i64) as i16);
            sum -= i64::from(window[i]);
        }
        self.history.clear();
        self.history
            .extend_from_slice(&window[window.len() - (taps - 1)..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f64, len: usize) -> Vec<i16> {
        (0..len)
            .map(|i| {
                (10_000.0 * (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin())
                    as i16
            })
            .collect()
    }

    fn zero_crossings(samples: &[i16]) -> usize {
        samples
            .windows(2)
            .filter(|w| (w[0] < 0) != (w[1] < 0))
            .count()
    }

    fn run_in_blocks(r: &mut Resampler, input: &[i16], block: usize) -> Vec<i16> {
        let mut out = Vec::new();
        for chunk in input.chunks(block) {
            r.process(chunk, &mut out);
        }
        out
    }

    #[test]
    fn equal_rates_pass_through() {
        let mut r = Resampler::new(48_000, 48_000);
        let input = sine(48_000, 440.0, 1000);
        assert_eq!(run_in_blocks(&mut r, &input, 77), input);
    }

    #[test]
    fn lengths_follow_the_ratio_without_drift() {
        for (from, to) in [
            (16_000, 48_000),
            (44_100, 48_000),
            (48_000, 44_100),
            (48_000, 16_000),
        ] {
            let mut r = Resampler::new(from, to);
            // A minute in odd-sized blocks (positions are exact integers: no drift to build up).
            let seconds = 60;
            let input = vec![0i16; from as usize * seconds];
            let out = run_in_blocks(&mut r, &input, 317);
            let expected = to as usize * seconds;
            // Only the outputs between the last input and the next one are still pending.
            let pending = (to as usize).div_ceil(from as usize);
            assert!(out.len() <= expected, "{from}->{to}: {}", out.len());
            assert!(
                out.len() + pending >= expected,
                "{from}->{to}: {}",
                out.len()
            );
        }
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_level() {
        for (from, to) in [
            (16_000, 48_000),
            (44_100, 48_000),
            (48_000, 44_100),
            (48_000, 16_000),
        ] {
            let input = sine(from, 440.0, from as usize); // one second
            let mut r = Resampler::new(from, to);
            let out = run_in_blocks(&mut r, &input, 480);
            // 440 Hz: 880 zero crossings a second, whatever the rate.
            let crossings = zero_crossings(&out);
            assert!(crossings.abs_diff(880) <= 2, "{from}->{to}: {crossings}");
            let peak = out.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
            assert!(
                (9_000..=10_001).contains(&peak),
                "{from}->{to}: peak {peak}"
            );
        }
    }

    #[test]
    fn upsampling_interpolates_between_samples() {
        let mut r = Resampler::new(16_000, 48_000);
        let mut out = Vec::new();
        r.process(&[0, 300, 600], &mut out);
        // Starts at the first input (the stream's first sample), then thirds in between.
        assert_eq!(out, [0, 100, 200, 300, 400, 500]);
        r.process(&[900], &mut out);
        assert_eq!(&out[6..], [600, 700, 800]);
    }
}
