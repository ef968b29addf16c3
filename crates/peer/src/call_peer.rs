//! One call's WebRTC peer: answers the browser's offer, pumps media, closes cleanly.

use super::audio_receiver::AudioReceiver;
use super::audio_sender::{AudioSender, Microphone};
use super::call_events::{CallEventHandler, CallShared};
use super::codecs::{media_engine_and_interceptors, opus_codec, video_codec};
use super::config::PeerConfig;
use super::error::PeerError;
use super::gate::MediaGate;
use super::sample_writer::TrackTarget;
use super::sdp::{
    choose_video_codec, first_mid, offered_video_codecs, sends, with_end_of_candidates,
};
use super::stats::LiveCallStats;
use super::video_pump::{VideoPump, VideoSettings};
use doorbell_audio::AudioSettings;
use doorbell_media::{
    AudioSink, AudioSource, MAX_AUDIO_BITRATE_BPS, MAX_VIDEO_BITRATE_BPS, MIN_AUDIO_BITRATE_BPS,
    MIN_VIDEO_BITRATE_BPS, VideoCodec, VideoSource,
};
use doorbell_protocol::IceTransportPolicy;
use doorbell_protocol::{CallStats, PeerEvent};
use doorbell_protocol::{IceCandidate, SdpType, SessionDescription};
use rtc::ice::mdns::MulticastDnsMode;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCIceTransportPolicy;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, RTCConfigurationBuilder, RTCIceCandidateInit,
    RTCIceServer, RTCSessionDescription, SettingEngineBuilder,
};
use webrtc::rtp_transceiver::RtpSender;

/// The agent's audio and video share this stream id, so the browser sees them as one
/// `MediaStream` (the lab's page plays `event.streams[0]`).
const STREAM_ID: &str = "doorbell";
/// Time between ICE connectivity checks while connecting (the webrtc crate's default is 200 ms).
const ICE_CHECK_INTERVAL: Duration = Duration::from_millis(20);
/// Checks per candidate pair before it is given up: 1.4 s at ICE_CHECK_INTERVAL, the default.
const ICE_MAX_BINDING_REQUESTS: u16 = 70;

/// The media of one call. Everything here is dropped (camera and microphone released) when the
/// call closes.
pub struct CallMedia {
    /// `None`: an audio-only call (or the camera could not be opened).
    pub video: Option<Box<dyn VideoSource>>,
    pub audio_in: Box<dyn AudioSource>,
    pub audio_out: Box<dyn AudioSink>,
}

/// One call's WebRTC peer connection and its media pumps.
pub struct CallPeer {
    connection: Arc<dyn PeerConnection>,
    /// Set by `close`; otherwise `Drop` closes the connection in the background.
    closed: bool,
    shared: Arc<CallShared>,
    counters: Arc<LiveCallStats>,
    video: Option<VideoPump>,
    audio_sender: Option<AudioSender>,
    audio_receiver: Option<AudioReceiver>,
}

/// A local track and the sender carrying it.
struct LocalTrack {
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    sender: Arc<dyn RtpSender>,
}

/// The camera of a call and the codec chosen for it (`None` when the offer accepts none we
/// can send).
struct OutgoingVideo {
    source: Option<Box<dyn VideoSource>>,
    codec: Option<VideoCodec>,
}

/// The browser's offer as webrtc-rs takes it; anything else is a bad offer.
fn remote_offer(offer: &SessionDescription) -> Result<RTCSessionDescription, PeerError> {
    if offer.kind != SdpType::Offer {
        return Err(PeerError::BadOffer(
            "expected an SDP of type \"offer\"".to_owned(),
        ));
    }
    RTCSessionDescription::offer(offer.sdp.clone())
        .map_err(|error| PeerError::BadOffer(error.to_string()))
}

impl CallPeer {
    /// Creates the peer connection, applies the browser's offer, adds one media stream holding
    /// a video track in the codec chosen from the offer (H.264 constrained baseline 42e01f with
    /// packetization-mode=1, or VP8; `PeerConfig::video_codec`) and an Opus track,
    /// waits for ICE gathering for at most `gather_timeout` and returns the answer SDP carrying
    /// every candidate found so far (the lab's page ignores trickled candidates). Later
    /// candidates go out as [`PeerEvent::LocalCandidate`].
    ///
    /// Media starts flowing when the connection is up ([`PeerEvent::MediaConnected`]).
    pub async fn answer(
        config: &PeerConfig,
        offer: &SessionDescription,
        media: CallMedia,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<(CallPeer, SessionDescription), PeerError> {
        let remote_offer = remote_offer(offer)?;
        validate(config)?;
        // The one video codec of this call: what the browser offers, by our preference.
        let codec = choose_video_codec(&offered_video_codecs(&offer.sdp), config.video_codec);

        let counters = Arc::new(LiveCallStats::default());
        let gate = MediaGate::new();
        let CallMedia {
            video,
            audio_in,
            audio_out,
        } = media;
        // Echo cancellation and noise suppression are for a microphone in a place; a test
        // signal (the tone) goes out as generated.
        let processing = match audio_in.is_acoustic() {
            true => config.audio_processing,
            false => AudioSettings::OFF,
        };
        let (speaker_tap, mic_processing) = doorbell_audio::live(&processing);
        let audio_in = Microphone {
            source: audio_in,
            processing: mic_processing,
        };
        let (audio_receiver, audio_packets) = AudioReceiver::start(
            audio_out,
            speaker_tap,
            Arc::clone(&counters),
            events.clone(),
        )
        .map_err(|error| PeerError::Config(format!("cannot start a thread: {error}")))?;
        let shared = CallShared::new(
            events.clone(),
            config.ice_lost_timeout,
            gate.clone(),
            audio_packets,
        );

        let built = build_connection(config, &shared, codec).await;
        let connection = match built {
            Ok(connection) => {
                shared.set_connection(&connection);
                connection
            }
            Err(error) => {
                shared.begin_close();
                audio_receiver.stop().await;
                return Err(error);
            }
        };
        let mut peer = CallPeer {
            connection,
            closed: false,
            shared,
            counters,
            video: None,
            audio_sender: None,
            audio_receiver: Some(audio_receiver),
        };
        match peer
            .negotiate(
                config,
                remote_offer,
                OutgoingVideo {
                    source: video,
                    codec,
                },
                audio_in,
                gate,
                events,
            )
            .await
        {
            Ok(answer) => Ok((peer, answer)),
            Err(error) => {
                peer.close().await;
                Err(error)
            }
        }
    }

    async fn negotiate(
        &mut self,
        config: &PeerConfig,
        offer: RTCSessionDescription,
        video: OutgoingVideo,
        audio_in: Microphone,
        gate: MediaGate,
        events: mpsc::UnboundedSender<PeerEvent>,
    ) -> Result<SessionDescription, PeerError> {
        let video_track = match (video.source, video.codec) {
            (Some(source), Some(codec)) => Some((
                add_local_track(&*self.connection, RtpCodecKind::Video, video_codec(codec)).await?,
                source,
                codec,
            )),
            (Some(_), None) => {
                tracing::warn!(
                    "the offer accepts no video this doorbell can send (H.264 constrained \
                     baseline with packetization-mode 1, or VP8); the call goes on without video"
                );
                None
            }
            (None, _) => None,
        };
        let audio_track =
            add_local_track(&*self.connection, RtpCodecKind::Audio, opus_codec()).await?;

        self.apply_offer(offer).await?;

        let mut gathered = self.shared.gathering_complete();
        let complete = tokio::time::timeout(config.gather_timeout, gathered.wait_for(|done| *done))
            .await
            .is_ok();
        if !complete {
            tracing::debug!(
                timeout = ?config.gather_timeout,
                "ICE gathering not complete; answering with what was found, trickling the rest"
            );
        }
        let local_sdp = self.local_sdp().await?;
        let answer_sdp = match complete {
            true => with_end_of_candidates(&local_sdp),
            false => local_sdp,
        };
        let mid = first_mid(&answer_sdp).unwrap_or("0").to_owned();
        self.shared.answer_built(&answer_sdp, mid);

        if let Some((local, source, codec)) = video_track {
            let payload_type = if sends(&answer_sdp, "video") {
                negotiated_payload_type(&local.sender, codec.mime_type()).await
            } else {
                None
            };
            match payload_type {
                Some(payload_type) => {
                    // The camera's own format: it may not deliver what was asked.
                    let format = source.format();
                    let pump = VideoPump::start(
                        source,
                        VideoSettings {
                            codec,
                            format,
                            bitrate_bps: config.video_bitrate_bps,
                        },
                        TrackTarget {
                            track: local.track,
                            ssrc: local.ssrc,
                            payload_type,
                        },
                        gate.clone(),
                        Arc::clone(&self.counters),
                        events.clone(),
                    )
                    .map_err(|error| {
                        PeerError::Config(format!("cannot start a thread: {error}"))
                    })?;
                    self.video = Some(pump);
                }
                None => tracing::warn!(
                    %codec,
                    "the answer sends no video in the chosen codec; the call goes on without video"
                ),
            }
        }
        let payload_type = if sends(&answer_sdp, "audio") {
            negotiated_payload_type(&audio_track.sender, "audio/opus").await
        } else {
            None
        };
        match payload_type {
            Some(payload_type) => {
                let sender = AudioSender::start(
                    audio_in,
                    config.audio_bitrate_bps,
                    TrackTarget {
                        track: audio_track.track,
                        ssrc: audio_track.ssrc,
                        payload_type,
                    },
                    gate,
                    Arc::clone(&self.counters),
                    events,
                )
                .map_err(|error| PeerError::Config(format!("cannot start a thread: {error}")))?;
                self.audio_sender = Some(sender);
            }
            None => tracing::warn!("the offer accepts no Opus audio; the call goes on without it"),
        }

        Ok(SessionDescription {
            kind: SdpType::Answer,
            sdp: answer_sdp,
        })
    }

    /// Applies the browser's new offer during the call, an ICE restart (new ICE credentials:
    /// the browser's network changed or its path broke), and returns the answer at once. The
    /// agent gathers afresh on new sockets, so a NAT that forgot its mapping gets a new one;
    /// the new candidates are trickled ([`PeerEvent::LocalCandidate`]). Media keeps its tracks.
    pub async fn restart_ice(
        &self,
        offer: &SessionDescription,
    ) -> Result<SessionDescription, PeerError> {
        self.apply_offer(remote_offer(offer)?).await?;
        Ok(SessionDescription {
            kind: SdpType::Answer,
            sdp: self.local_sdp().await?,
        })
    }

    /// Applies a remote offer and sets the answer to it as the local description.
    async fn apply_offer(&self, offer: RTCSessionDescription) -> Result<(), PeerError> {
        self.connection
            .set_remote_description(offer)
            .await
            .map_err(|error| PeerError::BadOffer(error.to_string()))?;
        let answer = self
            .connection
            .create_answer(None)
            .await
            .map_err(|error| PeerError::Answer(error.to_string()))?;
        self.connection
            .set_local_description(answer)
            .await
            .map_err(|error| PeerError::Answer(error.to_string()))
    }

    /// The local description's SDP (the answer, with the candidates found so far).
    async fn local_sdp(&self) -> Result<String, PeerError> {
        Ok(self
            .connection
            .local_description()
            .await
            .ok_or_else(|| PeerError::Answer("no local description after setting it".to_owned()))?
            .sdp)
    }

    /// Adds a candidate trickled by the browser. `None` or an empty candidate (end of
    /// candidates) is accepted and changes nothing.
    pub async fn add_remote_candidate(
        &self,
        candidate: Option<IceCandidate>,
    ) -> Result<(), PeerError> {
        let Some(candidate) = candidate.filter(|c| !c.is_end_of_candidates()) else {
            return Ok(());
        };
        self.connection
            .add_ice_candidate(RTCIceCandidateInit {
                candidate: candidate.candidate,
                sdp_mid: candidate.sdp_mid,
                sdp_mline_index: candidate.sdp_mline_index,
                username_fragment: candidate.username_fragment,
                url: None,
            })
            .await
            .map_err(|error| PeerError::BadCandidate(error.to_string()))
    }

    pub fn stats(&self) -> CallStats {
        self.counters.snapshot()
    }

    /// Stops the media pumps, closes the connection, releases camera, microphone and encoders
    /// (their threads have ended when this returns) and finishes the audio sink.
    pub async fn close(mut self) -> CallStats {
        self.closed = true;
        self.shared.begin_close();
        if let Some(video) = self.video.take() {
            video.stop().await;
        }
        if let Some(audio) = self.audio_sender.take() {
            audio.stop().await;
        }
        if let Err(error) = self.connection.close().await {
            tracing::debug!(%error, "closing the peer connection");
        }
        if let Some(receiver) = self.audio_receiver.take() {
            receiver.stop().await;
        }
        self.counters.snapshot()
    }
}

impl std::fmt::Debug for CallPeer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallPeer")
            .field("stats", &self.stats())
            .field("video", &self.video.is_some())
            .field("audio_sender", &self.audio_sender.is_some())
            .finish_non_exhaustive()
    }
}

impl Drop for CallPeer {
    /// Without `close`: the media threads still stop (and release camera and microphone) on
    /// their own and the connection is closed in the background (webrtc 0.21 would otherwise
    /// keep its driver running), but nobody waits for any of it.
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        self.shared.begin_close();
        let connection = Arc::clone(&self.connection);
        self.shared.spawn(async move {
            let _ = connection.close().await;
        });
    }
}

/// Refuses settings the encoders would refuse later, so the call flow hears it at once rather
/// than as a call without video.
fn validate(config: &PeerConfig) -> Result<(), PeerError> {
    config.video.validate()?;
    let video_range = MIN_VIDEO_BITRATE_BPS..=MAX_VIDEO_BITRATE_BPS;
    if !video_range.contains(&config.video_bitrate_bps) {
        return Err(PeerError::Config(format!(
            "video bitrate {} bit/s is out of range; use {MIN_VIDEO_BITRATE_BPS}..={MAX_VIDEO_BITRATE_BPS}",
            config.video_bitrate_bps
        )));
    }
    let audio_range = MIN_AUDIO_BITRATE_BPS..=MAX_AUDIO_BITRATE_BPS;
    if !audio_range.contains(&config.audio_bitrate_bps) {
        return Err(PeerError::Config(format!(
            "audio bitrate {} bit/s is out of range; use {MIN_AUDIO_BITRATE_BPS}..={MAX_AUDIO_BITRATE_BPS}",
            config.audio_bitrate_bps
        )));
    }
    if config.ice_hosts.is_empty() {
        return Err(PeerError::Config(
            "no ICE host address: give at least one (e.g. 127.0.0.1 or the LAN address)".to_owned(),
        ));
    }
    Ok(())
}

async fn build_connection(
    config: &PeerConfig,
    shared: &Arc<CallShared>,
    codec: Option<VideoCodec>,
) -> Result<Arc<dyn PeerConnection>, PeerError> {
    // Without a usable video codec the engine still needs one; H.264 is never sent then.
    let codec = codec.unwrap_or(VideoCodec::H264);
    match try_build_connection(config, shared, codec, true).await {
        Ok(connection) => Ok(connection),
        Err(error) => {
            // The mDNS socket (UDP 5353, multicast group 224.0.0.251) cannot be had on a host
            // without a multicast route; a call without it only loses the browser's `.local`
            // candidates, so try once more without.
            tracing::warn!(
                %error,
                "could not set up the peer connection; retrying without mDNS (the browser's \
                 .local candidates will not resolve)"
            );
            try_build_connection(config, shared, codec, false).await
        }
    }
}

async fn try_build_connection(
    config: &PeerConfig,
    shared: &Arc<CallShared>,
    codec: VideoCodec,
    with_mdns: bool,
) -> Result<Arc<dyn PeerConnection>, PeerError> {
    let (media_engine, registry) = media_engine_and_interceptors(codec)?;
    let ice_servers = config
        .ice_servers
        .iter()
        .map(|server| RTCIceServer {
            urls: server.urls.clone(),
            username: server.username.clone().unwrap_or_default(),
            credential: server.credential.clone().unwrap_or_default(),
        })
        .collect();
    let udp_addrs: Vec<SocketAddr> = config
        .ice_hosts
        .iter()
        .map(|ip| SocketAddr::new(*ip, 0))
        .collect();
    // ICE checks every 20 ms instead of 200 ms, for as long in all (70 attempts = 1.4 s per
    // candidate, as the default). Besides finding the path sooner, this matters after ICE
    // connects: the DTLS ClientHello is queued then but only sent on the core's next timer,
    // which was the next 200 ms check tick – up to 200 ms on every answer (measured 139 ms).
    let mut settings = SettingEngineBuilder::new()
        .with_ice_connection_attempts(Some(ICE_CHECK_INTERVAL), Some(ICE_MAX_BINDING_REQUESTS))
        // An ICE restart (the page's new offer) gathers on fresh sockets: a NAT that forgot
        // our mapping, or a TURN server that no longer knows our 5-tuple, gets a new one.
        .with_discard_local_candidates_during_ice_restart(true);
    if !with_mdns {
        settings = settings.with_multicast_dns_mode(MulticastDnsMode::Disabled);
    }
    let connection = PeerConnectionBuilder::new()
        .with_configuration(
            RTCConfigurationBuilder::new()
                .with_ice_servers(ice_servers)
                .with_ice_transport_policy(match config.ice_transport_policy {
                    IceTransportPolicy::All => RTCIceTransportPolicy::All,
                    IceTransportPolicy::Relay => RTCIceTransportPolicy::Relay,
                })
                .build(),
        )
        .with_setting_engine(settings.build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_handler(Arc::new(CallEventHandler(Arc::clone(shared))))
        .with_udp_addrs(udp_addrs)
        .build()
        .await?;
    Ok(Arc::new(connection))
}

async fn add_local_track(
    connection: &dyn PeerConnection,
    kind: RtpCodecKind,
    codec: RTCRtpCodec,
) -> Result<LocalTrack, PeerError> {
    let ssrc = random_ssrc();
    let track = Arc::new(TrackLocalStaticSample::new(
        Instant::now(),
        MediaStreamTrack::new(
            STREAM_ID.to_owned(),
            format!("doorbell-{kind}"),
            format!("doorbell-{kind}"),
            kind,
            vec![RTCRtpEncodingParameters {
                rtp_coding_parameters: RTCRtpCodingParameters {
                    ssrc: Some(ssrc),
                    ..Default::default()
                },
                codec,
                ..Default::default()
            }],
        ),
    )?);
    let sender = connection
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await?;
    Ok(LocalTrack {
        track,
        ssrc,
        sender,
    })
}

/// The payload type the remote side chose for `mime_type` (Chrome uses its own numbers).
async fn negotiated_payload_type(sender: &Arc<dyn RtpSender>, mime_type: &str) -> Option<u8> {
    let parameters = sender.get_parameters().await.ok()?;
    parameters
        .rtp_parameters
        .codecs
        .iter()
        .find(|codec| codec.rtp_codec.mime_type.eq_ignore_ascii_case(mime_type))
        .map(|codec| codec.payload_type)
}

fn random_ssrc() -> u32 {
    // Any value works for RTP; the randomness only avoids collisions between calls.
    getrandom::u32().unwrap_or_else(|_| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x0d00_4be1, |elapsed| elapsed.subsec_nanos())
    })
}
