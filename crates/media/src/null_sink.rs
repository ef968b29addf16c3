//! A sink that discards audio but counts it (the default when nobody listens at the door).

use crate::{AudioSink, MediaError};

/// Discards everything written to it; counts the samples so callers can report them.
#[derive(Debug, Clone, Copy, Default)]
pub struct NullSink {
    samples_written: u64,
}

impl NullSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Samples accepted so far.
    pub fn samples_written(&self) -> u64 {
        self.samples_written
    }
}

impl AudioSink for NullSink {
    fn write(&mut self, pcm: &[i16]) -> Result<(), MediaError> {
        self.samples_written += pcm.len() as u64;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), MediaError> {
        Ok(())
    }
}
