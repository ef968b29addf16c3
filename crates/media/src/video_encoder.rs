//! The one encoder trait the video pump drives, whichever codec the browser chose.

use crate::{H264Encoder, MediaError, VideoFormat, VideoFrame};

/// A video codec the agent can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 constrained baseline, packetization-mode 1 (Chromium, Safari, Firefox with the
    /// OpenH264 plugin).
    H264,
    /// VP8 (every WebRTC browser; the only one Debian's Firefox has).
    Vp8,
}

impl VideoCodec {
    /// The RTP MIME type.
    pub fn mime_type(self) -> &'static str {
        match self {
            VideoCodec::H264 => "video/H264",
            VideoCodec::Vp8 => "video/VP8",
        }
    }

    /// true when this build can encode it (VP8 needs the `vp8` feature: libvpx).
    pub fn is_available(self) -> bool {
        match self {
            VideoCodec::H264 => true,
            VideoCodec::Vp8 => cfg!(feature = "vp8"),
        }
    }
}

impl std::fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::Vp8 => "VP8",
        })
    }
}

/// Frames in, one encoded frame out (an Annex-B access unit for H.264, a VP8 frame).
pub trait VideoEncoder: Send {
    /// The first frame and every `force_keyframe` frame is a keyframe. An empty result is a
    /// frame the rate control skipped.
    fn encode(&mut self, frame: &VideoFrame, force_keyframe: bool) -> Result<Vec<u8>, MediaError>;
    /// The size and rate it was made for.
    fn format(&self) -> VideoFormat;
}

impl VideoEncoder for H264Encoder {
    fn encode(&mut self, frame: &VideoFrame, force_keyframe: bool) -> Result<Vec<u8>, MediaError> {
        H264Encoder::encode(self, frame, force_keyframe)
    }
    fn format(&self) -> VideoFormat {
        H264Encoder::format(self)
    }
}

#[cfg(feature = "vp8")]
impl VideoEncoder for crate::Vp8Encoder {
    fn encode(&mut self, frame: &VideoFrame, force_keyframe: bool) -> Result<Vec<u8>, MediaError> {
        crate::Vp8Encoder::encode(self, frame, force_keyframe)
    }
    fn format(&self) -> VideoFormat {
        crate::Vp8Encoder::format(self)
    }
}

/// An encoder of `codec` for `format` at `bitrate_bps`.
pub fn new_video_encoder(
    codec: VideoCodec,
    format: VideoFormat,
    bitrate_bps: u32,
) -> Result<Box<dyn VideoEncoder>, MediaError> {
    match codec {
        VideoCodec::H264 => Ok(Box::new(H264Encoder::new(format, bitrate_bps)?)),
        #[cfg(feature = "vp8")]
        VideoCodec::Vp8 => Ok(Box::new(crate::Vp8Encoder::new(format, bitrate_bps)?)),
        #[cfg(not(feature = "vp8"))]
        VideoCodec::Vp8 => Err(MediaError::Vp8 {
            operation: "encoder setup",
            message: "this doorbell was built without VP8 (the `vp8` feature, libvpx)".to_owned(),
        }),
    }
}
