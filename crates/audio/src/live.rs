//! The processing during a call. The speaker and the microphone run on their own threads; the
//! speaker's thread hands each frame it plays to the microphone's thread through a bounded
//! queue, and the microphone's thread — the only owner of the [`Processor`] — feeds those to
//! the echo canceller before each frame it captures. One owner, no lock on the audio path.

use crate::{AudioSettings, FRAME_10MS, Processor};
use doorbell_media::FRAME_SAMPLES;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::time::Duration;

/// Speaker frames waiting for the microphone's thread: 500 ms. The module's own render buffer
/// absorbs the jitter of frames that arrive from the network in bursts; beyond this the
/// microphone has stopped reading and frames are dropped.
const FAR_END_QUEUE: usize = 50;

/// What the two threads share besides the frames.
#[derive(Default)]
struct Shared {
    /// The speaker's own buffer, in ms, as its device last reported it.
    speaker_latency_ms: AtomicU32,
}

/// The speaker's side: give it every block handed to the speaker.
pub struct SpeakerTap {
    to_mic: Option<SyncSender<[i16; FRAME_10MS]>>,
    /// Samples of a frame not yet complete (blocks need not be whole frames).
    partial: Vec<i16>,
    shared: Arc<Shared>,
}

/// The microphone's side: processes each captured block in place.
pub struct MicProcessing {
    processor: Processor,
    from_speaker: Option<Receiver<[i16; FRAME_10MS]>>,
    shared: Arc<Shared>,
}

/// The two ends for one call. With echo cancellation off the speaker's frames are not needed
/// and the tap does nothing.
pub fn live(settings: &AudioSettings) -> (SpeakerTap, MicProcessing) {
    let processor = Processor::new(settings);
    let shared = Arc::new(Shared::default());
    let (to_mic, from_speaker) = match processor.wants_far_end() {
        true => {
            let (to_mic, from_speaker) = sync_channel(FAR_END_QUEUE);
            (Some(to_mic), Some(from_speaker))
        }
        false => (None, None),
    };
    (
        SpeakerTap {
            to_mic,
            partial: Vec::with_capacity(FRAME_10MS),
            shared: Arc::clone(&shared),
        },
        MicProcessing {
            processor,
            from_speaker,
            shared,
        },
    )
}

fn millis(latency: Option<Duration>) -> u32 {
    latency.map_or(0, |latency| {
        u32::try_from(latency.as_millis()).unwrap_or(u32::MAX)
    })
}

impl SpeakerTap {
    /// `pcm` is about to be played; `latency` is the speaker's buffer as its device reports it.
    pub fn played(&mut self, pcm: &[i16], latency: Option<Duration>) {
        let Some(to_mic) = &self.to_mic else {
            return;
        };
        self.shared
            .speaker_latency_ms
            .store(millis(latency), Ordering::Relaxed);
        let mut rest = pcm;
        while !rest.is_empty() {
            let take = (FRAME_10MS - self.partial.len()).min(rest.len());
            self.partial.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.partial.len() < FRAME_10MS {
                break;
            }
            let mut frame = [0_i16; FRAME_10MS];
            frame.copy_from_slice(&self.partial);
            self.partial.clear();
            match to_mic.try_send(frame) {
                // The microphone fell behind: the canceller misses this frame, as it would
                // miss a frame the sound card dropped.
                Ok(()) | Err(TrySendError::Full(_)) => {}
                // The microphone's side is gone (no microphone in this call): stop handing.
                Err(TrySendError::Disconnected(_)) => {
                    self.to_mic = None;
                    return;
                }
            }
        }
    }
}

impl MicProcessing {
    /// Processes one captured 20 ms block in place; `latency` is the microphone's buffer as its
    /// device reports it.
    pub fn process(&mut self, pcm: &mut [i16; FRAME_SAMPLES], latency: Option<Duration>) {
        if let Some(from_speaker) = &self.from_speaker {
            loop {
                match from_speaker.try_recv() {
                    Ok(far) => self.processor.render(&far),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.from_speaker = None;
                        break;
                    }
                }
            }
            let speaker = self.shared.speaker_latency_ms.load(Ordering::Relaxed);
            self.processor
                .set_delay_ms(speaker.saturating_add(millis(latency)));
        }
        for half in pcm.chunks_exact_mut(FRAME_10MS) {
            if let Ok(frame) = <&mut [i16; FRAME_10MS]>::try_from(half) {
                self.processor.capture(frame);
            }
        }
    }
}
