//! What reading or writing a PCM device can run into, shared by the microphone
//! ([`crate::PcmInput`]) and the speaker ([`crate::PcmOutput`]) chains.

/// What a PCM read or write can run into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PcmIoError {
    /// Overrun (capture) or underrun (playback), or a resume after suspend: recoverable.
    Xrun,
    /// Anything else: the device is gone or broken.
    Fatal(String),
}
