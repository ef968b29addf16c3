//! Audio level in dBFS, to tell "non-silent" audio from silence.

/// RMS level of `pcm` relative to full scale, in dB: 0 for a full-scale square wave, about -3
/// for a full-scale sine, `f32::NEG_INFINITY` for digital silence or an empty slice.
pub fn rms_dbfs(pcm: &[i16]) -> f32 {
    if pcm.is_empty() {
        return f32::NEG_INFINITY;
    }
    let sum_of_squares: f64 = pcm.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum_of_squares / pcm.len() as f64).sqrt() / 32_768.0;
    if rms == 0.0 {
        f32::NEG_INFINITY
    } else {
        (20.0 * rms.log10()) as f32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_levels() {
        assert_eq!(rms_dbfs(&[]), f32::NEG_INFINITY);
        assert_eq!(rms_dbfs(&[0; 960]), f32::NEG_INFINITY);
        assert!(rms_dbfs(&[i16::MIN; 960]).abs() < 0.001);
        let half: Vec<i16> = (0..960)
            .map(|i| if i % 2 == 0 { 16_384 } else { -16_384 })
            .collect();
        assert!((rms_dbfs(&half) - (-6.02)).abs() < 0.01);
        assert!(rms_dbfs(&[1, -1, 0, 0]) < -90.0);
    }
}
