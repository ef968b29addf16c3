//! Opus encoding with opus-rs: 48 kHz mono, 20 ms frames.

use crate::{FRAME_SAMPLES, MediaError, SAMPLE_RATE};

/// Lowest bitrate Opus supports.
pub const MIN_AUDIO_BITRATE_BPS: u32 = 6_000;
/// Highest bitrate Opus supports for one channel.
pub const MAX_AUDIO_BITRATE_BPS: u32 = 256_000;
/// Largest Opus packet (RFC 6716 §3.2.1).
pub(crate) const MAX_PACKET_BYTES: usize = 1276;

/// How the encoder trades quality for CPU and delay. Every Opus decoder plays both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OpusApplication {
    /// Opus' VoIP application (SILK+CELT hybrid at 48 kHz): best speech quality per bit.
    #[default]
    Voice,
    /// Opus' restricted-low-delay application (CELT only): about 9x less CPU here
    /// (BENCHMARKS.md) and a few ms less codec delay, at some speech quality below ~24 kbit/s.
    /// The better choice on a small board.
    LowDelay,
}

/// From this bitrate up CELT alone carries speech well (Opus' own hybrid/CELT switch point for
/// wideband speech is about there); below it SILK's speech model is worth its CPU.
pub const LOW_DELAY_FROM_BPS: u32 = 24_000;

impl OpusApplication {
    /// What a call's audio uses at `bitrate_bps`: [`OpusApplication::LowDelay`] from
    /// [`LOW_DELAY_FROM_BPS`] up (a doorbell's default 32 kbit/s: ~1.4 % of an x86 core less
    /// than VoIP, issue 19), [`OpusApplication::Voice`] below.
    pub fn for_bitrate(bitrate_bps: u32) -> Self {
        if bitrate_bps >= LOW_DELAY_FROM_BPS {
            Self::LowDelay
        } else {
            Self::Voice
        }
    }
}

/// Encodes 20 ms blocks of 48 kHz mono PCM into Opus packets.
pub struct OpusEncoder {
    encoder: opus_rs::OpusEncoder,
    packet: Vec<u8>,
}

impl OpusEncoder {
    /// A [`OpusApplication::Voice`] encoder at `bitrate_bps` (6000..=256000; 32000 suits
    /// speech well).
    pub fn new(bitrate_bps: u32) -> Result<Self, MediaError> {
        Self::with_application(bitrate_bps, OpusApplication::Voice)
    }

    /// An encoder for `application` at `bitrate_bps` (6000..=256000).
    pub fn with_application(
        bitrate_bps: u32,
        application: OpusApplication,
    ) -> Result<Self, MediaError> {
        if !(MIN_AUDIO_BITRATE_BPS..=MAX_AUDIO_BITRATE_BPS).contains(&bitrate_bps) {
            return Err(MediaError::OutOfRange {
                name: "audio bitrate (bit/s)",
                value: i64::from(bitrate_bps),
                hint: "use 6000 to 256000 (e.g. 32000 for speech)",
            });
        }
        let application = match application {
            OpusApplication::Voice => opus_rs::Application::Voip,
            OpusApplication::LowDelay => opus_rs::Application::RestrictedLowDelay,
        };
        let mut encoder =
            opus_rs::OpusEncoder::new(SAMPLE_RATE as i32, 1, application).map_err(|message| {
                MediaError::Opus {
                    operation: "encoder setup",
                    message: message.to_string(),
                }
            })?;
        // In range by the check above, so the cast cannot wrap.
        encoder.bitrate_bps = bitrate_bps as i32;
        Ok(Self {
            encoder,
            packet: vec![0; MAX_PACKET_BYTES],
        })
    }

    /// One Opus packet for 20 ms of audio.
    pub fn encode(&mut self, pcm: &[i16; FRAME_SAMPLES]) -> Result<Vec<u8>, MediaError> {
        let length = self
            .encoder
            .encode_i16(pcm, FRAME_SAMPLES, &mut self.packet)
            .map_err(|message| MediaError::Opus {
                operation: "encode",
                message: message.to_string(),
            })?;
        let packet = self.packet.get(..length).ok_or_else(|| MediaError::Opus {
            operation: "encode",
            message: format!("encoder reported {length} bytes, more than a packet holds"),
        })?;
        Ok(packet.to_vec())
    }
}
