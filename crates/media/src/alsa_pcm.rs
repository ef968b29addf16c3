//! ALSA helpers the microphone and the speaker share: error classification, hardware
//! parameters and the messages for a refused device. In their own module so that
//! `alsa_capture` and `alsa_playback` depend on it rather than on each other.

use crate::pcm_io::PcmIoError;
use crate::{MediaError, SAMPLE_RATE};
use alsa::ValueOr;
use alsa::pcm::{Access, Format, HwParams, PCM};

/// EPIPE (xrun) and ESTRPIPE (suspended) are recoverable.
pub(crate) fn classify(error: &alsa::Error) -> PcmIoError {
    const EPIPE: i32 = 32;
    const ESTRPIPE: i32 = 86;
    match error.errno() {
        EPIPE | ESTRPIPE => PcmIoError::Xrun,
        _ => PcmIoError::Fatal(error.to_string()),
    }
}

/// Sets interleaved S16 at the channel count nearest `channels` and the rate nearest
/// 48 kHz, with ~10 ms periods and ~80 ms of buffer; returns (rate, channels).
pub(crate) fn configure(pcm: &PCM, channels: u32) -> alsa::Result<(u32, u32)> {
    let hw = HwParams::any(pcm)?;
    hw.set_access(Access::RWInterleaved)?;
    hw.set_format(Format::s16())?;
    let channels = hw.set_channels_near(channels)?;
    let rate = hw.set_rate_near(SAMPLE_RATE, ValueOr::Nearest)?;
    let period = i64::from(rate / 100);
    hw.set_period_size_near(period, ValueOr::Nearest)?;
    hw.set_buffer_size_near(period * 8)?;
    pcm.hw_params(&hw)?;
    Ok((rate, channels))
}

/// What to tell the user when ALSA refuses.
pub(crate) fn alsa_problem(device: &str, what: &str, error: &alsa::Error) -> MediaError {
    const ENOENT: i32 = 2;
    const EACCES: i32 = 13;
    const EBUSY: i32 = 16;
    let problem = match error.errno() {
        ENOENT => format!(
            "no such {what}: `doorbell devices` lists the ALSA devices (a USB webcam's \
             microphone is usually plughw:1,0)"
        ),
        EACCES => {
            "permission denied: add the user running the doorbell to the `audio` group".to_owned()
        }
        EBUSY => format!(
            "the {what} is busy: another program uses it; stop it, or use the `default` \
             device (dmix/dsnoop share a card)"
        ),
        _ => format!("cannot use the {what}: {error}"),
    };
    MediaError::AudioDevice {
        device: device.to_owned(),
        problem,
    }
}
