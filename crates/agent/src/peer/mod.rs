//! The WebRTC side of a call: answers the browser's offer with one media stream (H.264 video
//! and Opus audio), pumps the camera and microphone to it, plays the browser's audio, and
//! reports what happens as [`PeerEvent`]s.
//!
//! Built on `webrtc` 0.21 (async layer over the sans-IO `rtc` crate); DESIGN.md §7 lists what it
//! takes to make that work with Chromium.

mod audio_receiver;
mod audio_sender;
mod call_events;
mod call_peer;
mod codecs;
mod config;
mod error;
mod event;
mod gate;
mod keyframe_request_forwarder;
mod pacer;
mod sample_writer;
mod sdp;
mod stats;
mod thread_join;
mod video_pump;

pub use audio_receiver::NONSILENT_DBFS;
pub use call_peer::{CallMedia, CallPeer};
pub use config::{IceServer, PeerConfig};
pub use error::PeerError;
pub use event::{CallStats, PeerEvent};
