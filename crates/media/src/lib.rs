//! Media for the doorbell: sources (test pattern, tone), encoders (H.264, Opus), decoders
//! (Opus for the owner's voice, H.264 for checks), sinks (WAV, null) and JPEG snapshots.
//!
//! Video is I420 ([`VideoFrame`]), audio 48 kHz mono i16 in 20 ms blocks ([`FRAME_SAMPLES`]).
//! Nothing here does I/O with the network or paces itself: the caller (the agent) runs sources
//! at their rate and hands encoded data to WebRTC.

mod alsa_capture;
#[cfg(feature = "alsa")]
mod alsa_pcm;
mod alsa_playback;
mod annex_b;
mod audio_io;
mod bitmap_font;
mod error;
mod h264_decoder;
mod h264_encoder;
mod jpeg_snapshot;
mod latency_stamp;
mod level_meter;
mod mjpeg;
mod null_sink;
mod openh264_log;
mod opus_decoder;
mod opus_encoder;
mod pcm_io;
mod resample;
mod test_pattern;
mod tone;
mod v4l2_camera;
mod video_encoder;
mod video_frame;
mod video_source;
#[cfg(feature = "vp8")]
mod vp8_encoder;
mod wav_sink;
mod yuyv;

#[cfg(feature = "alsa")]
pub use alsa_capture::{AlsaCapture, open_alsa_capture};
pub use alsa_capture::{CaptureChain, PcmInput};
#[cfg(feature = "alsa")]
pub use alsa_playback::{AlsaDevice, AlsaPlayback, list_alsa_devices, open_alsa_playback};
pub use alsa_playback::{MAX_VOLUME_PERCENT, PcmOutput, PlaybackChain};
pub use annex_b::{NAL_IDR_SLICE, NAL_PPS, NAL_SPS, is_keyframe, nal_unit_types, nal_units};
pub use audio_io::{AudioSink, AudioSource, FRAME_SAMPLES, SAMPLE_RATE};
pub use error::MediaError;
pub use h264_decoder::H264Decoder;
pub use h264_encoder::{
    H264Encoder, KEYFRAME_INTERVAL_SECONDS, MAX_VIDEO_BITRATE_BPS, MIN_VIDEO_BITRATE_BPS,
};
pub use jpeg_snapshot::encode_jpeg;
pub use latency_stamp::{STAMP_ROWS, read_stamp, split_stamp, stamp_value, write_stamp};
pub use level_meter::rms_dbfs;
pub use mjpeg::{full_to_limited_chroma, full_to_limited_luma, mjpeg_to_i420};
pub use null_sink::NullSink;
pub use opus_decoder::OpusDecoder;
pub use opus_encoder::{
    MAX_AUDIO_BITRATE_BPS, MIN_AUDIO_BITRATE_BPS, OpusApplication, OpusEncoder,
};
pub use pcm_io::PcmIoError;
pub use resample::Resampler;
pub use test_pattern::TestPattern;
pub use tone::{Silence, TONE_PEAK_DBFS, Tone};
pub use v4l2_camera::{
    CameraInfo, CameraMode, CameraPixelFormat, CameraStream, ChosenMode, DEFAULT_CAMERA,
    FrameRates, V4l2Camera, choose_mode, list_cameras,
};
pub use video_encoder::{VideoCodec, VideoEncoder, new_video_encoder};
pub use video_frame::{
    MAX_FPS, MAX_HEIGHT, MAX_WIDTH, MIN_HEIGHT, MIN_WIDTH, VideoFormat, VideoFrame,
};
pub use video_source::VideoSource;
#[cfg(feature = "vp8")]
pub use vp8_encoder::{Vp8Encoder, is_vp8_keyframe};
pub use wav_sink::WavSink;
pub use yuyv::{YUYV_BYTES_PER_PIXEL, yuyv_to_i420};

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent moves codecs, sources and sinks into worker threads and tasks.
    #[test]
    fn media_parts_can_move_between_threads() {
        fn assert_send<T: Send + 'static>() {}
        assert_send::<H264Encoder>();
        assert_send::<H264Decoder>();
        assert_send::<OpusEncoder>();
        assert_send::<OpusDecoder>();
        assert_send::<TestPattern>();
        assert_send::<Tone>();
        assert_send::<WavSink>();
        assert_send::<NullSink>();
        assert_send::<MediaError>();
        assert_send::<Box<dyn VideoSource>>();
        assert_send::<Box<dyn AudioSource>>();
        assert_send::<Box<dyn AudioSink>>();
    }
}
