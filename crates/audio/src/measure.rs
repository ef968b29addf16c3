//! Levels and echo return loss enhancement (ERLE), measured the way the tests and
//! `doorbell audio-check` report them.

use crate::FRAME_10MS;

/// Mean square of the samples (0 for none).
pub fn power(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64
}

/// RMS level in dBFS (-inf for silence).
pub fn level_dbfs(samples: &[i16]) -> f64 {
    10.0 * (power(samples) / 32_768_f64.powi(2)).log10()
}

/// A far-end frame quieter than this is a pause: no echo to measure.
pub const FAR_ACTIVE_DBFS: f64 = -50.0;

/// ERLE in dB: the microphone's power over the processed output's, summed over the 10 ms
/// frames from `from_frame` on in which the far end talks. With the near end silent in those
/// frames this is exactly how much echo was removed; near-end speech in them lowers it.
/// `None` when the far end never talks there.
pub fn erle_db(far: &[i16], mic: &[i16], out: &[i16], from_frame: usize) -> Option<f64> {
    let (mut mic_power, mut out_power) = (0.0, 0.0);
    let frames = far
        .chunks_exact(FRAME_10MS)
        .zip(mic.chunks_exact(FRAME_10MS))
        .zip(out.chunks_exact(FRAME_10MS))
        .skip(from_frame);
    let mut any = false;
    for ((far, mic), out) in frames {
        if level_dbfs(far) > FAR_ACTIVE_DBFS {
            any = true;
            mic_power += power(mic);
            out_power += power(out);
        }
    }
    // A perfectly silent output: report the measurement floor of 16-bit audio, not infinity.
    any.then(|| 10.0 * (mic_power / out_power.max(1e-3)).log10())
}
