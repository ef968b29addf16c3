//! Turns the peer connection's callbacks into `PeerEvent`s: trickled candidates, connected,
//! ICE lost, closed; and routes the remote audio track to the audio receiver.

use super::audio_receiver::OpusPackets;
use super::event::PeerEvent;
use super::gate::MediaGate;
use doorbell_protocol::IceCandidate;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

/// Local candidates are held back until the answer is built: the ones already in its SDP are
/// not trickled, the rest are.
#[derive(Default)]
struct Trickle {
    answered: bool,
    /// The answer's first m-line (`a=mid`); with BUNDLE every candidate belongs to it.
    mid: String,
    pending: Vec<String>,
    gathering_complete: bool,
    end_sent: bool,
}

/// ICE connectivity watch: `generation` changes on every state change, so a timer started on
/// `disconnected` knows whether the connection came back meanwhile.
#[derive(Default)]
struct IceWatch {
    generation: u64,
}

/// State shared by the event handler, its timers and tasks, and `CallPeer`.
pub(crate) struct CallShared {
    events: mpsc::UnboundedSender<PeerEvent>,
    runtime: tokio::runtime::Handle,
    ice_lost_timeout: Duration,
    gate: MediaGate,
    gathering_complete: watch::Sender<bool>,
    trickle: Mutex<Trickle>,
    ice: Mutex<IceWatch>,
    connected_reported: AtomicBool,
    lost_reported: AtomicBool,
    closed_reported: AtomicBool,
    /// Set by `CallPeer::close`: what follows is our own doing, not news for the call flow.
    closing: AtomicBool,
    audio_packets: Mutex<Option<OpusPackets>>,
    track_tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CallShared {
    pub fn new(
        events: mpsc::UnboundedSender<PeerEvent>,
        ice_lost_timeout: Duration,
        gate: MediaGate,
        audio_packets: OpusPackets,
    ) -> Arc<Self> {
        Arc::new(Self {
            events,
            runtime: tokio::runtime::Handle::current(),
            ice_lost_timeout,
            gate,
            gathering_complete: watch::Sender::new(false),
            trickle: Mutex::new(Trickle::default()),
            ice: Mutex::new(IceWatch::default()),
            connected_reported: AtomicBool::new(false),
            lost_reported: AtomicBool::new(false),
            closed_reported: AtomicBool::new(false),
            closing: AtomicBool::new(false),
            audio_packets: Mutex::new(Some(audio_packets)),
            track_tasks: Mutex::new(Vec::new()),
        })
    }

    fn send(&self, event: PeerEvent) {
        if !self.closing.load(Ordering::Relaxed) {
            let _ = self.events.send(event);
        }
    }

    pub fn gathering_complete(&self) -> watch::Receiver<bool> {
        self.gathering_complete.subscribe()
    }

    /// Called once the answer SDP is final: from now on every new candidate is trickled, and
    /// so is every candidate found meanwhile that the SDP does not carry.
    pub fn answer_built(&self, answer_sdp: &str, mid: String) {
        let mut trickle = lock(&self.trickle);
        trickle.answered = true;
        trickle.mid = mid;
        for candidate in std::mem::take(&mut trickle.pending) {
            if !answer_sdp.contains(&candidate) {
                self.send(PeerEvent::LocalCandidate(Some(to_protocol(
                    candidate,
                    &trickle.mid,
                ))));
            }
        }
        if trickle.gathering_complete && !trickle.end_sent {
            trickle.end_sent = true;
            self.send(PeerEvent::LocalCandidate(None));
        }
    }

    pub fn begin_close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.gate.close();
        // The receiver thread ends once every packet sender is gone.
        lock(&self.audio_packets).take();
        for task in lock(&self.track_tasks).drain(..) {
            task.abort();
        }
    }

    fn report_ice_lost(&self) {
        if !self.lost_reported.swap(true, Ordering::Relaxed) {
            tracing::info!("ICE connectivity lost");
            self.send(PeerEvent::IceLost);
        }
    }

    fn on_ice_state(self: &Arc<Self>, state: RTCIceConnectionState) {
        let generation = {
            let mut ice = lock(&self.ice);
            ice.generation += 1;
            ice.generation
        };
        match state {
            RTCIceConnectionState::Disconnected => {
                let shared = Arc::clone(self);
                let bound = self.ice_lost_timeout;
                self.runtime.spawn(async move {
                    tokio::time::sleep(bound).await;
                    if lock(&shared.ice).generation == generation {
                        shared.report_ice_lost();
                    }
                });
            }
            RTCIceConnectionState::Failed => self.report_ice_lost(),
            _ => {}
        }
    }
}

fn to_protocol(candidate: String, mid: &str) -> IceCandidate {
    IceCandidate {
        candidate,
        sdp_mid: Some(mid.to_owned()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    }
}

/// The handler given to the peer connection; all state lives in [`CallShared`].
pub(crate) struct CallEventHandler(pub Arc<CallShared>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for CallEventHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        let candidate = match event.candidate.to_json() {
            Ok(init) => init.candidate,
            Err(error) => {
                tracing::debug!(%error, "skipped a local candidate that cannot be signalled");
                return;
            }
        };
        tracing::debug!(candidate = %event.candidate, "local ICE candidate");
        let mut trickle = lock(&self.0.trickle);
        if trickle.answered {
            self.0.send(PeerEvent::LocalCandidate(Some(to_protocol(
                candidate,
                &trickle.mid,
            ))));
        } else {
            trickle.pending.push(candidate);
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state != RTCIceGatheringState::Complete {
            return;
        }
        tracing::debug!("ICE gathering complete");
        {
            let mut trickle = lock(&self.0.trickle);
            trickle.gathering_complete = true;
            if trickle.answered && !trickle.end_sent {
                trickle.end_sent = true;
                self.0.send(PeerEvent::LocalCandidate(None));
            }
        }
        self.0.gathering_complete.send_replace(true);
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        tracing::debug!(%state, "ICE connection state");
        self.0.on_ice_state(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        tracing::debug!(%state, "peer connection state");
        match state {
            RTCPeerConnectionState::Connected
                if !self.0.connected_reported.swap(true, Ordering::Relaxed) =>
            {
                tracing::info!("media connected");
                self.0.gate.open();
                self.0.send(PeerEvent::MediaConnected);
            }
            RTCPeerConnectionState::Failed => self.0.report_ice_lost(),
            RTCPeerConnectionState::Closed
                if !self.0.closed_reported.swap(true, Ordering::Relaxed) =>
            {
                self.0.send(PeerEvent::Closed);
            }
            _ => {}
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let kind = track.kind().await;
        let packets = if kind == RtpCodecKind::Audio {
            lock(&self.0.audio_packets).clone()
        } else {
            None
        };
        tracing::debug!(%kind, "remote track");
        let task = self.0.runtime.spawn(read_remote_track(track, packets));
        lock(&self.0.track_tasks).push(task);
    }
}

/// Reads a remote track to its end; audio goes to the receiver, anything else is drained
/// (the agent shows no video).
async fn read_remote_track(track: Arc<dyn TrackRemote>, mut packets: Option<OpusPackets>) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                if let Some(to_receiver) = &packets
                    && !packet.payload.is_empty()
                    && !to_receiver.push(packet.payload.to_vec())
                {
                    packets = None;
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}
