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

/// Video encoding over the process's life, for the agent's metrics: a doorbell has one camera
/// and one call at a time, so process-wide totals are what an operator wants to graph.
#[derive(Debug, Default)]
pub struct EncodeTotals {
    frames_encoded: AtomicU64,
    encode_nanos: AtomicU64,
    frames_skipped: AtomicU64,
}

/// What [`encode_totals`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeSnapshot {
    /// Frames the encoder produced output for.
    pub frames_encoded: u64,
    /// Time spent in the video encoder, over every frame handed to it.
    pub encode_time: std::time::Duration,
    /// Frames captured but not sent: the encoder's rate control skipped them.
    pub frames_skipped: u64,
}

pub(crate) static ENCODE_TOTALS: EncodeTotals = EncodeTotals {
    frames_encoded: AtomicU64::new(0),
    encode_nanos: AtomicU64::new(0),
    frames_skipped: AtomicU64::new(0),
};

impl EncodeTotals {
    pub(crate) fn frame(&self, took: std::time::Duration, produced: bool) {
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.encode_nanos.fetch_add(nanos, Ordering::Relaxed);
        let counter = if produced {
            &self.frames_encoded
        } else {
            &self.frames_skipped
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// The video encoding totals since the process started.
pub fn encode_totals() -> EncodeSnapshot {
    let t = &ENCODE_TOTALS;
    EncodeSnapshot {
        frames_encoded: t.frames_encoded.load(Ordering::Relaxed),
        encode_time: std::time::Duration::from_nanos(t.encode_nanos.load(Ordering::Relaxed)),
        frames_skipped: t.frames_skipped.load(Ordering::Relaxed),
    }
}
