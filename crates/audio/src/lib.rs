//! The microphone's audio processing: echo cancellation (with what the speaker plays as the
//! far-end reference), noise suppression, automatic gain and a high-pass filter, before Opus.
//!
//! The processing itself is `sonora`, a pure-Rust port of the WebRTC audio processing module
//! (AEC3, NS, AGC2), in 10 ms frames at 48 kHz ([`Processor`]). A call runs it live: the
//! speaker's thread hands every played frame to the microphone's thread ([`live`]), which
//! feeds them to the processor before each captured frame, so one thread owns it and the two
//! streams meet at one clock. `doorbell audio-check` runs the same [`Processor`] over WAV files
//! ([`check`]).

pub mod check;
pub mod echo_room;
mod live;
pub mod measure;
mod processor;
mod settings;
pub mod speech;
pub mod wav_file;

pub use live::{MicProcessing, SpeakerTap, live};
pub use processor::{FRAME_10MS, Processor};
pub use settings::{AudioSettings, MAX_MIC_GAIN_DB, MIN_MIC_GAIN_DB};
