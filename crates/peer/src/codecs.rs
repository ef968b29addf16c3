//! The codecs the agent sends and receives, and the interceptor chain around them.
//!
//! Only what is sent is registered: Opus, and the one video codec chosen for the call from the
//! browser's offer — H.264 constrained baseline (`42e01f`, packetization-mode 1) or VP8 — with
//! the feedback Chrome expects. The payload types here are
//! only our preference; the browser's numbers win, so the pumps take the payload type from the
//! sender's negotiated parameters.

use super::keyframe_request_forwarder::{
    KEYFRAME_REQUEST_FORWARDER_SLOT, KeyframeRequestForwarder,
};
use doorbell_media::VideoCodec;
use rtc::interceptor::Slot;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RtpCodecKind,
};
use webrtc::peer_connection::{MediaEngine, Registry, register_default_interceptors};

pub(crate) const H264_FMTP: &str =
    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f";
pub(crate) const OPUS_FMTP: &str = "minptime=10;useinbandfec=1";
pub(crate) const VIDEO_CLOCK_RATE: u32 = 90_000;
pub(crate) const AUDIO_CLOCK_RATE: u32 = 48_000;

fn feedback(typ: &str, parameter: &str) -> RTCPFeedback {
    RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    }
}

pub(crate) fn h264_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_H264.to_owned(),
        clock_rate: VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: H264_FMTP.to_owned(),
        rtcp_feedback: vec![
            feedback("goog-remb", ""),
            feedback("ccm", "fir"),
            feedback("nack", ""),
            feedback("nack", "pli"),
        ],
    }
}

pub(crate) fn vp8_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_VP8.to_owned(),
        clock_rate: VIDEO_CLOCK_RATE,
        channels: 0,
        sdp_fmtp_line: String::new(),
        rtcp_feedback: vec![
            feedback("goog-remb", ""),
            feedback("ccm", "fir"),
            feedback("nack", ""),
            feedback("nack", "pli"),
        ],
    }
}

/// The RTP codec of `codec`.
pub(crate) fn video_codec(codec: VideoCodec) -> RTCRtpCodec {
    match codec {
        VideoCodec::H264 => h264_codec(),
        VideoCodec::Vp8 => vp8_codec(),
    }
}

pub(crate) fn opus_codec() -> RTCRtpCodec {
    RTCRtpCodec {
        mime_type: rtc::peer_connection::configuration::media_engine::MIME_TYPE_OPUS.to_owned(),
        clock_rate: AUDIO_CLOCK_RATE,
        channels: 2,
        sdp_fmtp_line: OPUS_FMTP.to_owned(),
        rtcp_feedback: vec![],
    }
}

/// The media engine and interceptor chain of one call that sends `video`.
pub(crate) fn media_engine_and_interceptors(
    video: VideoCodec,
) -> Result<(MediaEngine, Registry), webrtc::error::Error> {
    let mut media_engine = MediaEngine::default();
    media_engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: opus_codec(),
            payload_type: 111,
        },
        RtpCodecKind::Audio,
    )?;
    media_engine.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: video_codec(video),
            payload_type: 102,
        },
        RtpCodecKind::Video,
    )?;
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    let registry = registry.with(
        Slot::from(KEYFRAME_REQUEST_FORWARDER_SLOT),
        KeyframeRequestForwarder::default(),
    );
    Ok((media_engine, registry))
}
