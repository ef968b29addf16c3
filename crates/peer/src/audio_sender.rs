//! Microphone (or tone) → Opus → audio track, one 20 ms packet at a time.

use super::gate::MediaGate;
use super::pacer::Pacer;
use super::sample_writer::{PumpMessage, TrackTarget, write_samples};
use super::stats::LiveCallStats;
use super::thread_join::join_media_thread;
use doorbell_audio::MicProcessing;
use doorbell_media::{AudioSource, FRAME_SAMPLES, OpusApplication, OpusEncoder, SAMPLE_RATE};
use doorbell_protocol::PeerEvent;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Packets in flight between the encoder thread and the track (100 ms).
const QUEUE_DEPTH: usize = 5;

fn packet_duration() -> Duration {
    Duration::from_nanos(FRAME_SAMPLES as u64 * 1_000_000_000 / u64::from(SAMPLE_RATE))
}

/// The call's microphone and the processing its blocks go through before Opus.
pub(crate) struct Microphone {
    pub source: Box<dyn AudioSource>,
    pub processing: MicProcessing,
}

/// The running parts of the audio sender; `stop` (after closing the gate) releases the
/// microphone and the encoder.
pub(crate) struct AudioSender {
    thread: Option<std::thread::JoinHandle<()>>,
    writer: tokio::task::JoinHandle<()>,
}

impl AudioSender {
    pub fn start(
        microphone: Microphone,
        bitrate_bps: u32,
        target: TrackTarget,
        gate: MediaGate,
        counters: Arc<LiveCallStats>,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> std::io::Result<Self> {
        let (to_writer, from_thread) = mpsc::channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("doorbell-audio-in".into())
            .spawn(move || capture_and_encode(microphone, bitrate_bps, gate, to_writer))?;
        let writer = tokio::spawn(write_samples(
            "audio",
            target,
            from_thread,
            counters,
            |counters| &counters.audio_frames_sent,
            events,
        ));
        Ok(Self {
            thread: Some(thread),
            writer,
        })
    }

    pub async fn stop(mut self) {
        if let Some(thread) = self.thread.take() {
            join_media_thread(thread).await;
        }
        let _ = (&mut self.writer).await;
    }
}

fn capture_and_encode(
    microphone: Microphone,
    bitrate_bps: u32,
    gate: MediaGate,
    to_writer: mpsc::Sender<PumpMessage>,
) {
    if !gate.wait_open() {
        return;
    }
    let application = OpusApplication::for_bitrate(bitrate_bps);
    let mut encoder = match OpusEncoder::with_application(bitrate_bps, application) {
        Ok(encoder) => encoder,
        Err(error) => {
            let _ = to_writer.blocking_send(PumpMessage::Failed(format!(
                "the Opus encoder could not start: {error}"
            )));
            return;
        }
    };
    let Microphone {
        mut source,
        mut processing,
    } = microphone;
    let duration = packet_duration();
    let live = source.is_live();
    let mut pacer = Pacer::new(duration);
    let mut pcm = [0_i16; FRAME_SAMPLES];
    while !gate.is_closed() {
        if !live {
            pacer.wait();
        }
        if let Err(error) = source.read(&mut pcm) {
            let _ = to_writer.blocking_send(PumpMessage::Failed(format!(
                "the microphone failed: {error}"
            )));
            return;
        }
        let captured = Instant::now();
        processing.process(&mut pcm, source.latency());
        let packet = match encoder.encode(&pcm) {
            Ok(packet) => packet,
            Err(error) => {
                let _ = to_writer.blocking_send(PumpMessage::Failed(format!(
                    "the Opus encoder failed: {error}"
                )));
                return;
            }
        };
        let message = PumpMessage::Sample {
            data: packet,
            captured,
            duration,
        };
        if to_writer.blocking_send(message).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_packet_is_20_ms() {
        assert_eq!(
            super::packet_duration(),
            std::time::Duration::from_millis(20)
        );
    }
}
