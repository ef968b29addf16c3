//! H.264 decoding with openh264 (for tests, previews and checks of what we send).

use std::time::SystemTime;

use openh264::OpenH264API;
use openh264::decoder::{Decoder, DecoderConfig};
use openh264::formats::YUVSource;

use crate::{MediaError, VideoFrame};

/// Decodes Annex-B access units back to I420 frames.
pub struct H264Decoder {
    decoder: Decoder,
    frames_decoded: u64,
}

impl H264Decoder {
    pub fn new() -> Result<Self, MediaError> {
        let decoder = Decoder::with_api_config(OpenH264API::from_source(), DecoderConfig::new())
            .map_err(|error| MediaError::H264 {
                operation: "decoder setup",
                message: error.to_string(),
            })?;
        Ok(Self {
            decoder,
            frames_decoded: 0,
        })
    }

    /// Decodes one access unit; `None` when it completed no picture (e.g. SPS/PPS only).
    /// The frame's `sequence` counts decoded pictures and `capture_time` is the decode time.
    pub fn decode(&mut self, access_unit: &[u8]) -> Result<Option<VideoFrame>, MediaError> {
        let decoded = self
            .decoder
            .decode(access_unit)
            .map_err(|error| MediaError::H264 {
                operation: "decode",
                message: error.to_string(),
            })?;
        let Some(picture) = decoded else {
            return Ok(None);
        };
        let (width, height) = picture.dimensions();
        let (luma_stride, chroma_stride, _) = picture.strides();
        let (chroma_width, chroma_height) = (width / 2, height / 2);
        let copy_plane = |plane: &[u8], stride: usize, columns: usize, rows: usize| {
            let mut out = Vec::with_capacity(columns * rows);
            for row in 0..rows {
                let line = plane
                    .get(row * stride..row * stride + columns)
                    .ok_or_else(|| MediaError::H264 {
                        operation: "decode",
                        message: "decoder returned a picture smaller than its size".into(),
                    })?;
                out.extend_from_slice(line);
            }
            Ok::<_, MediaError>(out)
        };
        let frame = VideoFrame {
            width: u32::try_from(width).map_err(|_| MediaError::InvalidFrame("width".into()))?,
            height: u32::try_from(height).map_err(|_| MediaError::InvalidFrame("height".into()))?,
            y: copy_plane(picture.y(), luma_stride, width, height)?,
            u: copy_plane(picture.u(), chroma_stride, chroma_width, chroma_height)?,
            v: copy_plane(picture.v(), chroma_stride, chroma_width, chroma_height)?,
            sequence: self.frames_decoded,
            capture_time: SystemTime::now(),
        };
        self.frames_decoded += 1;
        Ok(Some(frame))
    }
}
