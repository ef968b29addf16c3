//! Camera → H.264 → video track, with keyframes on the remote side's request.
//!
//! Capture and encoding run on a dedicated thread (they block and take milliseconds per frame);
//! an async task writes the access units to the track, another one listens for PLI/FIR.

use super::gate::MediaGate;
use super::keyframe_request_forwarder::is_keyframe_request;
use super::pacer::{Pacer, frame_duration};
use super::sample_writer::{PumpMessage, TrackTarget, write_samples};
use super::stats::{ENCODE_TOTALS, LiveCallStats};
use super::thread_join::join_media_thread;
use doorbell_media::{VideoCodec, VideoFormat, VideoSource, new_video_encoder};
use doorbell_protocol::PeerEvent;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

/// Encoded frames in flight between the encoder thread and the track; small, so a slow
/// network path back-pressures the encoder instead of queueing latency.
const QUEUE_DEPTH: usize = 2;

pub(crate) struct VideoSettings {
    pub codec: VideoCodec,
    pub format: VideoFormat,
    pub bitrate_bps: u32,
}

/// The running parts of the video pump. `stop` (after closing the gate) releases the camera and
/// the encoder.
pub(crate) struct VideoPump {
    thread: Option<std::thread::JoinHandle<()>>,
    writer: tokio::task::JoinHandle<()>,
    keyframe_listener: tokio::task::JoinHandle<()>,
}

impl VideoPump {
    pub fn start(
        source: Box<dyn VideoSource>,
        settings: VideoSettings,
        target: TrackTarget,
        gate: MediaGate,
        counters: Arc<LiveCallStats>,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> std::io::Result<Self> {
        let keyframe_wanted = Arc::new(AtomicBool::new(false));
        let (to_writer, from_thread) = mpsc::channel(QUEUE_DEPTH);
        let thread = {
            let keyframe_wanted = Arc::clone(&keyframe_wanted);
            std::thread::Builder::new()
                .name("doorbell-video".into())
                .spawn(move || {
                    capture_and_encode(source, settings, gate, keyframe_wanted, to_writer)
                })?
        };
        let track = Arc::clone(&target.track);
        let keyframe_listener = tokio::spawn(listen_for_keyframe_requests(
            track,
            keyframe_wanted,
            Arc::clone(&counters),
        ));
        let writer = tokio::spawn(write_samples(
            "video",
            target,
            from_thread,
            counters,
            |counters| &counters.video_frames_sent,
            events,
        ));
        Ok(Self {
            thread: Some(thread),
            writer,
            keyframe_listener,
        })
    }

    /// Waits for the thread to drop the camera and encoder; call after closing the gate.
    pub async fn stop(mut self) {
        if let Some(thread) = self.thread.take() {
            join_media_thread(thread).await;
        }
        let _ = (&mut self.writer).await;
        self.keyframe_listener.abort();
        let _ = (&mut self.keyframe_listener).await;
    }
}

fn capture_and_encode(
    mut source: Box<dyn VideoSource>,
    settings: VideoSettings,
    gate: MediaGate,
    keyframe_wanted: Arc<AtomicBool>,
    to_writer: mpsc::Sender<PumpMessage>,
) {
    let format = settings.format;
    let codec = settings.codec;
    // Made while ICE and DTLS connect, not after: the first frame (the keyframe) is then one
    // capture and one encode away from the moment the connection is up.
    let mut encoder = match new_video_encoder(codec, format, settings.bitrate_bps) {
        Ok(encoder) => encoder,
        Err(error) => {
            let _ = to_writer.blocking_send(PumpMessage::Failed(format!(
                "the {codec} encoder could not start: {error}"
            )));
            return;
        }
    };
    if !gate.wait_open() {
        return;
    }
    let nominal = frame_duration(format.fps);
    let live = source.is_live();
    let mut pacer = Pacer::new(nominal);
    let mut first = true;
    let mut previous_capture: Option<Instant> = None;
    while !gate.is_closed() {
        if !live {
            pacer.wait();
        }
        let frame = match source.capture() {
            Ok(frame) => frame,
            Err(error) => {
                let _ = to_writer
                    .blocking_send(PumpMessage::Failed(format!("the camera failed: {error}")));
                return;
            }
        };
        let captured = Instant::now();
        // A live camera sets its own pace; its frames last as long as it took to deliver them.
        let duration = match previous_capture {
            Some(previous) if live => captured.saturating_duration_since(previous),
            _ => nominal,
        };
        previous_capture = Some(captured);
        let force_keyframe = first || keyframe_wanted.swap(false, Ordering::Relaxed);
        let encoding = Instant::now();
        let encoded = encoder.encode(&frame, force_keyframe);
        if let Ok(access_unit) = &encoded {
            ENCODE_TOTALS.frame(encoding.elapsed(), !access_unit.is_empty());
        }
        let access_unit = match encoded {
            Ok(access_unit) => access_unit,
            Err(error) => {
                let _ = to_writer.blocking_send(PumpMessage::Failed(format!(
                    "the {codec} encoder failed: {error}"
                )));
                return;
            }
        };
        if access_unit.is_empty() {
            // The encoder skipped this frame (rate control); ask again next time if needed.
            if force_keyframe {
                keyframe_wanted.store(true, Ordering::Relaxed);
            }
            continue;
        }
        first = false;
        let message = PumpMessage::Sample {
            data: access_unit,
            captured,
            duration,
        };
        if to_writer.blocking_send(message).is_err() {
            return;
        }
    }
}

async fn listen_for_keyframe_requests(
    track: Arc<webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample>,
    keyframe_wanted: Arc<AtomicBool>,
    counters: Arc<LiveCallStats>,
) {
    while let Some(event) = track.poll().await {
        if let TrackLocalEvent::OnRtcpPacket(packets) = event
            && packets
                .iter()
                .any(|packet| is_keyframe_request(packet.as_ref()))
        {
            tracing::debug!("keyframe requested by the remote side");
            LiveCallStats::add(&counters.keyframe_requests);
            keyframe_wanted.store(true, Ordering::Relaxed);
        }
    }
}
