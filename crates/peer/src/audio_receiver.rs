//! The remote side's Opus → PCM → audio sink, counting frames and non-silent frames.
//!
//! Decoding and the sink (which may block on a sound card or a file) run on their own thread,
//! fed by the remote track's task through a bounded queue.

use super::packet_loss::{Arrival, LossDetector};
use super::stats::LiveCallStats;
use super::thread_join::join_media_thread;
use doorbell_audio::SpeakerTap;
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

    /// Queues a packet from the network in its place: the packets lost before it are
    /// concealed, a late or duplicate one is dropped. false once the receiver is gone.
    pub fn deliver(&self, loss: &mut LossDetector, sequence: u16, payload: &[u8]) -> bool {
        if payload.is_empty() {
            return true;
        }
        match loss.arrived(sequence) {
            // An empty packet asks the decoder for 20 ms of concealment.
            Arrival::Play { conceal } => {
                (0..conceal).all(|_| self.push(Vec::new())) && self.push(payload.to_vec())
            }
            Arrival::Drop => true,
        }
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
    /// `tap` receives what the speaker plays, for the microphone's echo canceller.
    pub fn start(
        sink: Box<dyn AudioSink>,
        tap: SpeakerTap,
        counters: Arc<LiveCallStats>,
        events: UnboundedSender<PeerEvent>,
    ) -> std::io::Result<(Self, OpusPackets)> {
        let (packets, from_track) = sync_channel(QUEUE_DEPTH);
        let thread = std::thread::Builder::new()
            .name("doorbell-audio-out".into())
            .spawn(move || decode_and_play(sink, tap, from_track, counters, events))?;
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
    mut tap: SpeakerTap,
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
        let concealed = packet.is_empty();
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
        if !concealed {
            LiveCallStats::add(&counters.audio_frames_received);
        }
        if !concealed && rms_dbfs(&pcm) > NONSILENT_DBFS {
            LiveCallStats::add(&counters.audio_frames_nonsilent);
        }
        if sink_ok {
            tap.played(&pcm, sink.latency());
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

#[cfg(test)]
mod tests {
    use super::*;
    use doorbell_audio::echo_room::Noise;
    use doorbell_audio::{AudioSettings, live};
    use doorbell_media::{AudioSource, FRAME_SAMPLES, MediaError, OpusEncoder, Tone};
    use std::sync::Mutex;
    use std::sync::mpsc;
    use std::time::Duration;

    /// Records what it plays and says after every write.
    struct Speaker {
        played: Arc<Mutex<Vec<i16>>>,
        wrote: mpsc::Sender<()>,
    }

    impl AudioSink for Speaker {
        fn write(&mut self, pcm: &[i16]) -> Result<(), MediaError> {
            self.played
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend_from_slice(pcm);
            let _ = self.wrote.send(());
            Ok(())
        }
        fn finish(&mut self) -> Result<(), MediaError> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn ten_percent_random_loss_is_concealed_without_gaps_or_a_shorter_stream() {
        let played = Arc::new(Mutex::new(Vec::new()));
        let (wrote, writes) = mpsc::channel();
        let speaker = Speaker {
            played: Arc::clone(&played),
            wrote,
        };
        let (tap, _mic) = live(&AudioSettings::OFF);
        let (events, _events) = tokio::sync::mpsc::unbounded_channel();
        let (receiver, packets) = AudioReceiver::start(
            Box::new(speaker),
            tap,
            Arc::new(LiveCallStats::default()),
            events,
        )
        .unwrap();
        let mut encoder = OpusEncoder::new(32_000).unwrap();
        let mut tone = Tone::new(440.0);
        let mut coin = Noise::new(42);
        let mut loss = LossDetector::default();
        let mut pcm = [0_i16; FRAME_SAMPLES];
        let (total, mut lost, mut pending) = (250_u16, 0, 0);
        for sequence in 0..total {
            tone.read(&mut pcm).unwrap();
            let packet = encoder.encode(&pcm).unwrap();
            pending += 1;
            // 10 % lost at random (the first and last arrive: a loss is seen from both sides).
            if coin.next_f32() < -0.8 && sequence != 0 && sequence != total - 1 {
                lost += 1;
                continue;
            }
            assert!(packets.deliver(&mut loss, sequence, &packet));
            // Paced by the speaker, as the network would be: the queue never overflows.
            for _ in 0..pending {
                writes.recv_timeout(Duration::from_secs(5)).unwrap();
            }
            pending = 0;
        }
        drop(packets);
        receiver.stop().await;
        assert!((15..=40).contains(&lost), "{lost} of {total} lost");
        let played = played.lock().unwrap().clone();
        assert_eq!(
            played.len(),
            usize::from(total) * FRAME_SAMPLES,
            "every lost packet's 20 ms was filled in"
        );
        let quietest = played
            .chunks_exact(FRAME_SAMPLES)
            .skip(1)
            .map(rms_dbfs)
            .fold(f32::MAX, f32::min);
        // Opus fades a concealment out over losses in a row (two in a row here reach about
        // -45 dBFS from the tone's -15); silence would be a gap.
        assert!(
            quietest > NONSILENT_DBFS,
            "a 20 ms block dropped to {quietest:.1} dBFS: a gap the owner hears"
        );
    }
}
