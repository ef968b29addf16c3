//! The live form of a call's `CallStats`: atomics the media pumps bump, read by `CallPeer::stats`.

use doorbell_protocol::CallStats;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct LiveCallStats {
    pub video_frames_sent: AtomicU64,
    pub audio_frames_sent: AtomicU64,
    pub audio_frames_received: AtomicU64,
    pub audio_frames_nonsilent: AtomicU64,
    pub keyframe_requests: AtomicU64,
}

impl LiveCallStats {
    pub fn snapshot(&self) -> CallStats {
        CallStats {
            video_frames_sent: self.video_frames_sent.load(Ordering::Relaxed),
            audio_frames_sent: self.audio_frames_sent.load(Ordering::Relaxed),
            audio_frames_received: self.audio_frames_received.load(Ordering::Relaxed),
            audio_frames_nonsilent: self.audio_frames_nonsilent.load(Ordering::Relaxed),
            keyframe_requests: self.keyframe_requests.load(Ordering::Relaxed),
        }
    }

    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
