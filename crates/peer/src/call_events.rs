//! Turns the peer connection's callbacks into `PeerEvent`s: trickled candidates, connected,
//! ICE lost, closed; and routes the remote audio track to the audio receiver.

use super::audio_receiver::OpusPackets;
use super::gate::MediaGate;
use super::packet_loss::LossDetector;
use doorbell_protocol::IceCandidate;
use doorbell_protocol::PeerEvent;
use rtc::peer_connection::transport::RTCIceCandidateType;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::statistics::StatsSelector;
use rtc::statistics::report::RTCStatsReportEntry;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState,
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
    /// The connection, once built, to read the selected candidate pair at connect. Weak: the
    /// connection owns its handler, which owns this.
    connection: OnceLock<Weak<dyn PeerConnection>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl CallShared {
    pub fn set_connection(&self, connection: &Arc<dyn PeerConnection>) {
        let _ = self.connection.set(Arc::downgrade(connection));
    }

    /// The kind of the selected candidate pair: `relay` if either end relays, else
    /// `srflx`/`prflx` if either is a NAT mapping, else `host`.
    async fn selected_pair_kind(&self) -> Option<String> {
        let connection = self.connection.get()?.upgrade()?;
        let report = connection
            .get_stats(std::time::Instant::now(), StatsSelector::None)
            .await;
        let pair_id = &report.transport()?.selected_candidate_pair_id;
        let RTCStatsReportEntry::IceCandidatePair(pair) = report.get(pair_id)? else {
            return None;
        };
        // The pair names its candidates by their own ids; the report may key them with a
        // `RTCLocalIceCandidate_`/`RTCRemoteIceCandidate_` prefix (webrtc 0.21 does).
        let kind_of = |id: &str| {
            report.iter().find_map(|entry| match entry {
                RTCStatsReportEntry::LocalCandidate(c)
                | RTCStatsReportEntry::RemoteCandidate(c)
                    if entry.id() == id || entry.id().ends_with(&format!("_{id}")) =>
                {
                    Some(c.candidate_type)
                }
                _ => None,
            })
        };
        // webrtc 0.21 lists no remote candidate it learnt from a check (prflx); ours is enough
        // to tell a relay, and the remote's kind is added when it is known.
        let mut kinds = vec![kind_of(&pair.local_candidate_id)?];
        kinds.extend(kind_of(&pair.remote_candidate_id));
        let kind = if kinds.contains(&RTCIceCandidateType::Relay) {
            "relay"
        } else if kinds.contains(&RTCIceCandidateType::Srflx) {
            "srflx"
        } else if kinds.contains(&RTCIceCandidateType::Prflx) {
            "prflx"
        } else {
            "host"
        };
        Some(kind.to_owned())
    }

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
            connection: OnceLock::new(),
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

    fn local_candidate(&self, candidate: String) {
        let mut trickle = lock(&self.trickle);
        if trickle.answered {
            self.send(PeerEvent::LocalCandidate(Some(to_protocol(
                candidate,
                &trickle.mid,
            ))));
        } else {
            trickle.pending.push(candidate);
        }
    }

    fn gathering_done(&self) {
        {
            let mut trickle = lock(&self.trickle);
            trickle.gathering_complete = true;
            if trickle.answered && !trickle.end_sent {
                trickle.end_sent = true;
                self.send(PeerEvent::LocalCandidate(None));
            }
        }
        self.gathering_complete.send_replace(true);
    }

    pub fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.runtime.spawn(task);
    }

    pub fn begin_close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.gate.close();
        // The receiver thread ends once every packet sender is gone.
        lock(&self.audio_packets).take();
        // Under the tasks lock, so on_track either sees `closing` or has pushed its task.
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
        match event.candidate.to_json() {
            Ok(init) => {
                tracing::debug!(candidate = %event.candidate, "local ICE candidate");
                self.0.local_candidate(init.candidate);
            }
            Err(error) => {
                tracing::debug!(%error, "skipped a local candidate that cannot be signalled")
            }
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            tracing::debug!("ICE gathering complete");
            self.0.gathering_done();
        }
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
                self.0.gate.open();
                // Read the pair off the handler: the stats query goes through the connection's
                // own loop, which is running this handler.
                let shared = Arc::clone(&self.0);
                self.0.runtime.spawn(async move {
                    let ice = shared.selected_pair_kind().await;
                    tracing::info!(ice = ice.as_deref().unwrap_or("unknown"), "media connected");
                    shared.send(PeerEvent::MediaConnected { ice });
                });
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
        let mut tasks = lock(&self.0.track_tasks);
        if self.0.closing.load(Ordering::Relaxed) {
            // close() already swept the tasks; this one must not keep the receiver alive.
            task.abort();
        } else {
            tasks.push(task);
        }
    }
}

/// Reads a remote track to its end; audio goes to the receiver, anything else is drained
/// (the agent shows no video).
async fn read_remote_track(track: Arc<dyn TrackRemote>, mut packets: Option<OpusPackets>) {
    let mut loss = LossDetector::default();
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                if let Some(to_receiver) = &packets
                    && !to_receiver.deliver(
                        &mut loss,
                        packet.header.sequence_number,
                        &packet.payload,
                    )
                {
                    packets = None;
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new_shared() -> (Arc<CallShared>, mpsc::UnboundedReceiver<PeerEvent>) {
        let (events, received) = mpsc::unbounded_channel();
        let shared = CallShared::new(
            events,
            Duration::from_secs(5),
            MediaGate::new(),
            OpusPackets::detached(),
        );
        (shared, received)
    }

    fn drain(events: &mut mpsc::UnboundedReceiver<PeerEvent>) -> Vec<PeerEvent> {
        std::iter::from_fn(|| events.try_recv().ok()).collect()
    }

    fn trickled(candidate: &str) -> PeerEvent {
        PeerEvent::LocalCandidate(Some(IceCandidate {
            candidate: candidate.to_owned(),
            sdp_mid: Some("a0".to_owned()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        }))
    }

    #[tokio::test]
    async fn candidates_missing_from_the_answer_are_trickled_then_end_of_candidates() {
        let (shared, mut events) = new_shared();
        shared.local_candidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host".into());
        shared.local_candidate("candidate:2 1 udp 1 127.0.0.1 5002 typ host".into());
        assert!(drain(&mut events).is_empty(), "nothing before the answer");
        let answer = "a=mid:a0\r\na=candidate:1 1 udp 1 127.0.0.1 5000 typ host\r\n";
        shared.answer_built(answer, "a0".into());
        shared.local_candidate("candidate:3 1 udp 1 127.0.0.1 5004 typ host".into());
        shared.gathering_done();
        shared.gathering_done();
        assert_eq!(
            drain(&mut events),
            vec![
                trickled("candidate:2 1 udp 1 127.0.0.1 5002 typ host"),
                trickled("candidate:3 1 udp 1 127.0.0.1 5004 typ host"),
                PeerEvent::LocalCandidate(None),
            ]
        );
    }

    #[tokio::test]
    async fn gathering_done_before_the_answer_still_ends_the_candidates_once() {
        let (shared, mut events) = new_shared();
        shared.local_candidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host".into());
        shared.gathering_done();
        assert!(*shared.gathering_complete().borrow());
        shared.answer_built("a=candidate:1 1 udp 1 127.0.0.1 5000 typ host", "a0".into());
        assert_eq!(drain(&mut events), vec![PeerEvent::LocalCandidate(None)]);
    }

    #[tokio::test(start_paused = true)]
    async fn disconnected_past_the_bound_is_ice_lost_once() {
        let (shared, mut events) = new_shared();
        shared.on_ice_state(RTCIceConnectionState::Connected);
        shared.on_ice_state(RTCIceConnectionState::Disconnected);
        tokio::time::sleep(Duration::from_millis(4_900)).await;
        assert!(drain(&mut events).is_empty(), "too early");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(drain(&mut events), vec![PeerEvent::IceLost]);
        shared.on_ice_state(RTCIceConnectionState::Failed);
        assert!(drain(&mut events).is_empty(), "reported once");
    }

    #[tokio::test(start_paused = true)]
    async fn reconnecting_within_the_bound_is_not_ice_lost() {
        let (shared, mut events) = new_shared();
        shared.on_ice_state(RTCIceConnectionState::Disconnected);
        tokio::time::sleep(Duration::from_secs(3)).await;
        shared.on_ice_state(RTCIceConnectionState::Connected);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(drain(&mut events).is_empty());
    }

    #[tokio::test]
    async fn failed_is_ice_lost_at_once_and_nothing_is_reported_after_close() {
        let (shared, mut events) = new_shared();
        shared.on_ice_state(RTCIceConnectionState::Failed);
        assert_eq!(drain(&mut events), vec![PeerEvent::IceLost]);

        let (shared, mut events) = new_shared();
        shared.begin_close();
        shared.on_ice_state(RTCIceConnectionState::Failed);
        shared.local_candidate("candidate:1 1 udp 1 127.0.0.1 5000 typ host".into());
        shared.answer_built("", "0".into());
        assert!(drain(&mut events).is_empty());
    }
}
