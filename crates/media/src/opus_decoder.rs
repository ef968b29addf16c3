//! Opus decoding with opus-rs: any Opus packet (mono or stereo, any mode) to 48 kHz mono PCM.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::{FRAME_SAMPLES, MediaError, SAMPLE_RATE};

/// The longest packet duration Opus allows: 120 ms at 48 kHz.
const MAX_PACKET_SAMPLES: usize = 5760;

/// Decodes Opus packets from the network (the owner's voice) to PCM.
pub struct OpusDecoder {
    decoder: opus_rs::OpusDecoder,
    pcm: Vec<f32>,
}

fn new_decoder() -> Result<opus_rs::OpusDecoder, MediaError> {
    opus_rs::OpusDecoder::new(SAMPLE_RATE as i32, 1).map_err(|message| MediaError::Opus {
        operation: "decoder setup",
        message: message.to_string(),
    })
}

impl OpusDecoder {
    pub fn new() -> Result<Self, MediaError> {
        Ok(Self {
            decoder: new_decoder()?,
            pcm: vec![0.0; MAX_PACKET_SAMPLES],
        })
    }

    /// 48 kHz mono samples of one packet (usually 960 for 20 ms). An empty packet stands for a
    /// lost one and yields 20 ms of concealment. A malformed packet is an error, never a panic;
    /// the decoder stays usable.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, MediaError> {
        let capacity = if packet.is_empty() {
            FRAME_SAMPLES
        } else {
            MAX_PACKET_SAMPLES
        };
        let decoder = &mut self.decoder;
        let pcm = &mut self.pcm[..capacity];
        // The packet comes from the network and opus-rs is a young port of C code: a panic
        // inside it must not take the call down. Its state may then be half-updated, so it is
        // replaced.
        let outcome = catch_unwind(AssertUnwindSafe(|| decoder.decode(packet, capacity, pcm)));
        let samples = match outcome {
            Ok(Ok(samples)) => samples,
            Ok(Err(message)) => {
                return Err(MediaError::Opus {
                    operation: "decode",
                    message: message.to_string(),
                });
            }
            Err(_) => {
                tracing::warn!(
                    bytes = packet.len(),
                    "Opus decoder panicked on a packet; reset"
                );
                self.decoder = new_decoder()?;
                return Err(MediaError::Opus {
                    operation: "decode",
                    message: "malformed packet".into(),
                });
            }
        };
        let decoded = self.pcm.get(..samples).ok_or_else(|| MediaError::Opus {
            operation: "decode",
            message: format!("decoder reported {samples} samples, more than it was given room for"),
        })?;
        Ok(decoded
            .iter()
            .map(|&sample| (sample * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16)
            .collect())
    }
}
