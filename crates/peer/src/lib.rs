//! The WebRTC side of a call: answers the browser's offer with one media stream (H.264 video
//! and Opus audio), pumps the camera and microphone to it, plays the browser's audio, and
//! reports what happens as [`PeerEvent`]s.
//!
//! How the call flow uses it:
//! 1. on `invite`: `CallPeer::answer(&config, &offer, media, events_tx)` → send the returned
//!    answer as `ok`; hold page candidates that arrived before the offer and pass them to
//!    `add_remote_candidate` now, later ones as they come (`None` = end, accepted);
//! 2. read `PeerEvent`s: `LocalCandidate` → `ice_candidate` to the page, `MediaConnected` →
//!    in call, `IceLost`/`Closed` → end the call, `MediaError` → log/report, the call goes on;
//! 3. on hang-up: `close().await` returns the final `CallStats` once camera, microphone and
//!    encoders are released and the sink is finished. A `CallPeer` dropped without `close`
//!    stops its media threads too, but nobody waits for them; close it.
//!
//! Built on `webrtc` 0.21 (async layer over the sans-IO `rtc` crate); docs/architecture.md
//! ("Facts the code relies on") lists what it takes to make that work with Chromium.

mod audio_receiver;
mod audio_sender;
mod call_events;
mod call_peer;
mod codecs;
mod config;
mod error;
mod gate;
mod keyframe_request_forwarder;
pub mod media_settings;
pub mod message_recorder;
mod pacer;
mod packet_loss;
mod sample_writer;
mod sdp;
mod stats;
mod thread_join;
mod video_pump;

pub use audio_receiver::NONSILENT_DBFS;
pub use call_peer::{CallMedia, CallPeer};
pub use config::PeerConfig;
pub use doorbell_protocol::IceServer;
pub use doorbell_protocol::{CallStats, PeerEvent};
pub use error::PeerError;
pub use sdp::VideoCodecPreference;
pub use stats::{EncodeSnapshot, encode_totals};
