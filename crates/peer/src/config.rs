//! What a call's peer connection is built from.

use crate::sdp::VideoCodecPreference;
use doorbell_audio::AudioSettings;
use doorbell_media::VideoFormat;
use doorbell_protocol::{IceServer, IceTransportPolicy};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// Settings of one call's WebRTC peer.
#[derive(Debug, Clone)]
pub struct PeerConfig {
    pub ice_servers: Vec<IceServer>,
    /// `Relay`: only TURN-relayed candidates, so neither end learns the other's address.
    pub ice_transport_policy: IceTransportPolicy,
    /// The only host addresses offered as candidates. Each is bound as `ADDR:0`. A concrete
    /// address is needed for loopback; `0.0.0.0` / `::` mean every usable interface at call time
    /// except loopback and link-local (webrtc 0.21 expands the wildcard itself).
    pub ice_hosts: Vec<IpAddr>,
    /// How long `answer` waits for ICE gathering before it answers with the candidates found so
    /// far; later ones are trickled.
    pub gather_timeout: Duration,
    pub video: VideoFormat,
    pub video_bitrate_bps: u32,
    pub audio_bitrate_bps: u32,
    /// ICE disconnected for this long ends the call. The ICE agent itself calls a connection
    /// disconnected after 5 s without traffic, so a vanished browser is noticed after about
    /// 5 s + this.
    pub ice_lost_timeout: Duration,
    /// Which video codec to send when the browser offers both (`--video-codec`).
    pub video_codec: VideoCodecPreference,
    /// The microphone's processing (`[agent.audio]`); a test-signal source skips it.
    pub audio_processing: AudioSettings,
}

impl Default for PeerConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            ice_transport_policy: IceTransportPolicy::All,
            ice_hosts: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
            gather_timeout: Duration::from_secs(1),
            video: VideoFormat {
                width: 640,
                height: 480,
                fps: 30,
            },
            video_bitrate_bps: 1_000_000,
            audio_bitrate_bps: 32_000,
            ice_lost_timeout: Duration::from_secs(5),
            video_codec: VideoCodecPreference::Auto,
            audio_processing: AudioSettings::default(),
        }
    }
}
