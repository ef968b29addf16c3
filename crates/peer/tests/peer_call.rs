//! The agent's WebRTC peer against a Rust offerer standing in for the browser.
//!
//! The offerer is built with the same `webrtc` crate and behaves like the owner's page: it
//! offers audio sendrecv (sending its own tone), video recvonly and a data channel, BUNDLEd,
//! with the browser's codec list. It runs on its own tokio runtime so that a test can make it
//! vanish without a goodbye (shutting the runtime down drops its sockets silently).
//!
//! Loopback only, ephemeral ports. Waits are bounded only so that a broken build fails instead
//! of hanging; nothing asserts how fast anything happens.

use bytes::Bytes;
use doorbell_media::{
    AudioSink, FRAME_SAMPLES, H264Decoder, MediaError, OpusDecoder, OpusEncoder, TestPattern, Tone,
    VideoFormat, VideoFrame, VideoSource, rms_dbfs,
};
use doorbell_peer::{CallMedia, CallPeer, CallStats, PeerConfig, PeerError, PeerEvent};
use doorbell_protocol::{IceCandidate, SdpType, SessionDescription};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtcp::payload_feedbacks::full_intra_request::{FirEntry, FullIntraRequest};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, Registry, register_default_interceptors,
};

/// Guards every wait so a broken build fails instead of hanging. Not a performance bound.
const PATIENCE: Duration = Duration::from_secs(30);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    match tokio::time::timeout(PATIENCE, future).await {
        Ok(value) => value,
        Err(_) => panic!("gave up waiting for {what}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The offerer (the browser's side of the wire)
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct OffererState {
    connected: AtomicBool,
    local_candidates: Mutex<Vec<RTCIceCandidateInit>>,
    gathering_complete: AtomicBool,
    video_track: Mutex<Option<Arc<dyn TrackRemote>>>,
    video_ssrc: AtomicU64,
    video_frames_decoded: AtomicU64,
    video_keyframes: AtomicU64,
    video_decode_errors: AtomicU64,
    video_sizes: Mutex<Vec<(u32, u32)>>,
    /// The offer accepts VP8 only (else the browser's whole list, H.264 chosen).
    vp8: AtomicBool,
    audio_frames: AtomicU64,
    audio_frames_nonsilent: AtomicU64,
}

struct OffererHandler {
    state: Arc<OffererState>,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for OffererHandler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            self.state.local_candidates.lock().unwrap().push(init);
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            self.state.gathering_complete.store(true, Ordering::SeqCst);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        if state == RTCPeerConnectionState::Connected {
            self.state.connected.store(true, Ordering::SeqCst);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let state = Arc::clone(&self.state);
        match track.kind().await {
            RtpCodecKind::Video => {
                if let Some(ssrc) = track.ssrcs().await.first() {
                    state.video_ssrc.store(u64::from(*ssrc), Ordering::SeqCst);
                }
                *state.video_track.lock().unwrap() = Some(Arc::clone(&track));
                self.runtime.spawn(receive_video(track, state));
            }
            _ => {
                self.runtime.spawn(receive_audio(track, state));
            }
        }
    }
}

/// Depacketizes VP8 and counts frames and keyframes, reading a keyframe's size from its header
/// (RFC 6386 §9.1).
async fn receive_vp8(track: Arc<dyn TrackRemote>, state: Arc<OffererState>) {
    let mut depacketizer = Vp8Packet::default();
    let mut frame: Vec<u8> = Vec::new();
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        match depacketizer.depacketize(&packet.payload) {
            Ok(part) => frame.extend_from_slice(&part),
            Err(_) => {
                state.video_decode_errors.fetch_add(1, Ordering::SeqCst);
                frame.clear();
                continue;
            }
        }
        if !packet.header.marker {
            continue;
        }
        let whole = std::mem::take(&mut frame);
        if whole.first().is_some_and(|b| b & 1 == 0) && whole.len() >= 10 {
            state.video_keyframes.fetch_add(1, Ordering::SeqCst);
            let width = u32::from(u16::from_le_bytes([whole[6], whole[7]]) & 0x3fff);
            let height = u32::from(u16::from_le_bytes([whole[8], whole[9]]) & 0x3fff);
            state.video_sizes.lock().unwrap().push((width, height));
        }
        state.video_frames_decoded.fetch_add(1, Ordering::SeqCst);
    }
}

/// Depacketizes H.264, decodes each access unit like a browser would, and counts.
async fn receive_video(track: Arc<dyn TrackRemote>, state: Arc<OffererState>) {
    if state.vp8.load(Ordering::SeqCst) {
        return receive_vp8(track, state).await;
    }
    let mut depacketizer = H264Packet::default();
    let mut decoder = H264Decoder::new().unwrap();
    let mut access_unit: Vec<u8> = Vec::new();
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        match depacketizer.depacketize(&packet.payload) {
            Ok(nals) => access_unit.extend_from_slice(&nals),
            Err(_) => {
                state.video_decode_errors.fetch_add(1, Ordering::SeqCst);
                access_unit.clear();
                continue;
            }
        }
        if !packet.header.marker {
            continue;
        }
        let unit = std::mem::take(&mut access_unit);
        if doorbell_media::is_keyframe(&unit) {
            state.video_keyframes.fetch_add(1, Ordering::SeqCst);
        }
        match decoder.decode(&unit) {
            Ok(Some(frame)) => {
                state
                    .video_sizes
                    .lock()
                    .unwrap()
                    .push((frame.width, frame.height));
                state.video_frames_decoded.fetch_add(1, Ordering::SeqCst);
            }
            Ok(None) => {}
            Err(_) => {
                state.video_decode_errors.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

async fn receive_audio(track: Arc<dyn TrackRemote>, state: Arc<OffererState>) {
    let mut decoder = OpusDecoder::new().unwrap();
    while let Some(event) = track.poll().await {
        let TrackRemoteEvent::OnRtpPacket(packet) = event else {
            continue;
        };
        if let Ok(pcm) = decoder.decode(&packet.payload) {
            state.audio_frames.fetch_add(1, Ordering::SeqCst);
            if rms_dbfs(&pcm) > -50.0 {
                state.audio_frames_nonsilent.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

/// Sends a 20 ms Opus tone packet every 20 ms once connected, like a browser's microphone.
async fn send_tone(track: Arc<TrackLocalStaticSample>, ssrc: u32, pc: Arc<dyn PeerConnection>) {
    let mut encoder = OpusEncoder::new(32_000).unwrap();
    let mut tone = Tone::new(660.0);
    let mut pcm = [0_i16; FRAME_SAMPLES];
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut payload_type = None;
    loop {
        ticker.tick().await;
        if payload_type.is_none() {
            for sender in pc.get_senders().await {
                if let Ok(parameters) = sender.get_parameters().await
                    && let Some(codec) = parameters
                        .rtp_parameters
                        .codecs
                        .iter()
                        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("audio/opus"))
                {
                    payload_type = Some(codec.payload_type);
                }
            }
        }
        let Some(payload_type) = payload_type else {
            continue;
        };
        doorbell_media::AudioSource::read(&mut tone, &mut pcm).unwrap();
        let packet = encoder.encode(&pcm).unwrap();
        let sample = Sample {
            data: Bytes::from(packet),
            duration: Duration::from_millis(20),
            ..Sample::new(Instant::now())
        };
        // Fails until the track is bound (not yet connected); a browser would not send then either.
        let _ = track.write_sample(ssrc, payload_type, &sample, &[]).await;
    }
}

struct Offerer {
    pc: Arc<dyn PeerConnection>,
    state: Arc<OffererState>,
    /// The offerer lives on its own runtime so a test can make it vanish.
    runtime: Option<tokio::runtime::Runtime>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OfferStyle {
    /// Like the lab's page: the offer is sent after gathering completed, with every candidate.
    Complete,
    /// Like our page: the offer carries no candidates; they are trickled.
    Trickle,
    /// A complete offer for audio only (a page that does not want video).
    AudioOnly,
    /// A complete offer whose only video codec is VP8, as Debian's Firefox makes.
    Vp8Only,
}

impl Offerer {
    async fn start(style: OfferStyle) -> (Offerer, SessionDescription) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let state = Arc::new(OffererState::default());
        let (pc, offer) = runtime
            .spawn(build_offerer(Arc::clone(&state), style))
            .await
            .unwrap();
        (
            Offerer {
                pc,
                state,
                runtime: Some(runtime),
            },
            offer,
        )
    }

    async fn apply_answer(&self, answer: &SessionDescription) {
        assert_eq!(answer.kind, SdpType::Answer);
        let answer = RTCSessionDescription::answer(answer.sdp.clone()).unwrap();
        self.pc.set_remote_description(answer).await.unwrap();
    }

    async fn add_candidate(&self, candidate: &IceCandidate) {
        self.pc
            .add_ice_candidate(RTCIceCandidateInit {
                candidate: candidate.candidate.clone(),
                sdp_mid: candidate.sdp_mid.clone(),
                sdp_mline_index: candidate.sdp_mline_index,
                username_fragment: candidate.username_fragment.clone(),
                url: None,
            })
            .await
            .unwrap();
    }

    fn candidates_for_agent(&self) -> Vec<IceCandidate> {
        self.state
            .local_candidates
            .lock()
            .unwrap()
            .iter()
            .map(|init| IceCandidate {
                candidate: init.candidate.clone(),
                sdp_mid: Some("0".to_owned()),
                sdp_mline_index: Some(0),
                username_fragment: None,
            })
            .collect()
    }

    async fn send_keyframe_request(&self, full_intra_request: bool) {
        let track = self.state.video_track.lock().unwrap().clone().unwrap();
        let media_ssrc = self.state.video_ssrc.load(Ordering::SeqCst) as u32;
        let request: Box<dyn rtc::rtcp::Packet> = if full_intra_request {
            Box::new(FullIntraRequest {
                sender_ssrc: 0,
                media_ssrc,
                fir: vec![FirEntry {
                    ssrc: media_ssrc,
                    sequence_number: 1,
                }],
            })
        } else {
            Box::new(PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            })
        };
        track.write_rtcp(vec![request]).await.unwrap();
    }

    /// Vanishes without a goodbye, like a browser tab on a phone that lost its network.
    fn vanish(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }

    async fn close(self) {
        let _ = self.pc.close().await;
    }
}

impl Drop for Offerer {
    // A runtime cannot be dropped inside another one's async context; shut it down instead.
    fn drop(&mut self) {
        self.vanish();
    }
}

async fn build_offerer(
    state: Arc<OffererState>,
    style: OfferStyle,
) -> (Arc<dyn PeerConnection>, SessionDescription) {
    // The browser's codec list, not just ours: the agent must pick H.264 42e01f from it (or
    // VP8 when that is all there is).
    let mut media_engine = MediaEngine::default();
    if style == OfferStyle::Vp8Only {
        state.vp8.store(true, Ordering::SeqCst);
        for (codec, payload_type, kind) in [
            (
                RTCRtpCodec {
                    mime_type: "audio/opus".to_owned(),
                    clock_rate: 48_000,
                    channels: 2,
                    sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                    rtcp_feedback: vec![],
                },
                109,
                RtpCodecKind::Audio,
            ),
            (
                RTCRtpCodec {
                    mime_type: "video/VP8".to_owned(),
                    clock_rate: 90_000,
                    channels: 0,
                    sdp_fmtp_line: String::new(),
                    rtcp_feedback: vec![],
                },
                120,
                RtpCodecKind::Video,
            ),
        ] {
            media_engine
                .register_codec(
                    RTCRtpCodecParameters {
                        rtp_codec: codec,
                        payload_type,
                    },
                    kind,
                )
                .unwrap();
        }
    } else {
        media_engine.register_default_codecs().unwrap();
    }
    let registry = register_default_interceptors(Registry::new(), &mut media_engine).unwrap();
    let handler = OffererHandler {
        state: Arc::clone(&state),
        runtime: tokio::runtime::Handle::current(),
    };
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(vec!["127.0.0.1:0"])
        .build()
        .await
        .unwrap();
    let pc: Arc<dyn PeerConnection> = Arc::new(pc);

    let audio_ssrc = 0x0a0d_10a0;
    let audio_track = Arc::new(
        TrackLocalStaticSample::new(
            Instant::now(),
            MediaStreamTrack::new(
                "owner".to_owned(),
                "owner-mic".to_owned(),
                "owner-mic".to_owned(),
                RtpCodecKind::Audio,
                vec![RTCRtpEncodingParameters {
                    rtp_coding_parameters: RTCRtpCodingParameters {
                        ssrc: Some(audio_ssrc),
                        ..Default::default()
                    },
                    codec: RTCRtpCodec {
                        mime_type: "audio/opus".to_owned(),
                        clock_rate: 48_000,
                        channels: 2,
                        sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
                        rtcp_feedback: vec![],
                    },
                    ..Default::default()
                }],
            ),
        )
        .unwrap(),
    );
    pc.add_track(Arc::clone(&audio_track) as Arc<dyn TrackLocal>)
        .await
        .unwrap();
    if style != OfferStyle::AudioOnly {
        pc.add_transceiver_from_kind(
            RtpCodecKind::Video,
            Some(RTCRtpTransceiverInit {
                direction: RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    }
    pc.create_data_channel("chat", None).await.unwrap();

    let offer = pc.create_offer(None).await.unwrap();
    let bare_offer_sdp = offer.sdp.clone();
    pc.set_local_description(offer).await.unwrap();
    let sdp = match style {
        OfferStyle::Trickle => bare_offer_sdp,
        OfferStyle::Complete | OfferStyle::AudioOnly | OfferStyle::Vp8Only => {
            while !state.gathering_complete.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            pc.local_description().await.unwrap().sdp
        }
    };
    tokio::spawn(send_tone(audio_track, audio_ssrc, Arc::clone(&pc)));
    (
        pc,
        SessionDescription {
            kind: SdpType::Offer,
            sdp,
        },
    )
}

// ---------------------------------------------------------------------------------------------
// The agent's media for tests
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct SinkRecord {
    samples: AtomicU64,
    loud_writes: AtomicU64,
    finished: AtomicBool,
    dropped: AtomicBool,
}

/// An audio sink that records what it was given (the real sinks write files or sound cards).
struct RecordingSink(Arc<SinkRecord>);

impl AudioSink for RecordingSink {
    fn write(&mut self, pcm: &[i16]) -> Result<(), MediaError> {
        self.0.samples.fetch_add(pcm.len() as u64, Ordering::SeqCst);
        if rms_dbfs(pcm) > -50.0 {
            self.0.loud_writes.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    }
    fn finish(&mut self) -> Result<(), MediaError> {
        self.0.finished.store(true, Ordering::SeqCst);
        Ok(())
    }
}

impl Drop for RecordingSink {
    fn drop(&mut self) {
        self.0.dropped.store(true, Ordering::SeqCst);
    }
}

/// Wraps a video source: reports when it is dropped (camera released) and can be told to fail
/// (camera unplugged).
struct WatchedCamera {
    inner: TestPattern,
    fail_after: Option<u64>,
    captured: u64,
    dropped: Arc<AtomicBool>,
}

impl VideoSource for WatchedCamera {
    fn format(&self) -> VideoFormat {
        self.inner.format()
    }
    fn is_live(&self) -> bool {
        self.inner.is_live()
    }
    fn capture(&mut self) -> Result<VideoFrame, MediaError> {
        self.captured += 1;
        if self.fail_after.is_some_and(|limit| self.captured > limit) {
            return Err(MediaError::InvalidFrame(
                "the test camera was unplugged".into(),
            ));
        }
        self.inner.capture()
    }
}

impl Drop for WatchedCamera {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

const SMALL: VideoFormat = VideoFormat {
    width: 320,
    height: 240,
    fps: 30,
};

fn config() -> PeerConfig {
    PeerConfig {
        ice_hosts: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
        video: SMALL,
        video_bitrate_bps: 300_000,
        ice_lost_timeout: Duration::from_millis(500),
        ..PeerConfig::default()
    }
}

struct AgentMedia {
    media: CallMedia,
    sink: Arc<SinkRecord>,
    camera_dropped: Arc<AtomicBool>,
}

fn agent_media(camera_fails_after: Option<u64>) -> AgentMedia {
    let sink = Arc::new(SinkRecord::default());
    let camera_dropped = Arc::new(AtomicBool::new(false));
    let camera = WatchedCamera {
        inner: TestPattern::new(SMALL).unwrap(),
        fail_after: camera_fails_after,
        captured: 0,
        dropped: Arc::clone(&camera_dropped),
    };
    AgentMedia {
        media: CallMedia {
            video: Some(Box::new(camera)),
            audio_in: Box::new(Tone::new(440.0)),
            audio_out: Box::new(RecordingSink(Arc::clone(&sink))),
        },
        sink,
        camera_dropped,
    }
}

async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    within(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

async fn next_event(events: &mut mpsc::UnboundedReceiver<PeerEvent>, what: &str) -> PeerEvent {
    within(what, events.recv())
        .await
        .unwrap_or_else(|| panic!("event stream ended while waiting for {what}"))
}

/// Waits for an event matching `wanted`; passes trickled agent candidates to `forward_to`
/// meanwhile (as signaling would).
async fn wait_for(
    events: &mut mpsc::UnboundedReceiver<PeerEvent>,
    forward_to: Option<&Offerer>,
    what: &str,
    wanted: impl Fn(&PeerEvent) -> bool,
) -> Vec<PeerEvent> {
    let mut seen = Vec::new();
    loop {
        let event = next_event(events, what).await;
        if let (PeerEvent::LocalCandidate(Some(candidate)), Some(offerer)) = (&event, forward_to) {
            offerer.add_candidate(candidate).await;
        }
        let done = wanted(&event);
        seen.push(event);
        if done {
            return seen;
        }
    }
}

fn candidate_lines(sdp: &str) -> usize {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .count()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_carries_video_and_audio_both_ways_and_answers_keyframe_requests() {
    let (offerer, offer) = Offerer::start(OfferStyle::Complete).await;
    let AgentMedia {
        media,
        sink,
        camera_dropped,
    } = agent_media(None);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &offer, media, events_tx)
        .await
        .unwrap();

    // The answer is complete (the lab's page ignores trickled candidates) and is what Chrome
    // accepts: H.264 constrained baseline with packetization-mode 1 and its feedback, Opus, and
    // one stream for both tracks.
    let sdp = &answer.sdp;
    assert!(
        candidate_lines(sdp) > 0,
        "no candidates in the answer:\n{sdp}"
    );
    assert!(
        sdp.contains("a=candidate:") && sdp.contains("127.0.0.1"),
        "{sdp}"
    );
    assert!(sdp.contains("profile-level-id=42e01f"), "{sdp}");
    assert!(sdp.contains("packetization-mode=1"), "{sdp}");
    assert!(sdp.contains("nack pli") && sdp.contains("ccm fir"), "{sdp}");
    assert!(sdp.to_lowercase().contains("opus/48000/2"), "{sdp}");
    assert!(sdp.contains("a=group:BUNDLE"), "{sdp}");
    let msid_streams: std::collections::BTreeSet<&str> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=msid:"))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert_eq!(
        msid_streams.into_iter().collect::<Vec<_>>(),
        vec!["doorbell"],
        "audio and video must share one stream:\n{sdp}"
    );
    assert_eq!(
        sdp.lines().filter(|l| l.starts_with("a=msid:")).count(),
        2,
        "{sdp}"
    );

    offerer.apply_answer(&answer).await;
    let seen = wait_for(&mut events, Some(&offerer), "MediaConnected", |e| {
        matches!(e, PeerEvent::MediaConnected { .. })
    })
    .await;
    assert_eq!(
        seen.last(),
        Some(&PeerEvent::MediaConnected {
            ice: Some("host".into())
        }),
        "on loopback the selected pair is host to host"
    );

    // Video arrives and decodes at the configured size.
    let state = Arc::clone(&offerer.state);
    until("15 decoded video frames", || {
        state.video_frames_decoded.load(Ordering::SeqCst) >= 15
    })
    .await;
    assert!(
        state
            .video_sizes
            .lock()
            .unwrap()
            .iter()
            .all(|size| *size == (320, 240)),
        "decoded sizes: {:?}",
        state.video_sizes.lock().unwrap()
    );
    assert!(state.video_keyframes.load(Ordering::SeqCst) >= 1);

    // A PLI, then a FIR, from the offerer is each answered with a fresh keyframe.
    for (round, full_intra_request) in [(1, false), (2, true)] {
        let keyframes_before = state.video_keyframes.load(Ordering::SeqCst);
        offerer.send_keyframe_request(full_intra_request).await;
        until("the agent to count the keyframe request", || {
            peer.stats().keyframe_requests >= round
        })
        .await;
        until("a keyframe after the request", || {
            state.video_keyframes.load(Ordering::SeqCst) > keyframes_before
        })
        .await;
    }

    // The owner's tone reached the agent's sink, and the agent's tone reached the owner.
    until("non-silent audio at the agent", || {
        peer.stats().audio_frames_nonsilent >= 10
    })
    .await;
    assert!(sink.loud_writes.load(Ordering::SeqCst) >= 10);
    until("non-silent audio at the owner", || {
        state.audio_frames_nonsilent.load(Ordering::SeqCst) >= 10
    })
    .await;
    assert_eq!(state.video_decode_errors.load(Ordering::SeqCst), 0);

    // close() releases everything and reports what was sent and received.
    let stats: CallStats = peer.close().await;
    assert!(stats.video_frames_sent >= 15, "{stats:?}");
    assert!(stats.audio_frames_sent > 0, "{stats:?}");
    assert!(stats.audio_frames_received >= stats.audio_frames_nonsilent);
    assert!(stats.audio_frames_nonsilent >= 10, "{stats:?}");
    assert!(camera_dropped.load(Ordering::SeqCst), "camera not released");
    assert!(sink.finished.load(Ordering::SeqCst), "sink not finished");
    assert!(sink.dropped.load(Ordering::SeqCst), "sink not released");
    assert_eq!(
        sink.samples.load(Ordering::SeqCst),
        stats.audio_frames_received * FRAME_SAMPLES as u64,
        "every received frame went to the sink"
    );
    // Nothing after close is news for the call flow.
    while let Ok(event) = events.try_recv() {
        assert!(
            matches!(event, PeerEvent::LocalCandidate(_)),
            "unexpected event before close: {event:?}"
        );
    }
    offerer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn candidates_trickled_by_the_page_are_used() {
    let (offerer, offer) = Offerer::start(OfferStyle::Trickle).await;
    assert_eq!(
        candidate_lines(&offer.sdp),
        0,
        "the offer must carry no candidates"
    );
    // The page's candidates arrive before the offer is applied: the call flow holds them and
    // adds them once the peer exists.
    until("the offerer's candidates", || {
        offerer.state.gathering_complete.load(Ordering::SeqCst)
    })
    .await;
    let early = offerer.candidates_for_agent();
    assert!(!early.is_empty());

    let AgentMedia { media, .. } = agent_media(None);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &offer, media, events_tx)
        .await
        .unwrap();
    // The offerer never learns the agent's candidates, so it has no pair to check: the only
    // way to connect is the agent checking the candidates it was given by trickle (the
    // offerer then learns the agent's address from those checks).
    let blind_answer = SessionDescription {
        kind: SdpType::Answer,
        sdp: answer
            .sdp
            .split_inclusive('\n')
            .filter(|line| !line.starts_with("a=candidate:"))
            .collect(),
    };
    assert_eq!(candidate_lines(&blind_answer.sdp), 0);
    offerer.apply_answer(&blind_answer).await;
    // End of candidates, in both spellings, changes nothing.
    peer.add_remote_candidate(None).await.unwrap();
    peer.add_remote_candidate(Some(IceCandidate {
        candidate: String::new(),
        sdp_mid: Some("0".into()),
        sdp_mline_index: Some(0),
        username_fragment: None,
    }))
    .await
    .unwrap();
    // Garbage is refused with an error, not a panic.
    let refused = peer
        .add_remote_candidate(Some(IceCandidate {
            candidate: "candidate:this is not a candidate".into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        }))
        .await;
    assert!(
        matches!(refused, Err(PeerError::BadCandidate(_))),
        "{refused:?}"
    );
    for candidate in &early {
        peer.add_remote_candidate(Some(candidate.clone()))
            .await
            .unwrap();
    }

    wait_for(&mut events, None, "MediaConnected", |e| {
        matches!(e, PeerEvent::MediaConnected { .. })
    })
    .await;
    let state = Arc::clone(&offerer.state);
    until("decoded video", || {
        state.video_frames_decoded.load(Ordering::SeqCst) >= 5
    })
    .await;
    peer.close().await;
    offerer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_offerer_ends_the_call_with_ice_lost() {
    let (mut offerer, offer) = Offerer::start(OfferStyle::Complete).await;
    let AgentMedia { media, .. } = agent_media(None);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &offer, media, events_tx)
        .await
        .unwrap();
    offerer.apply_answer(&answer).await;
    wait_for(&mut events, Some(&offerer), "MediaConnected", |e| {
        matches!(e, PeerEvent::MediaConnected { .. })
    })
    .await;
    let state = Arc::clone(&offerer.state);
    until("decoded video", || {
        state.video_frames_decoded.load(Ordering::SeqCst) >= 3
    })
    .await;

    offerer.vanish();
    loop {
        match next_event(&mut events, "IceLost").await {
            PeerEvent::IceLost => break,
            PeerEvent::LocalCandidate(_) => {}
            other => panic!("expected IceLost, got {other:?}"),
        }
    }
    let stats = peer.close().await;
    assert!(stats.video_frames_sent >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_camera_is_reported_and_audio_goes_on() {
    let (offerer, offer) = Offerer::start(OfferStyle::Complete).await;
    let AgentMedia {
        media,
        camera_dropped,
        ..
    } = agent_media(Some(10));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &offer, media, events_tx)
        .await
        .unwrap();
    offerer.apply_answer(&answer).await;
    let seen = wait_for(
        &mut events,
        Some(&offerer),
        "the camera's MediaError",
        |e| matches!(e, PeerEvent::MediaError(_)),
    )
    .await;
    assert!(
        seen.iter()
            .any(|e| matches!(e, PeerEvent::MediaConnected { .. }))
    );
    let Some(PeerEvent::MediaError(message)) = seen.last() else {
        unreachable!()
    };
    assert!(message.contains("camera"), "{message}");
    // The camera thread ended and released it; the call is still up and audio still flows.
    until("the camera to be released", || {
        camera_dropped.load(Ordering::SeqCst)
    })
    .await;
    let sent = peer.stats().video_frames_sent;
    assert!(sent <= 10, "{sent} frames from a camera that delivered 10");
    let state = Arc::clone(&offerer.state);
    let before = state.audio_frames_nonsilent.load(Ordering::SeqCst);
    until("audio after the camera failed", || {
        state.audio_frames_nonsilent.load(Ordering::SeqCst) >= before + 10
    })
    .await;
    let heard_before = peer.stats().audio_frames_received;
    until("owner audio after the camera failed", || {
        peer.stats().audio_frames_received >= heard_before + 10
    })
    .await;
    peer.close().await;
    offerer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_offers_are_refused_and_release_the_media() {
    let AgentMedia {
        media,
        sink,
        camera_dropped,
    } = agent_media(None);
    let (events_tx, _events) = mpsc::unbounded_channel();
    let not_sdp = SessionDescription {
        kind: SdpType::Offer,
        sdp: "this is not SDP".into(),
    };
    let result = CallPeer::answer(&config(), &not_sdp, media, events_tx.clone()).await;
    assert!(
        matches!(result, Err(PeerError::BadOffer(_))),
        "{:?}",
        result.err()
    );
    assert!(camera_dropped.load(Ordering::SeqCst));
    assert!(sink.dropped.load(Ordering::SeqCst));

    let AgentMedia { media, .. } = agent_media(None);
    let answer_instead = SessionDescription {
        kind: SdpType::Answer,
        sdp: "v=0\r\n".into(),
    };
    let result = CallPeer::answer(&config(), &answer_instead, media, events_tx.clone()).await;
    assert!(matches!(result, Err(PeerError::BadOffer(_))));

    let AgentMedia { media, .. } = agent_media(None);
    let no_hosts = PeerConfig {
        ice_hosts: vec![],
        ..config()
    };
    let (_offerer, offer) = Offerer::start(OfferStyle::Complete).await;
    let result = CallPeer::answer(&no_hosts, &offer, media, events_tx.clone()).await;
    assert!(matches!(result, Err(PeerError::Config(_))));

    let AgentMedia { media, .. } = agent_media(None);
    let silly_bitrate = PeerConfig {
        video_bitrate_bps: 1,
        ..config()
    };
    let result = CallPeer::answer(&silly_bitrate, &offer, media, events_tx.clone()).await;
    assert!(matches!(result, Err(PeerError::Config(_))));

    let AgentMedia { media, .. } = agent_media(None);
    let odd_size = PeerConfig {
        video: VideoFormat {
            width: 321,
            height: 240,
            fps: 30,
        },
        ..config()
    };
    let result = CallPeer::answer(&odd_size, &offer, media, events_tx).await;
    assert!(matches!(result, Err(PeerError::Media(_))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_closing_the_connection_ends_the_call() {
    let (offerer, offer) = Offerer::start(OfferStyle::Complete).await;
    let AgentMedia { media, .. } = agent_media(None);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &offer, media, events_tx)
        .await
        .unwrap();
    offerer.apply_answer(&answer).await;
    wait_for(&mut events, Some(&offerer), "MediaConnected", |e| {
        matches!(e, PeerEvent::MediaConnected { .. })
    })
    .await;
    offerer.pc.close().await.unwrap();
    // webrtc 0.21 does not act on DTLS close_notify, so this is ICE noticing the silence.
    wait_for(&mut events, Some(&offerer), "Closed or IceLost", |e| {
        matches!(e, PeerEvent::Closed | PeerEvent::IceLost)
    })
    .await;
    peer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_dropped_without_close_still_releases_its_media() {
    let (offerer, offer) = Offerer::start(OfferStyle::Complete).await;
    let AgentMedia {
        media,
        sink,
        camera_dropped,
    } = agent_media(None);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &offer, media, events_tx)
        .await
        .unwrap();
    offerer.apply_answer(&answer).await;
    wait_for(&mut events, Some(&offerer), "MediaConnected", |e| {
        matches!(e, PeerEvent::MediaConnected { .. })
    })
    .await;
    until("owner audio at the agent", || {
        peer.stats().audio_frames_received > 0
    })
    .await;
    drop(peer);
    until("the camera to be released", || {
        camera_dropped.load(Ordering::SeqCst)
    })
    .await;
    until("the sink to be finished and released", || {
        sink.finished.load(Ordering::SeqCst) && sink.dropped.load(Ordering::SeqCst)
    })
    .await;
    offerer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audio_only_offer_gets_an_audio_call_and_the_camera_is_left_alone() {
    let (offerer, offer) = Offerer::start(OfferStyle::AudioOnly).await;
    assert!(!offer.sdp.contains("m=video"));
    let AgentMedia {
        media,
        camera_dropped,
        ..
    } = agent_media(None);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &offer, media, events_tx)
        .await
        .unwrap();
    assert!(!answer.sdp.contains("m=video"), "{}", answer.sdp);
    // Not offered, so not opened: the camera is released before the call starts.
    assert!(camera_dropped.load(Ordering::SeqCst));
    offerer.apply_answer(&answer).await;
    wait_for(&mut events, Some(&offerer), "MediaConnected", |e| {
        matches!(e, PeerEvent::MediaConnected { .. })
    })
    .await;
    let state = Arc::clone(&offerer.state);
    until("audio at the owner", || {
        state.audio_frames_nonsilent.load(Ordering::SeqCst) >= 10
    })
    .await;
    until("audio at the agent", || {
        peer.stats().audio_frames_nonsilent >= 10
    })
    .await;
    let stats = peer.close().await;
    assert_eq!(stats.video_frames_sent, 0);
    offerer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_abandoned_midway_releases_the_media() {
    // A STUN server that never answers keeps the agent gathering; the call flow gives up on
    // the call meanwhile and drops the half-built answer (as it does on `bye` during `invite`).
    let silent_stun = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let stun_port = silent_stun.local_addr().unwrap().port();
    let patient = PeerConfig {
        ice_servers: vec![doorbell_peer::IceServer {
            urls: vec![format!("stun:127.0.0.1:{stun_port}")],
            username: None,
            credential: None,
        }],
        gather_timeout: Duration::from_secs(600),
        ..config()
    };
    let (_offerer, offer) = Offerer::start(OfferStyle::Complete).await;
    let AgentMedia {
        media,
        sink,
        camera_dropped,
    } = agent_media(None);
    let (events_tx, _events) = mpsc::unbounded_channel();
    let answering =
        tokio::spawn(async move { CallPeer::answer(&patient, &offer, media, events_tx).await });
    let mut request = [0_u8; 1500];
    within(
        "the agent's STUN request",
        silent_stun.recv_from(&mut request),
    )
    .await
    .unwrap();
    answering.abort();
    assert!(answering.await.unwrap_err().is_cancelled());
    until("the camera to be released", || {
        camera_dropped.load(Ordering::SeqCst)
    })
    .await;
    until("the sink to be finished and released", || {
        sink.finished.load(Ordering::SeqCst) && sink.dropped.load(Ordering::SeqCst)
    })
    .await;
}

/// A camera that paces itself, like a V4L2 device: `capture` blocks until the next frame.
struct LiveCamera {
    inner: TestPattern,
    next: Option<Instant>,
}

impl VideoSource for LiveCamera {
    fn format(&self) -> VideoFormat {
        self.inner.format()
    }
    fn is_live(&self) -> bool {
        true
    }
    fn capture(&mut self) -> Result<VideoFrame, MediaError> {
        let interval = self.inner.format().frame_interval();
        let due = self.next.unwrap_or_else(Instant::now);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        self.next = Some(due + interval);
        self.inner.capture()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_camera_paces_itself() {
    let (offerer, offer) = Offerer::start(OfferStyle::Complete).await;
    let AgentMedia { mut media, .. } = agent_media(None);
    media.video = Some(Box::new(LiveCamera {
        inner: TestPattern::new(SMALL).unwrap(),
        next: None,
    }));
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &offer, media, events_tx)
        .await
        .unwrap();
    offerer.apply_answer(&answer).await;
    wait_for(&mut events, Some(&offerer), "MediaConnected", |e| {
        matches!(e, PeerEvent::MediaConnected { .. })
    })
    .await;
    let state = Arc::clone(&offerer.state);
    until("decoded video from the live camera", || {
        state.video_frames_decoded.load(Ordering::SeqCst) >= 10
    })
    .await;
    assert_eq!(state.video_decode_errors.load(Ordering::SeqCst), 0);
    peer.close().await;
    offerer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vp8_only_offer_like_firefox_gets_vp8_video_and_keyframes_on_request() {
    let (offerer, offer) = Offerer::start(OfferStyle::Vp8Only).await;
    assert!(!offer.sdp.contains("H264"), "{}", offer.sdp);
    let AgentMedia { media, .. } = agent_media(None);
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &offer, media, events_tx)
        .await
        .unwrap();
    assert!(answer.sdp.contains("VP8/90000"), "{}", answer.sdp);
    assert!(!answer.sdp.contains("H264"), "{}", answer.sdp);
    offerer.apply_answer(&answer).await;
    wait_for(&mut events, Some(&offerer), "MediaConnected", |e| {
        matches!(e, PeerEvent::MediaConnected { .. })
    })
    .await;
    let state = Arc::clone(&offerer.state);
    until("15 VP8 frames", || {
        state.video_frames_decoded.load(Ordering::SeqCst) >= 15
    })
    .await;
    assert_eq!(state.video_decode_errors.load(Ordering::SeqCst), 0);
    assert_eq!(state.video_sizes.lock().unwrap().first(), Some(&(320, 240)));
    // A keyframe request (PLI) is answered with a VP8 keyframe.
    let before = state.video_keyframes.load(Ordering::SeqCst);
    offerer.send_keyframe_request(false).await;
    until("a keyframe after the PLI", || {
        state.video_keyframes.load(Ordering::SeqCst) > before
    })
    .await;
    peer.close().await;
    offerer.close().await;
}

/// Safari 17 (iOS and macOS) as it offers: H.264 only (High 640c1f first, constrained
/// baseline 42e01f, packetization-mode 0 too) with RTX, RED and ulpfec, and Opus among G.722,
/// PCMU and friends.
fn safari_offer() -> SessionDescription {
    let fingerprint = (0..32)
        .map(|i| format!("{:02X}", i * 7 % 256))
        .collect::<Vec<_>>()
        .join(":");
    let common = format!(
        "c=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:sAfA\r\n\
         a=ice-pwd:safaripassword0123456789\r\na=ice-options:trickle\r\n\
         a=fingerprint:sha-256 {fingerprint}\r\na=setup:actpass\r\n"
    );
    let sdp = format!(
        "v=0\r\no=- 6000000000000000000 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
         a=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS owner\r\n\
         m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n{common}a=mid:0\r\n\
         a=sendrecv\r\na=msid:owner owner-mic\r\na=rtcp-mux\r\n\
         a=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\n\
         a=fmtp:111 minptime=10;useinbandfec=1\r\na=rtpmap:63 red/48000/2\r\n\
         a=fmtp:63 111/111\r\na=rtpmap:9 G722/8000\r\na=rtpmap:0 PCMU/8000\r\n\
         a=rtpmap:8 PCMA/8000\r\na=rtpmap:13 CN/8000\r\n\
         a=rtpmap:110 telephone-event/48000\r\na=rtpmap:126 telephone-event/8000\r\n\
         a=ssrc:1001 cname:safari\r\n\
         m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 100 101 127 125\r\n{common}a=mid:1\r\n\
         a=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\n\
         a=rtpmap:96 H264/90000\r\na=rtcp-fb:96 goog-remb\r\na=rtcp-fb:96 transport-cc\r\n\
         a=rtcp-fb:96 ccm fir\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\n\
         a=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640c1f\r\n\
         a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n\
         a=rtpmap:98 H264/90000\r\na=rtcp-fb:98 goog-remb\r\na=rtcp-fb:98 transport-cc\r\n\
         a=rtcp-fb:98 ccm fir\r\na=rtcp-fb:98 nack\r\na=rtcp-fb:98 nack pli\r\n\
         a=fmtp:98 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n\
         a=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n\
         a=rtpmap:100 H264/90000\r\n\
         a=fmtp:100 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n\
         a=rtpmap:101 rtx/90000\r\na=fmtp:101 apt=100\r\n\
         a=rtpmap:127 red/90000\r\na=rtpmap:125 ulpfec/90000\r\n"
    );
    SessionDescription {
        kind: SdpType::Offer,
        sdp,
    }
}

/// The payload types of the m=`kind` line of `sdp`.
fn payload_types<'a>(sdp: &'a str, kind: &str) -> Vec<&'a str> {
    sdp.lines()
        .find_map(|line| line.strip_prefix(&format!("m={kind} ")))
        .map(|rest| rest.split_whitespace().skip(2).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_safari_offer_is_answered_with_constrained_baseline_h264_and_opus() {
    let AgentMedia { media, .. } = agent_media(None);
    let (events_tx, _events) = mpsc::unbounded_channel();
    let (peer, answer) = CallPeer::answer(&config(), &safari_offer(), media, events_tx)
        .await
        .unwrap();
    let sdp = &answer.sdp;
    // Safari's constrained baseline entry (98), packetization-mode 1; never its High profile
    // (96), which openh264 does not make, nor the mode-0 one (100).
    assert_eq!(payload_types(sdp, "video").first(), Some(&"98"), "{sdp}");
    assert!(!payload_types(sdp, "video").contains(&"96"), "{sdp}");
    assert!(!payload_types(sdp, "video").contains(&"100"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:98 H264/90000"), "{sdp}");
    assert!(sdp.contains("packetization-mode=1"), "{sdp}");
    assert!(!sdp.contains("VP8"), "{sdp}");
    assert!(sdp.contains("a=sendonly"), "the video section sends: {sdp}");
    assert_eq!(payload_types(sdp, "audio").first(), Some(&"111"), "{sdp}");
    assert!(sdp.contains("a=rtpmap:111 opus/48000/2"), "{sdp}");
    assert!(sdp.contains("a=group:BUNDLE 0 1"), "{sdp}");
    peer.close().await;
}
