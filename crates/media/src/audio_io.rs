//! Where audio comes from and goes to: 48 kHz mono i16 PCM in 20 ms blocks.

use crate::MediaError;
use std::time::Duration;

/// Sample rate of every PCM buffer in this crate (Opus' native rate).
pub const SAMPLE_RATE: u32 = 48_000;
/// Samples in one 20 ms block at [`SAMPLE_RATE`] (one Opus frame).
pub const FRAME_SAMPLES: usize = 960;

/// A producer of 48 kHz mono i16 PCM, read in 20 ms blocks.
pub trait AudioSource: Send + 'static {
    /// true when read() blocks until the device delivers (a microphone paces itself);
    /// false for synthetic sources, which the caller paces every 20 ms.
    fn is_live(&self) -> bool;
    /// Fills `out` with the next 20 ms.
    fn read(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError>;
    /// true when the source records a place (a microphone), so echo cancellation and noise
    /// suppression apply; false for a test signal, which a test measures as it is.
    fn is_acoustic(&self) -> bool {
        true
    }
    /// How long ago the newest sample read was captured (the device's buffer), when the
    /// device says; the echo canceller's starting point for the speaker → microphone delay.
    fn latency(&self) -> Option<Duration> {
        None
    }
}

/// A consumer of 48 kHz mono i16 PCM (speaker, file, nothing).
pub trait AudioSink: Send + 'static {
    /// Plays or stores `pcm` (any length).
    fn write(&mut self, pcm: &[i16]) -> Result<(), MediaError>;
    /// Flushes and closes; after this, `write` fails. Calling it twice is harmless.
    fn finish(&mut self) -> Result<(), MediaError>;
    /// How long until the last sample written is heard (the device's queue), when the device
    /// says.
    fn latency(&self) -> Option<Duration> {
        None
    }
}

impl AudioSource for Box<dyn AudioSource> {
    fn is_live(&self) -> bool {
        (**self).is_live()
    }
    fn read(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        (**self).read(out)
    }
    fn is_acoustic(&self) -> bool {
        (**self).is_acoustic()
    }
    fn latency(&self) -> Option<Duration> {
        (**self).latency()
    }
}

impl AudioSink for Box<dyn AudioSink> {
    fn write(&mut self, pcm: &[i16]) -> Result<(), MediaError> {
        (**self).write(pcm)
    }
    fn finish(&mut self) -> Result<(), MediaError> {
        (**self).finish()
    }
    fn latency(&self) -> Option<Duration> {
        (**self).latency()
    }
}
