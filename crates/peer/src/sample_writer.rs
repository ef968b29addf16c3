//! Hands encoded media from a media thread to its WebRTC track.

use super::stats::LiveCallStats;
use bytes::Bytes;
use doorbell_protocol::PeerEvent;
use rtc::media::Sample;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;

/// What a media thread sends to its writer task.
pub(crate) enum PumpMessage {
    /// One encoded unit: a whole H.264 access unit or one Opus packet.
    Sample {
        data: Vec<u8>,
        captured: Instant,
        duration: Duration,
    },
    /// The source or encoder failed; this medium stops, the call goes on.
    Failed(String),
}

/// Where a writer task writes to.
pub(crate) struct TrackTarget {
    pub track: Arc<TrackLocalStaticSample>,
    pub ssrc: u32,
    /// The payload type the remote side negotiated, not our registration's.
    pub payload_type: u8,
}

/// Writes every sample to the track until the media thread ends; counts the ones written.
pub(crate) async fn write_samples(
    medium: &'static str,
    target: TrackTarget,
    mut from_thread: mpsc::Receiver<PumpMessage>,
    counters: Arc<LiveCallStats>,
    written: fn(&LiveCallStats) -> &AtomicU64,
    events: mpsc::UnboundedSender<PeerEvent>,
) {
    let mut failures_logged = 0_u32;
    while let Some(message) = from_thread.recv().await {
        match message {
            PumpMessage::Sample {
                data,
                captured,
                duration,
            } => {
                let sample = Sample {
                    data: Bytes::from(data),
                    duration,
                    ..Sample::new(captured)
                };
                match target
                    .track
                    .write_sample(target.ssrc, target.payload_type, &sample, &[])
                    .await
                {
                    Ok(()) => LiveCallStats::add(written(&counters)),
                    Err(error) => {
                        // Typically a closing connection; do not flood the log at 30 fps.
                        if failures_logged < 3 {
                            tracing::debug!(%error, medium, "could not send a sample");
                            failures_logged += 1;
                        }
                    }
                }
            }
            PumpMessage::Failed(message) => {
                tracing::warn!(medium, %message, "media stopped; the call goes on without it");
                let _ = events.send(PeerEvent::MediaError(format!("{medium}: {message}")));
                break;
            }
        }
    }
}
