//! The remote side's Opus → PCM → audio sink, counting frames and non-silent frames.
//!
//! Decoding and the sink (which may block on a sound card or a file) run on their own thread,
//! fed by the remote track's task through a bounded queue.

use super::stats::LiveCallStats;
use super::thread_join::join_media_thread;
use doorbell_media::{AudioSink, OpusDecoder, rms_dbfs};
use doorbell_protocol::PeerEvent;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use tokio::sync::mpsc::UnboundedSender;

/// A received frame louder than this counts as non-silent (a quiet room is around -60 dBFS,
/// speech at -30..-10 dBFS).
pub const NONSILENT_DBFS: f32 = -50.0;

/// One second of 20 ms packets; beyond that the decoder is hopelessly behind and packets drop.
const QUEUE_DEPTH: usize = 50;

pub(crate) struct AudioReceiver {
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Where the remote track's task puts Opus packets.
#[derive(Clone)]
pub(crate) struct OpusPackets(SyncSender<Vec<u8>>);

impl OpusPackets {
    /// A queue nobody reads (for tests of the parts around it).
    #[cfg(test)]
    pub fn detached() -> Self {
        Self(sync_channel(1).0)
    }

    /// Never blocks the network task: a full queue drops the packet.
    pub fn push(&self, packet: Vec<u8>) -> bool {
        match self.0.try_send(packet) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                tracing::debug!("audio playback is behind; dropped a packet");
                true
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }
}

impl AudioReceiver {
    pub fn start(
        sink: Box<dyn AudioSink>,
        counters: Arc<LiveCallStats>,
        events: UnboundedSender<PeerEvent>,
    ) -> std::io::Result<(Self, OpusPackets)> {
        let (packets, from_track) = sync_channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("doorbell-audio-out".into())
            .spawn(move || decode_and_play(sink, from_track, counters, events))?;
        Ok((
            Self {
                thread: Some(thread),
            },
            OpusPackets(packets),
        ))
    }

    /// Waits until every queued packet was played and the sink finished; call after every
    /// `OpusPackets` was dropped.
    pub async fn stop(mut self) {
        if let Some(thread) = self.thread.take() {
            join_media_thread(thread).await;
        }
    }
}

fn decode_and_play(
    mut sink: Box<dyn AudioSink>,
    from_track: Receiver<Vec<u8>>,
    counters: Arc<LiveCallStats>,
    events: UnboundedSender<PeerEvent>,
) {
    let mut decoder = match OpusDecoder::new() {
        Ok(decoder) => Some(decoder),
        Err(error) => {
            let _ = events.send(PeerEvent::MediaError(format!(
                "audio playback: the Opus decoder could not start: {error}"
            )));
            None
        }
    };
    let mut sink_ok = true;
    let mut bad_packets = 0_u64;
    while let Ok(packet) = from_track.recv() {
        let Some(decoder) = decoder.as_mut() else {
            continue;
        };
        let pcm = match decoder.decode(&packet) {
            Ok(pcm) => pcm,
            Err(error) => {
                bad_packets += 1;
                if bad_packets <= 3 {
                    tracing::debug!(%error, "could not decode an Opus packet");
                }
                continue;
            }
        };
        LiveCallStats::add(&counters.audio_frames_received);
        if rms_dbfs(&pcm) > NONSILENT_DBFS {
            LiveCallStats::add(&counters.audio_frames_nonsilent);
        }
        if sink_ok && let Err(error) = sink.write(&pcm) {
            sink_ok = false;
            tracing::warn!(%error, "audio playback failed; the call goes on without it");
            let _ = events.send(PeerEvent::MediaError(format!(
                "audio playback failed: {error}"
            )));
        }
    }
    if sink_ok && let Err(error) = sink.finish() {
        tracing::warn!(%error, "could not finish the audio sink");
    }
}
