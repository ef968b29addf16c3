//! `doorbell agent`: the Raspberry Pi side. Every setting comes from a flag, a `DOORBELL_*`
//! environment variable or the `[agent]` table of the TOML config, in that order
//! (`config::ConfigFile::section` layers them; [`AgentArgs::resolve`] checks them and fills in
//! the defaults).

use crate::agent_io::{OpenAndCapture, SocketIoConnector, WebRtcAnswerer};
use crate::audio_args::AudioArgs;
use crate::duration::parse_duration;
use crate::message_outbox::{Outbox, Recorder};
use crate::reply_player::Replies;
use crate::snapshot_upload::SnapshotUpload;
use clap::Args;
use doorbell_agent::agent_flow::Reconnect;
use doorbell_agent::call_flow::{LiveView, Timeouts};
use doorbell_agent::driver::AgentSettings;
use doorbell_agent::event_sink::{DeviceEvents, EventSink, JsonLines, LogEvents};
use doorbell_agent::indicator::Indicator;
use doorbell_agent::indicator::{DEFAULT_CHIME_PULSE, OutputLineSpec};
use doorbell_agent::metrics::{AgentMetrics, MetricsEvents};
use doorbell_agent::ports::{AgentIo, Messages};
use doorbell_agent::trigger::{self, DeviceTrigger, Trigger};
use doorbell_media::VideoFormat;
use doorbell_notify::{ConsoleNotifier, HomeDevice, Notifier, build_notifiers_with_env};
use doorbell_peer::media_settings::{AudioInput, AudioOutput, MediaSettings, VideoInput};
use doorbell_peer::{IceServer, PeerConfig, VideoCodecPreference};
use doorbell_protocol::limits::{
    MAX_VIDEO_BITRATE_BPS, MAX_VIDEO_FPS, MAX_VIDEO_HEIGHT, MAX_VIDEO_WIDTH, MIN_VIDEO_BITRATE_BPS,
    MIN_VIDEO_HEIGHT, MIN_VIDEO_WIDTH,
};
use doorbell_protocol::wire::EngineIoVersion;
use doorbell_protocol::{Secret, is_internal_address};
use doorbell_signaling::{ServerTrust, SignalingConfig, parse_fingerprint};
use serde::Deserialize;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// The agent's settings: each field is a flag, a `DOORBELL_*` environment variable and a key
/// of the `[agent]` table (see `config.rs` for how they are layered), except the secrets and
/// the one-shot actions, which are flags only.
#[derive(Debug, Clone, Default, Args, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AgentArgs {
    /// The signaling server, e.g. https://door.example.com:8443
    #[arg(long, env = "DOORBELL_SERVER")]
    pub server: Option<String>,
    /// The doorbell token (prefer DOORBELL_TOKEN or --token-file: flags show up in `ps`).
    // Not a key of the file (often world-readable): it names a token file instead.
    #[arg(long, env = "DOORBELL_TOKEN", hide_env_values = true)]
    #[serde(skip)]
    pub token: Option<String>,
    /// A file holding the doorbell token.
    #[arg(long, env = "DOORBELL_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Trust the server certificate(s) in this PEM file (e.g. the server's self-signed cert).
    #[arg(long, env = "DOORBELL_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Trust exactly the server certificate with this SHA-256 fingerprint (printed by the
    /// server at start; hex, colons optional).
    #[arg(long, env = "DOORBELL_SERVER_FINGERPRINT")]
    pub server_fingerprint: Option<String>,
    /// Accept any server certificate. Only for a first test: anyone on the path can listen in.
    // An `Option` so that a `false` from the environment or a flag beats `true` in the file.
    #[arg(
        long,
        env = "DOORBELL_INSECURE",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub insecure: Option<bool>,
    /// Allow an http:// server on another machine: the doorbell token and every call setup
    /// would cross the network in clear. Only for a lab network you trust.
    #[arg(
        long,
        env = "DOORBELL_ALLOW_PLAIN_HTTP",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub allow_plain_http: Option<bool>,
    /// Engine.IO protocol of the server: 4 (our server, Flask-SocketIO 5) or 3 (socket.io 2.x).
    #[arg(long, env = "DOORBELL_ENGINE_IO")]
    pub engine_io: Option<u8>,
    /// Base URL of the owner's link (default: --server).
    #[arg(long, env = "DOORBELL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// What rings the bell: `stdin` (one line = one press), `http:PORT` or `http:ADDR:PORT`
    /// (POST /ring with the ring secret), `gpio:CHIP:LINE`. Repeatable.
    #[arg(long = "trigger", env = "DOORBELL_TRIGGER", value_delimiter = ',')]
    pub triggers: Option<Vec<String>>,
    /// The bearer secret an HTTP trigger's callers send. Prefer the environment variable, a
    /// file or a systemd credential `ring-secret`.
    #[arg(long, env = "DOORBELL_RING_SECRET", hide_env_values = true)]
    #[serde(skip)]
    pub ring_secret: Option<String>,
    /// A file holding the ring secret.
    #[arg(long, env = "DOORBELL_RING_SECRET_FILE")]
    pub ring_secret_file: Option<PathBuf>,
    /// `json`: one JSON object per state change on stdout (logs stay on stderr); `log`.
    #[arg(long, env = "DOORBELL_EVENTS")]
    pub events: Option<String>,
    /// `test-pattern`, `camera` (/dev/video0), `/dev/videoN`, or `none`.
    #[arg(long, env = "DOORBELL_VIDEO")]
    pub video: Option<String>,
    /// WIDTHxHEIGHT, e.g. 640x480.
    #[arg(long, env = "DOORBELL_VIDEO_SIZE")]
    pub video_size: Option<String>,
    #[arg(long, env = "DOORBELL_FPS")]
    pub fps: Option<u32>,
    /// Which video codec to send when the browser offers both: `auto` (H.264, else VP8),
    /// `h264` or `vp8` (preferred, the other when it is not offered).
    #[arg(long, env = "DOORBELL_VIDEO_CODEC")]
    pub video_codec: Option<String>,
    /// Video bitrate in bits per second (e.g. 1000000) or with k/M (1M).
    #[arg(long, env = "DOORBELL_VIDEO_BITRATE")]
    pub video_bitrate: Option<String>,
    /// `tone`, `silence`, or `alsa:NAME` (e.g. alsa:default, alsa:plughw:CARD=C270).
    #[arg(long, env = "DOORBELL_AUDIO_IN")]
    pub audio_in: Option<String>,
    /// `null`, `wav:PATH`, or `alsa:NAME[:volume=P]` (P in percent, 0–200).
    #[arg(long, env = "DOORBELL_AUDIO_OUT")]
    pub audio_out: Option<String>,
    /// STUN/TURN server URL, repeatable: stun:host:3478, turn:host:3478?transport=udp
    #[arg(
        long = "ice-server",
        env = "DOORBELL_ICE_SERVERS",
        value_delimiter = ','
    )]
    pub ice_servers: Option<Vec<String>>,
    /// TURN username (for every turn: URL).
    #[arg(long, env = "DOORBELL_ICE_USERNAME")]
    pub ice_username: Option<String>,
    /// TURN credential (prefer the environment variable).
    #[arg(long, env = "DOORBELL_ICE_CREDENTIAL", hide_env_values = true)]
    #[serde(skip)]
    pub ice_credential: Option<String>,
    /// The only host addresses to offer as ICE candidates, repeatable (default: the address
    /// that routes to the server).
    #[arg(long = "ice-host", env = "DOORBELL_ICE_HOSTS", value_delimiter = ',')]
    pub ice_hosts: Option<Vec<IpAddr>>,
    /// Longest wait for ICE candidates before answering (e.g. 1s, 500ms).
    #[arg(long, env = "DOORBELL_GATHER_TIMEOUT")]
    pub gather_timeout: Option<String>,
    #[arg(long, env = "DOORBELL_JOIN_TIMEOUT")]
    pub join_timeout: Option<String>,
    /// How long the bell rings for the owner to open the link.
    #[arg(long, env = "DOORBELL_RING_TIMEOUT")]
    pub ring_timeout: Option<String>,
    #[arg(long, env = "DOORBELL_OFFER_TIMEOUT")]
    pub offer_timeout: Option<String>,
    #[arg(long, env = "DOORBELL_ANSWER_TIMEOUT")]
    pub answer_timeout: Option<String>,
    #[arg(long, env = "DOORBELL_CONNECT_TIMEOUT")]
    pub connect_timeout: Option<String>,
    #[arg(long, env = "DOORBELL_MAX_CALL")]
    pub max_call: Option<String>,
    /// Media path lost for this long ends the call.
    #[arg(long, env = "DOORBELL_ICE_LOST_TIMEOUT")]
    pub ice_lost_timeout: Option<String>,
    /// How long notifications wait for the visitor's snapshot before going text-only.
    #[arg(long, env = "DOORBELL_SNAPSHOT_BOUND")]
    pub snapshot_bound: Option<String>,
    /// LED output: `gpio:CHIP:LINE[:active-low]`; blinks while ringing, on in a call.
    #[arg(long, env = "DOORBELL_LED")]
    pub led: Option<String>,
    /// The longest video message a visitor nobody answered may leave (e.g. 20s; 0 turns
    /// messages off) [default: 20s].
    #[arg(long, env = "DOORBELL_MESSAGE_LENGTH")]
    pub message_length: Option<String>,
    /// Where messages wait until the server has them [default: $XDG_DATA_HOME/doorbell/messages
    /// or ~/.local/share/doorbell/messages].
    #[arg(long, env = "DOORBELL_MESSAGE_DIR")]
    pub message_dir: Option<PathBuf>,
    /// The most the waiting messages may take on disk, in MiB; beyond it the oldest are
    /// dropped [default: 200].
    #[arg(long, env = "DOORBELL_MESSAGE_SPOOL_MIB")]
    pub message_spool_mib: Option<u64>,
    /// The prompt played before a message (48 kHz mono 16-bit WAV) [default: the one shipped:
    /// "Nobody can come to the door right now. Please leave a message after the tone."].
    #[arg(long, env = "DOORBELL_MESSAGE_PROMPT")]
    pub message_prompt: Option<PathBuf>,
    /// Let paired owners open the camera without a ring (default true; false refuses).
    #[arg(
        long,
        env = "DOORBELL_LIVE_VIEW",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub live_view: Option<bool>,
    /// Light the LED while the camera is live for a live view (default true), so people at the
    /// door can tell.
    #[arg(
        long,
        env = "DOORBELL_LIVE_VIEW_LED",
        num_args = 0..=1,
        default_missing_value = "true",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub live_view_led: Option<bool>,
    /// Chime (relay/buzzer) output pulsed on every press: `gpio:CHIP:LINE[:active-low]`.
    #[arg(long, env = "DOORBELL_CHIME")]
    pub chime: Option<String>,
    /// Length of the chime pulse (default 200ms).
    #[arg(long, env = "DOORBELL_CHIME_PULSE")]
    pub chime_pulse: Option<String>,
    /// Serve Prometheus metrics on this address (plain HTTP, `GET /metrics`; keep it private,
    /// e.g. 127.0.0.1:9102).
    #[arg(long, env = "DOORBELL_METRICS_LISTEN")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `[agent.audio]`: the microphone's processing and the speaker's volume.
    #[command(flatten)]
    #[serde(default)]
    pub audio: AudioArgs,
    /// Check the config (every key, every [[notify]] channel), report each problem, and exit.
    #[arg(long)]
    #[serde(skip)]
    pub check_config: bool,
    /// Send one test message on every configured channel, print each outcome, and exit.
    #[arg(long)]
    #[serde(skip)]
    pub test_notify: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum AgentConfigError {
    #[error(
        "no signaling server: give --server https://HOST:PORT (or DOORBELL_SERVER, or `server` in [agent])"
    )]
    NoServer,
    #[error("{key}: {why}")]
    Bad { key: &'static str, why: String },
    #[error("cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

fn bad(key: &'static str, why: impl Into<String>) -> AgentConfigError {
    AgentConfigError::Bad {
        key,
        why: why.into(),
    }
}

/// Everything `doorbell agent` runs with, resolved and checked.
pub struct ResolvedAgent {
    pub settings: AgentSettings,
    pub signaling: SignalingConfig,
    pub peer: PeerConfig,
    pub media: MediaSettings,
    /// LED output line: blinks while ringing, on during a call, off when idle.
    pub led: Option<OutputLineSpec>,
    /// Chime output line and its pulse length, pulsed on every press.
    pub chime: Option<(OutputLineSpec, Duration)>,
    pub triggers: Vec<String>,
    /// What HTTP triggers require as their bearer token.
    pub ring_secret: Option<Secret>,
    pub json_events: bool,
    pub insecure: bool,
    /// Where to serve Prometheus metrics.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// Video messages: where they wait, their bound, the prompt (`None`: off).
    pub messages: Option<MessageSetup>,
}

/// How video messages are kept and introduced.
pub struct MessageSetup {
    pub dir: PathBuf,
    pub max_bytes: u64,
    /// 48 kHz mono samples.
    pub prompt: Vec<i16>,
}

/// The default home of waiting messages.
fn default_message_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("doorbell/messages"));
    }
    std::env::var_os("HOME")
        .filter(|d| !d.is_empty())
        .map(|home| PathBuf::from(home).join(".local/share/doorbell/messages"))
}

/// A secret given directly (flag or environment), else in a file, else as the systemd
/// credential named after `env_var` (credentials.rs); trimmed.
fn secret(
    direct: &Option<String>,
    file: &Option<PathBuf>,
    what: &'static str,
    env_var: &str,
) -> Result<Option<String>, AgentConfigError> {
    match (direct, file) {
        (Some(value), _) => Ok(Some(value.trim().to_owned())),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map(|text| Some(text.trim().to_owned()))
            .map_err(|source| AgentConfigError::Read {
                what,
                path: path.clone(),
                source,
            }),
        (None, None) => Ok(crate::credentials::credential(env_var)),
    }
}

/// The duration `key` from `text`, or `default`.
fn duration(
    key: &'static str,
    text: &Option<String>,
    default: Duration,
) -> Result<Duration, AgentConfigError> {
    match text {
        Some(text) => parse_duration(text).map_err(|why| bad(key, why)),
        None => Ok(default),
    }
}

/// `output` with the `[agent.audio]` speaker volume applied. The volume is one setting with two
/// spellings (`alsa:NAME:volume=P` and `speaker-volume`), so both at once are refused, and a
/// volume for an output that has none (a file, nothing) is a mistake worth saying.
fn speaker_with_volume(
    output: AudioOutput,
    spec: &str,
    volume: Option<u32>,
) -> Result<AudioOutput, AgentConfigError> {
    let Some(volume) = volume else {
        return Ok(output);
    };
    match output {
        AudioOutput::Alsa { .. } if spec.contains(":volume=") => Err(bad(
            "audio",
            "the speaker volume is given twice (speaker-volume and :volume= in --audio-out); keep one",
        )),
        AudioOutput::Alsa { device, .. } => Ok(AudioOutput::Alsa {
            device,
            volume_percent: volume,
        }),
        _ => Err(bad(
            "audio",
            format!("speaker-volume applies to an alsa: speaker, not --audio-out {spec:?}"),
        )),
    }
}

fn parse_bitrate(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (digits, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1_000f64),
        Some('M' | 'm') => (&t[..t.len() - 1], 1_000_000f64),
        _ => (t, 1f64),
    };
    let v: f64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a bitrate like 800000, 800k or 1M"))?;
    let bps = v * mul;
    let range = f64::from(MIN_VIDEO_BITRATE_BPS)..=f64::from(MAX_VIDEO_BITRATE_BPS);
    if !range.contains(&bps) {
        return Err(format!(
            "{text:?} is outside {}k..{}M",
            MIN_VIDEO_BITRATE_BPS / 1_000,
            MAX_VIDEO_BITRATE_BPS / 1_000_000
        ));
    }
    Ok(bps as u32)
}

fn parse_size(text: &str) -> Result<(u32, u32), String> {
    let err = || {
        format!(
            "{text:?} is not a size like 640x480 (even numbers, {MIN_VIDEO_WIDTH}..={MAX_VIDEO_WIDTH} wide, {MIN_VIDEO_HEIGHT}..={MAX_VIDEO_HEIGHT} high)"
        )
    };
    let (w, h) = text.split_once(['x', 'X']).ok_or_else(err)?;
    let w: u32 = w.trim().parse().map_err(|_| err())?;
    let h: u32 = h.trim().parse().map_err(|_| err())?;
    if !w.is_multiple_of(2)
        || !h.is_multiple_of(2)
        || !(MIN_VIDEO_WIDTH..=MAX_VIDEO_WIDTH).contains(&w)
        || !(MIN_VIDEO_HEIGHT..=MAX_VIDEO_HEIGHT).contains(&h)
    {
        return Err(err());
    }
    Ok((w, h))
}

/// The local address that routes to `server` (no packet is sent: a UDP `connect` only picks
/// the route). Loopback servers give 127.0.0.1.
fn route_address(server: &str) -> Option<IpAddr> {
    let url = url::Url::parse(server).ok()?;
    let host = url.host_str()?.trim_matches(['[', ']']).to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let target = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .ok()?
        .next()?;
    let bind: std::net::SocketAddr = if target.is_ipv4() {
        "0.0.0.0:0".parse().ok()?
    } else {
        "[::]:0".parse().ok()?
    };
    let socket = std::net::UdpSocket::bind(bind).ok()?;
    socket.connect(target).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

impl AgentArgs {
    /// Everything the agent runs with: these settings, checked, over the defaults.
    pub fn resolve(&self) -> Result<ResolvedAgent, AgentConfigError> {
        let server = self.server.clone().ok_or(AgentConfigError::NoServer)?;
        let parsed = url::Url::parse(&server)
            .map_err(|e| bad("server", format!("{server:?} is not a URL: {e}")))?;
        if !matches!(parsed.scheme(), "https" | "http") {
            return Err(bad(
                "server",
                "use https://HOST:PORT (or http:// for a lab server)",
            ));
        }
        let loopback = match parsed.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        };
        if parsed.scheme() == "http" && !loopback && !self.allow_plain_http.unwrap_or(false) {
            return Err(bad(
                "server",
                format!(
                    "{server:?} is plain http to another machine: the doorbell token and the \
                     call setup would cross the network readable by anyone on the way; use \
                     https://, or --allow-plain-http on a lab network you trust"
                ),
            ));
        }
        let token = secret(
            &self.token,
            &self.token_file,
            "token file",
            "DOORBELL_TOKEN",
        )?;
        if token.as_deref() == Some("") {
            return Err(bad("token", "the doorbell token is empty"));
        }
        let insecure = self.insecure.unwrap_or(false);
        if insecure && (self.server_fingerprint.is_some() || self.ca_cert.is_some()) {
            // Silently dropping a pin the owner configured would be worse than either.
            return Err(bad(
                "insecure",
                "--insecure would ignore the configured server-fingerprint/ca-cert; keep one",
            ));
        }
        let trust = match (insecure, &self.server_fingerprint, &self.ca_cert) {
            (true, _, _) => ServerTrust::Insecure,
            (false, Some(fp), _) => {
                ServerTrust::Fingerprint(parse_fingerprint(fp).ok_or_else(|| {
                    bad(
                        "server-fingerprint",
                        "expected the SHA-256 the server prints: 32 hex bytes, colons optional",
                    )
                })?)
            }
            (false, None, Some(path)) => {
                ServerTrust::CaPem(std::fs::read_to_string(path).map_err(|source| {
                    AgentConfigError::Read {
                        what: "CA certificate",
                        path: path.clone(),
                        source,
                    }
                })?)
            }
            (false, None, None) => ServerTrust::WebPki,
        };
        let engine_io = match self.engine_io.unwrap_or(4) {
            4 => EngineIoVersion::V4,
            3 => EngineIoVersion::V3,
            other => return Err(bad("engine-io", format!("{other} is not 3 or 4"))),
        };
        let mut signaling = SignalingConfig::new(server.clone());
        signaling.token = token;
        signaling.trust = trust;
        signaling.engine_io = engine_io;

        let (width, height) = match &self.video_size {
            Some(s) => parse_size(s).map_err(|why| bad("video-size", why))?,
            None => (640, 480),
        };
        let fps = self.fps.unwrap_or(30);
        if !(1..=MAX_VIDEO_FPS).contains(&fps) {
            return Err(bad("fps", format!("{fps} is outside 1..={MAX_VIDEO_FPS}")));
        }
        let format = VideoFormat { width, height, fps };
        let video_bitrate = match &self.video_bitrate {
            Some(b) => parse_bitrate(b).map_err(|why| bad("video-bitrate", why))?,
            None => 1_000_000,
        };
        let media = MediaSettings {
            video: VideoInput::parse(self.video.as_deref().unwrap_or("test-pattern"))
                .map_err(|e| bad("video", e.to_string()))?,
            format,
            audio_in: AudioInput::parse(self.audio_in.as_deref().unwrap_or("tone"))
                .map_err(|e| bad("audio-in", e.to_string()))?,
            audio_out: speaker_with_volume(
                AudioOutput::parse(self.audio_out.as_deref().unwrap_or("null"))
                    .map_err(|e| bad("audio-out", e.to_string()))?,
                self.audio_out.as_deref().unwrap_or_default(),
                self.audio
                    .speaker_volume()
                    .map_err(|why| bad("audio", why))?,
            )?,
        };
        // The simulated housing is one device with two ends: half of it is a mistake in the
        // config, said at start rather than at every call.
        if (media.audio_in == AudioInput::EchoRoom) != (media.audio_out == AudioOutput::EchoRoom) {
            return Err(bad(
                "audio-in",
                "echo-room needs both --audio-in echo-room and --audio-out echo-room",
            ));
        }
        let audio_processing = self.audio.settings().map_err(|why| bad("audio", why))?;
        let video_codec =
            VideoCodecPreference::parse(self.video_codec.as_deref().unwrap_or("auto"))
                .map_err(|why| bad("video-codec", why))?;
        if let VideoCodecPreference::Prefer(codec) = video_codec
            && !codec.is_available()
        {
            return Err(bad(
                "video-codec",
                format!(
                    "this doorbell was built without {codec}; build it with `--features vp8` (needs libvpx-dev)"
                ),
            ));
        }

        let username = self.ice_username.clone().unwrap_or_default();
        let credential = self
            .ice_credential
            .clone()
            .or_else(|| crate::credentials::credential("DOORBELL_ICE_CREDENTIAL"))
            .unwrap_or_default();
        let mut ice_servers = Vec::new();
        for url in self.ice_servers.iter().flatten() {
            let is_turn = url.starts_with("turn:") || url.starts_with("turns:");
            if !is_turn && !url.starts_with("stun:") {
                return Err(bad(
                    "ice-server",
                    format!("{url:?} must start with stun:, turn: or turns:"),
                ));
            }
            if is_turn && (username.is_empty() || credential.is_empty()) {
                return Err(bad(
                    "ice-server",
                    "a TURN server needs --ice-username and DOORBELL_ICE_CREDENTIAL",
                ));
            }
            // Only a TURN server is given the credentials.
            let (username, credential) = if is_turn {
                (Some(username.clone()), Some(credential.clone()))
            } else {
                (None, None)
            };
            ice_servers.push(IceServer {
                urls: vec![url.clone()],
                username,
                credential,
            });
        }
        let mut ice_hosts = self.ice_hosts.clone().unwrap_or_default();
        if ice_hosts.is_empty() {
            ice_hosts.push(route_address(&server).unwrap_or(IpAddr::from([127, 0, 0, 1])));
        }

        let defaults = Timeouts::default();
        let timeouts = Timeouts {
            join: duration("join-timeout", &self.join_timeout, defaults.join)?,
            ring: duration("ring-timeout", &self.ring_timeout, defaults.ring)?,
            offer: duration("offer-timeout", &self.offer_timeout, defaults.offer)?,
            answer: duration("answer-timeout", &self.answer_timeout, defaults.answer)?,
            connect: duration("connect-timeout", &self.connect_timeout, defaults.connect)?,
            max_call: duration("max-call", &self.max_call, defaults.max_call)?,
        };
        let peer_defaults = PeerConfig::default();
        let peer = PeerConfig {
            ice_servers,
            ice_hosts,
            gather_timeout: duration(
                "gather-timeout",
                &self.gather_timeout,
                peer_defaults.gather_timeout,
            )?,
            video: format,
            video_bitrate_bps: video_bitrate,
            ice_lost_timeout: duration(
                "ice-lost-timeout",
                &self.ice_lost_timeout,
                peer_defaults.ice_lost_timeout,
            )?,
            audio_processing,
            video_codec,
            ..peer_defaults
        };
        let public_url = self.public_url.clone().unwrap_or_else(|| server.clone());
        let triggers = self
            .triggers
            .clone()
            .unwrap_or_else(|| vec!["stdin".to_owned()]);
        let ring_secret = secret(
            &self.ring_secret,
            &self.ring_secret_file,
            "ring secret file",
            "DOORBELL_RING_SECRET",
        )?
        .filter(|s| !s.is_empty())
        .map(Secret::new);
        // Refuse a bad trigger now (--check-config), not when the agent starts.
        for spec in &triggers {
            if spec.starts_with("http:") {
                trigger::from_spec(spec, ring_secret.as_ref())
                    .map_err(|e| bad("trigger", e.to_string()))?;
            }
        }
        let output_line = |key: &'static str, spec: &Option<String>| {
            spec.as_ref()
                .map(|s| OutputLineSpec::parse(s).map_err(|e| bad(key, e.to_string())))
                .transpose()
        };
        let led = output_line("led", &self.led)?;
        let chime = match output_line("chime", &self.chime)? {
            Some(spec) => Some((
                spec,
                duration("chime-pulse", &self.chime_pulse, DEFAULT_CHIME_PULSE)?,
            )),
            None => None,
        };
        let json_events = match self.events.as_deref().unwrap_or("log") {
            "json" => true,
            "log" => false,
            other => return Err(bad("events", format!("{other:?}: use json or log"))),
        };
        let message_length = duration(
            "message-length",
            &self.message_length,
            Duration::from_secs(20),
        )?;
        let messages = if message_length.is_zero() {
            None
        } else {
            let prompt = match &self.message_prompt {
                Some(path) => doorbell_audio::wav_file::read_wav(path)
                    .map_err(|e| bad("message-prompt", e.to_string()))?,
                None => doorbell_peer::message_recorder::prompt_samples(None),
            };
            match self.message_dir.clone().or_else(default_message_dir) {
                Some(dir) => Some(MessageSetup {
                    dir,
                    max_bytes: self
                        .message_spool_mib
                        .unwrap_or(200)
                        .saturating_mul(1024 * 1024),
                    prompt,
                }),
                None => {
                    tracing::warn!(
                        "no place for video messages (no HOME or XDG_DATA_HOME): give --message-dir"
                    );
                    None
                }
            }
        };
        Ok(ResolvedAgent {
            messages,
            settings: AgentSettings {
                public_url,
                timeouts,
                reconnect: Reconnect::default(),
                snapshot_bound: duration(
                    "snapshot-bound",
                    &self.snapshot_bound,
                    Duration::from_millis(150),
                )?,
                // A browser's loopback/link-local candidates only make sense when the agent
                // itself offers such an address (everything on one machine).
                accept_internal_candidates: peer
                    .ice_hosts
                    .iter()
                    .any(|ip| is_internal_address(*ip)),
                live_view: LiveView {
                    allowed: self.live_view.unwrap_or(true),
                    led: self.live_view_led.unwrap_or(true),
                },
                message_length,
            },
            signaling,
            peer,
            media,
            led,
            chime,
            triggers,
            ring_secret,
            json_events,
            insecure,
            metrics_listen: self.metrics_listen,
        })
    }
}

/// The notification channels of the `[[notify]]` tables; the console when there are none.
/// Every problem names its key (`notify[1].bot_token: …`).
pub fn notifiers(tables: &[toml::Table]) -> Result<Vec<Arc<dyn Notifier>>, String> {
    if tables.is_empty() {
        return Ok(vec![Arc::new(ConsoleNotifier::stderr())]);
    }
    // Secrets from the environment or, under systemd, from credentials (credentials.rs).
    build_notifiers_with_env(tables, &crate::credentials::lookup).map_err(|problems| {
        problems
            .iter()
            .map(|p| format!("  {p}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

/// `--test-notify`: one test message on every channel; `Err` when any channel failed.
pub async fn test_notify(resolved: &ResolvedAgent, tables: &[toml::Table]) -> Result<(), String> {
    let notifiers = notifiers(tables).map_err(|p| format!("config problems:\n{p}"))?;
    // An MQTT channel sends only once connected. Only to deliver: a doorbell agent running
    // beside this keeps its session, its Ring button and its availability.
    for device in notifiers.iter().filter_map(|n| n.device()) {
        device.start_sending_only();
    }
    let snapshot = resolved
        .media
        .snapshot_jpeg(doorbell_peer::media_settings::SNAPSHOT_QUALITY)
        .ok()
        .map(Arc::new);
    let room = doorbell_protocol::RoomId::parse("test-notification")
        .map_err(|e| format!("the test room name is invalid: {e}"))?;
    let link = format!("{}/?room={}", resolved.settings.public_url, room.as_str());
    let outcomes = doorbell_notify::test_notify(
        &notifiers,
        Some((room, link)),
        snapshot,
        Duration::from_secs(30),
    )
    .await;
    let mut failed = 0;
    for outcome in &outcomes {
        println!("{outcome}");
        if outcome.result.is_err() {
            failed += 1;
        }
    }
    if failed > 0 {
        Err(format!("{failed} of {} channels failed", outcomes.len()))
    } else {
        Ok(())
    }
}

/// Runs the agent until its triggers end or `shutdown` resolves.
pub async fn run(
    resolved: ResolvedAgent,
    notifiers: Vec<Arc<dyn Notifier>>,
    extra_triggers: Vec<Box<dyn Trigger>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), AgentConfigError> {
    if resolved.insecure {
        tracing::warn!(
            "INSECURE: the server's certificate is not checked (--insecure); anyone on the \
             network path can impersonate the server. Use --ca-cert or --server-fingerprint."
        );
    }
    // The ring history on our server gets each ring's photo, like a channel.
    let mut notifiers = notifiers;
    if let Some(upload) =
        SnapshotUpload::new(&resolved.signaling).map_err(|why| bad("server", why))?
    {
        notifiers.push(Arc::new(upload));
    }
    let mut triggers = extra_triggers;
    for spec in &resolved.triggers {
        triggers.push(
            trigger::from_spec(spec, resolved.ring_secret.as_ref())
                .map_err(|e| bad("trigger", e.to_string()))?,
        );
    }
    let mut events: Box<dyn EventSink> = if resolved.json_events {
        Box::new(JsonLines(std::io::stdout()))
    } else {
        Box::new(LogEvents)
    };
    if let Some(addr) = resolved.metrics_listen {
        events = Box::new(MetricsEvents {
            metrics: serve_metrics(addr).await?,
            next: events,
        });
    }
    // Smart-home devices (MQTT): each connects now, rings through its own Ring button and
    // hears when a call is up.
    let devices = start_devices(&notifiers, &mut triggers);
    if !devices.is_empty() {
        events = Box::new(DeviceEvents {
            devices,
            next: events,
        });
    }
    let indicator = Indicator::open(
        resolved.led.as_ref(),
        resolved.chime.as_ref().map(|(spec, pulse)| (spec, *pulse)),
        events.as_mut(),
    );
    let messages = match (&resolved.messages, resolved.media.video != VideoInput::None) {
        (Some(setup), true) => {
            match Outbox::new(&resolved.signaling, setup.dir.clone(), setup.max_bytes)
                .map_err(|why| bad("server", why))?
            {
                Some(outbox) => Some(Messages {
                    recorder: Arc::new(Recorder {
                        media: resolved.media.clone(),
                        prompt: Arc::new(setup.prompt.clone()),
                        dir: setup.dir.clone(),
                    }),
                    left_over: outbox.left_over(),
                    outbox,
                }),
                // The lab's server keeps no history to attach a message to.
                None => None,
            }
        }
        _ => None,
    };
    // Quick replies are kept in the message dir's `replies/`.
    let reply_dir = resolved
        .messages
        .as_ref()
        .map(|m| m.dir.join("replies"))
        .or_else(|| default_message_dir().map(|d| d.join("replies")));
    let replies: Option<Arc<dyn doorbell_agent::ports::ReplyPlayer>> = match reply_dir {
        Some(dir) => Replies::new(&resolved.signaling, dir, resolved.media.clone())
            .map_err(|why| bad("server", why))?
            .map(|r| r as Arc<dyn doorbell_agent::ports::ReplyPlayer>),
        None => None,
    };
    let camera = (resolved.media.video != VideoInput::None).then(|| {
        Arc::new(OpenAndCapture(resolved.media.clone())) as Arc<dyn doorbell_agent::ports::Camera>
    });
    let io = AgentIo {
        connector: Arc::new(SocketIoConnector(resolved.signaling)),
        answerer: Arc::new(WebRtcAnswerer {
            config: resolved.peer,
            media: resolved.media,
        }),
        camera,
        notifiers,
        events,
        indicator,
        messages,
        replies,
    };
    doorbell_agent::driver::run(resolved.settings, io, triggers, shutdown).await;
    Ok(())
}

/// Binds the metrics port and serves the agent's metrics there; the returned counts are fed
/// by the event stream.
async fn serve_metrics(addr: std::net::SocketAddr) -> Result<Arc<AgentMetrics>, AgentConfigError> {
    use doorbell_protocol::metrics_text::{Kind, MetricsText};
    use doorbell_server::metrics;
    let listener = metrics::bind(addr)
        .await
        .map_err(|e| bad("metrics-listen", format!("cannot listen on {addr}: {e}")))?;
    let counts = Arc::new(AgentMetrics::default());
    let render: metrics::Render = {
        let counts = Arc::clone(&counts);
        Arc::new(move || {
            let mut m = MetricsText::new();
            counts.render(&mut m);
            let video = doorbell_peer::encode_totals();
            m.single(
                "doorbell_agent_video_frames_encoded_total",
                Kind::Counter,
                "Video frames encoded and sent.",
                video.frames_encoded as f64,
            );
            m.single(
                "doorbell_agent_video_encode_seconds_total",
                Kind::Counter,
                "Time spent in the video encoder (divide by frames for the time per frame).",
                video.encode_time.as_secs_f64(),
            );
            m.single(
                "doorbell_agent_video_frames_dropped_total",
                Kind::Counter,
                "Captured video frames not sent: skipped by the encoder's rate control.",
                video.frames_skipped as f64,
            );
            metrics::render_process(&mut m);
            m.finish()
        })
    };
    tracing::info!(addr = ?listener.local_addr().ok(), "serving metrics (GET /metrics)");
    tokio::spawn(async move {
        if let Err(e) = metrics::serve(listener, render).await {
            tracing::error!("the metrics listener stopped: {e}");
        }
    });
    Ok(counts)
}

/// Starts every channel that is also a smart-home device; each one's Ring button becomes a
/// trigger in `triggers`.
fn start_devices(
    notifiers: &[Arc<dyn Notifier>],
    triggers: &mut Vec<Box<dyn Trigger>>,
) -> Vec<Arc<dyn HomeDevice>> {
    notifiers
        .iter()
        .filter_map(|notifier| {
            let device = notifier.device()?;
            let (trigger, presses) = DeviceTrigger::new(notifier.channel());
            device.start(presses);
            triggers.push(Box::new(trigger));
            Some(device)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::layered;

    fn args(server: &str) -> AgentArgs {
        AgentArgs {
            server: Some(server.into()),
            ..AgentArgs::default()
        }
    }

    #[test]
    fn flags_beat_the_file_and_defaults_fill_the_rest() {
        let file = "[agent]\nfps = 25\nvideo-size = \"320x240\"\nring-timeout = \"30s\"";
        let argv = ["--server", "https://127.0.0.1:8443", "--fps", "15"];
        let r = layered::<AgentArgs>("agent", file, &argv)
            .unwrap()
            .resolve()
            .unwrap();
        assert_eq!(r.media.format.fps, 15);
        assert_eq!(r.media.format.width, 320);
        assert_eq!(r.settings.timeouts.ring, Duration::from_secs(30));
        assert_eq!(r.settings.timeouts.join, Timeouts::default().join);
        assert_eq!(r.peer.ice_hosts, vec![IpAddr::from([127, 0, 0, 1])]);
        assert_eq!(r.settings.public_url, "https://127.0.0.1:8443");
        assert_eq!(r.triggers, ["stdin"]);
    }

    #[test]
    fn an_http_trigger_without_a_ring_secret_is_refused_at_check_time() {
        let argv = ["--server", "https://h", "--trigger", "http:8080"];
        let err = layered::<AgentArgs>("agent", "", &argv)
            .unwrap()
            .resolve()
            .err()
            .expect("refused");
        assert!(err.to_string().contains("needs a ring secret"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ring-secret");
        std::fs::write(&file, "ring-secret-0123456789\n").unwrap();
        let with_file = [&argv[..], &["--ring-secret-file", file.to_str().unwrap()]].concat();
        let resolved = layered::<AgentArgs>("agent", "", &with_file)
            .unwrap()
            .resolve()
            .unwrap();
        assert!(
            resolved
                .ring_secret
                .unwrap()
                .matches("ring-secret-0123456789")
        );
    }

    #[test]
    fn a_flag_list_replaces_the_file_list_and_an_empty_file_list_stays_empty() {
        let file = "[agent]\nserver = \"https://h\"\ntriggers = [\"http:127.0.0.1:1\"]";
        let from_flag = layered::<AgentArgs>("agent", file, &["--trigger", "stdin"]).unwrap();
        assert_eq!(from_flag.resolve().unwrap().triggers, ["stdin"]);
        let from_file = layered::<AgentArgs>("agent", file, &["--ring-secret", "s"]).unwrap();
        assert_eq!(from_file.resolve().unwrap().triggers, ["http:127.0.0.1:1"]);
        let none = "[agent]\nserver = \"https://h\"\ntriggers = []";
        let none = layered::<AgentArgs>("agent", none, &[]).unwrap();
        assert!(none.resolve().unwrap().triggers.is_empty());
    }

    #[test]
    fn plain_http_to_another_machine_is_refused_unless_allowed() {
        let resolve = |argv: &[&str]| layered::<AgentArgs>("agent", "", argv).unwrap().resolve();
        let Err(err) = resolve(&["--server", "http://door.example.com:5000"]) else {
            panic!("plain http to a remote host was accepted");
        };
        assert!(
            err.to_string().contains("plain http to another machine")
                && err.to_string().contains("--allow-plain-http"),
            "{err}"
        );
        for lab in [
            "http://127.0.0.1:5000",
            "http://localhost:5000",
            "http://[::1]:5000",
        ] {
            assert!(resolve(&["--server", lab]).is_ok(), "{lab}");
        }
        assert!(
            resolve(&[
                "--server",
                "http://door.example.com:5000",
                "--allow-plain-http"
            ])
            .is_ok()
        );
    }

    #[test]
    fn insecure_with_a_pinned_certificate_is_refused() {
        let pin = "00".repeat(32);
        let err = layered::<AgentArgs>(
            "agent",
            "",
            &[
                "--server",
                "https://h",
                "--insecure",
                "--server-fingerprint",
                &pin,
            ],
        )
        .unwrap()
        .resolve()
        .err()
        .expect("--insecure with a pin is refused");
        assert!(err.to_string().starts_with("insecure:"), "{err}");
        assert!(err.to_string().contains("keep one"), "{err}");
    }

    #[test]
    fn an_explicit_false_flag_beats_insecure_in_the_file() {
        let file = "[agent]\nserver = \"https://h\"\ninsecure = true";
        let from_file = layered::<AgentArgs>("agent", file, &[]).unwrap();
        assert!(from_file.resolve().unwrap().insecure);
        let off = layered::<AgentArgs>("agent", file, &["--insecure", "false"]).unwrap();
        assert!(!off.resolve().unwrap().insecure);
        let bare = layered::<AgentArgs>("agent", "", &["--server", "https://h", "--insecure"]);
        let bare = bare.unwrap().resolve().unwrap();
        assert!(bare.insecure);
        assert_eq!(bare.signaling.trust, ServerTrust::Insecure);
    }

    #[test]
    fn bad_values_name_their_key() {
        let cases: Vec<(AgentArgs, &str)> = vec![
            (AgentArgs::default(), "--server"),
            (args("ftp://x"), "server"),
            (
                AgentArgs {
                    video_size: Some("641x480".into()),
                    ..args("https://h")
                },
                "video-size",
            ),
            (
                AgentArgs {
                    video_size: Some("1922x1080".into()),
                    ..args("https://h")
                },
                "video-size",
            ),
            (
                AgentArgs {
                    fps: Some(61),
                    ..args("https://h")
                },
                "fps",
            ),
            (
                AgentArgs {
                    ring_timeout: Some("soon".into()),
                    ..args("https://h")
                },
                "ring-timeout",
            ),
            (
                AgentArgs {
                    server_fingerprint: Some("AB:CD".into()),
                    ..args("https://h")
                },
                "server-fingerprint",
            ),
            (
                AgentArgs {
                    ice_servers: Some(vec!["turn:h:3478".into()]),
                    ..args("https://h")
                },
                "ice-server",
            ),
            (
                AgentArgs {
                    audio_out: Some("speaker".into()),
                    ..args("https://h")
                },
                "audio-out",
            ),
            (
                AgentArgs {
                    events: Some("xml".into()),
                    ..args("https://h")
                },
                "events",
            ),
        ];
        for (a, key) in cases {
            let msg = match a.resolve() {
                Ok(_) => panic!("{key} accepted"),
                Err(e) => e.to_string(),
            };
            assert!(msg.contains(key), "{key}: {msg}");
        }
    }

    #[test]
    fn the_largest_size_the_media_crate_takes_is_accepted() {
        let a = AgentArgs {
            video_size: Some(format!("{MAX_VIDEO_WIDTH}x1080")),
            fps: Some(MAX_VIDEO_FPS),
            ..args("https://h")
        };
        let format = a.resolve().unwrap().media.format;
        assert!(format.validate().is_ok(), "{format}");
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        let hex = "AB".repeat(32);
        let colons = vec!["AB"; 32].join(":");
        for text in [hex, colons] {
            let a = AgentArgs {
                server_fingerprint: Some(text),
                ..args("https://h")
            };
            let r = a.resolve().unwrap();
            assert_eq!(r.signaling.trust, ServerTrust::Fingerprint([0xAB; 32]));
        }
    }

    #[test]
    fn bitrates_accept_suffixes() {
        assert_eq!(parse_bitrate("800k"), Ok(800_000));
        assert_eq!(parse_bitrate("1M"), Ok(1_000_000));
        assert!(parse_bitrate("1").is_err());
        assert_eq!(
            parse_bitrate("21M"),
            Err("\"21M\" is outside 50k..20M".to_owned())
        );
    }
}
