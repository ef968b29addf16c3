//! The one error type of the media layer.

use std::path::PathBuf;

/// Everything that can go wrong in a media source, encoder, decoder or sink.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// A video size/frame rate that the sources and encoders cannot use.
    #[error(
        "video format {width}x{height}@{fps} is not usable: {reason}; use even sizes from 64x64 up to 1920 on a side and 1 to 60 fps"
    )]
    InvalidFormat {
        width: u32,
        height: u32,
        fps: u32,
        reason: &'static str,
    },
    /// A frame whose planes do not match its size (or that has an odd size).
    #[error("video frame is malformed: {0}; build frames with VideoFrame::black or a VideoSource")]
    InvalidFrame(String),
    /// A setting out of its range (bitrate, quality, ...).
    #[error("{name} = {value} is out of range; {hint}")]
    OutOfRange {
        name: &'static str,
        value: i64,
        hint: &'static str,
    },
    /// The H.264 encoder or decoder (openh264) refused.
    #[error("H.264 {operation} failed: {message}")]
    H264 {
        operation: &'static str,
        message: String,
    },
    /// The VP8 encoder or decoder (libvpx) refused.
    #[error("VP8 {operation} failed: {message}")]
    Vp8 {
        operation: &'static str,
        message: String,
    },
    /// The Opus encoder or decoder (opus-rs) refused.
    #[error("Opus {operation} failed: {message}")]
    Opus {
        operation: &'static str,
        message: String,
    },
    /// Snapshot encoding failed.
    #[error("JPEG encoding failed: {0}")]
    Jpeg(String),
    /// Reading or writing a file failed.
    #[error("cannot {action} {path}: {source}; check the path exists and is writable")]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A WAV file cannot hold more than 4 GiB of samples.
    #[error("WAV file {0} is full (4 GiB limit of the format); finish it and start a new one")]
    WavFull(PathBuf),
    /// Writing to a sink after `finish()`.
    #[error("the audio sink was already finished; create a new one for the next call")]
    SinkFinished,
    /// A camera that cannot be opened or set up (missing, busy, not a capture device, no
    /// usable format). `problem` already says what to check.
    #[error("camera {device}: {problem}")]
    Camera { device: String, problem: String },
    /// A camera that stopped delivering frames mid-call (unplugged, driver error).
    #[error(
        "camera {device} stopped delivering frames ({reason}); is it still plugged in? The call goes on without video and the camera is tried again at the next ring"
    )]
    CameraLost { device: String, reason: String },
    /// A frame from the camera that cannot be converted (corrupt MJPEG, short buffer).
    #[error("camera frame unusable: {0}")]
    BadCameraFrame(String),
    /// An ALSA microphone or speaker that cannot be opened or used.
    #[error("audio device {device}: {problem}")]
    AudioDevice { device: String, problem: String },
}
