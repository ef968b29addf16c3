//! H.264 encoding with openh264: constrained baseline, one Annex-B access unit per frame.

use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Level, Profile,
    RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSlices;
use openh264::{OpenH264API, Timestamp};

use crate::{MediaError, VideoFormat, VideoFrame};

// The workspace's one bitrate range: what the agent's settings accept, the encoder takes.
pub use doorbell_protocol::limits::{MAX_VIDEO_BITRATE_BPS, MIN_VIDEO_BITRATE_BPS};
/// A keyframe at least this often even without a request, so a viewer recovers from loss
/// whose keyframe request (PLI/FIR) got lost too.
pub const KEYFRAME_INTERVAL_SECONDS: u32 = 10;

/// An H.264 encoder (constrained baseline, `profile-level-id` 42e01f compatible) for one
/// stream of frames of one size.
pub struct H264Encoder {
    encoder: Encoder,
    format: VideoFormat,
    frames_encoded: u64,
}

impl H264Encoder {
    /// An encoder for frames of `format`'s size at its frame rate and `bitrate_bps`.
    pub fn new(format: VideoFormat, bitrate_bps: u32) -> Result<Self, MediaError> {
        format.check_encoder(bitrate_bps)?;
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(format.fps as f32))
            .rate_control_mode(RateControlMode::Bitrate)
            // A skipped frame would be an empty sample; the caller expects one per frame.
            .skip_frames(false)
            // Baseline in openh264 sets constraint_set0 and 1: constrained baseline (42 c0).
            .profile(Profile::Baseline)
            // A floor; openh264 raises it when the size/rate needs more.
            .level(Level::Level_3_1)
            .usage_type(UsageType::CameraVideoRealTime)
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .intra_frame_period(IntraFramePeriod::from_num_frames(
                format.fps * KEYFRAME_INTERVAL_SECONDS,
            ))
            // One frame at a time is plenty at these sizes and keeps the Pi's other cores free.
            .num_threads(1);
        let mut encoder =
            Encoder::with_api_config(OpenH264API::from_source(), config).map_err(|error| {
                MediaError::H264 {
                    operation: "encoder setup",
                    message: error.to_string(),
                }
            })?;
        crate::openh264_log::route_to_tracing(&mut encoder);
        tracing::debug!(%format, bitrate_bps, "H.264 encoder ready");
        Ok(Self {
            encoder,
            format,
            frames_encoded: 0,
        })
    }

    /// The format this encoder was made for.
    pub fn format(&self) -> VideoFormat {
        self.format
    }

    /// Frames encoded so far.
    pub fn frames_encoded(&self) -> u64 {
        self.frames_encoded
    }

    /// One whole Annex-B access unit (start codes included; SPS/PPS before every IDR).
    /// The first frame and every `force_keyframe` frame is an IDR.
    pub fn encode(
        &mut self,
        frame: &VideoFrame,
        force_keyframe: bool,
    ) -> Result<Vec<u8>, MediaError> {
        frame.check_format(self.format)?;
        let width = frame.width_usize();
        let height = frame.height_usize();
        // Lengths were checked by validate(), so YUVSlices' assertions hold.
        let source = YUVSlices::new(
            (&frame.y, &frame.u, &frame.v),
            (width, height),
            (width, width / 2, width / 2),
        );
        // Before the first frame the encoder is not initialised yet, and that frame is an IDR.
        if force_keyframe && self.frames_encoded > 0 {
            self.encoder.force_intra_frame();
        }
        let timestamp =
            Timestamp::from_millis(self.frames_encoded * 1000 / u64::from(self.format.fps));
        let bitstream = self
            .encoder
            .encode_at(&source, timestamp)
            .map_err(|error| MediaError::H264 {
                operation: "encode",
                message: error.to_string(),
            })?;
        let frame_type = bitstream.frame_type();
        let access_unit = bitstream.to_vec();
        self.frames_encoded += 1;
        if frame_type == FrameType::Skip || access_unit.is_empty() {
            tracing::debug!(sequence = frame.sequence, "H.264 encoder skipped a frame");
        }
        Ok(access_unit)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::SystemTime;

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    use super::H264Encoder;
    use crate::{VideoFormat, VideoFrame};

    // Here rather than in openh264_log.rs: the test drives a whole encoder, and a test there
    // importing the encoder made the two modules import each other.

    /// Counts events whose target is "openh264".
    struct OpenH264Events(Arc<AtomicUsize>);

    impl Subscriber for OpenH264Events {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            if event.metadata().target() == "openh264" {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn encoder_setup_messages_arrive_as_tracing_events() {
        let count = Arc::new(AtomicUsize::new(0));
        tracing::subscriber::with_default(OpenH264Events(count.clone()), || {
            let format = VideoFormat {
                width: 320,
                height: 240,
                fps: 30,
            };
            let mut encoder = H264Encoder::new(format, 500_000).unwrap();
            let frame = VideoFrame::black(320, 240, 0, SystemTime::now()).unwrap();
            encoder.encode(&frame, false).unwrap();
        });
        // openh264 warns at initialisation that rate control works better with frame skipping.
        assert!(count.load(Ordering::SeqCst) >= 1);
    }
}
