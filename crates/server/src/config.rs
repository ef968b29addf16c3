use crate::ice::IceSettings;
use crate::tls::TlsConfig;
use doorbell_protocol::{Secret, limits};
use std::net::SocketAddr;

/// Everything `bind` needs. The CLI builds it from flags, environment and the TOML file.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Port 0 picks a free port; [`crate::BoundServer::local_addr`] tells which.
    pub listen: SocketAddr,
    pub tls: TlsConfig,
    /// Only clients presenting this token may open (be the first member of) a room.
    pub doorbell_token: Option<Secret>,
    /// Let anyone open rooms (the lab's behaviour). Off by default.
    pub open_rooms: bool,
    pub limits: Limits,
    /// The STUN/TURN servers handed to each room member (`ice_servers`).
    pub ice: IceSettings,
    /// Paired owner devices and the ring history (the owner app); `None`: neither.
    pub owners: Option<OwnerApp>,
    /// Share rooms with other nodes through this Redis (`redis://HOST:6379`); `None`: alone.
    /// A `Secret`: the URL may carry Redis's password.
    pub redis: Option<Secret>,
    /// Where to serve Prometheus metrics (plain HTTP, `GET /metrics`); `None`: nowhere.
    pub metrics_listen: Option<SocketAddr>,
}

/// The owner app's records and how long the history is kept.
#[derive(Clone)]
pub struct OwnerApp {
    pub store: std::sync::Arc<doorbell_store::Store>,
    pub retention: doorbell_store::Retention,
    pub push: PushSettings,
}

/// Web Push to paired devices (on with the owner app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushSettings {
    /// How push services can reach the operator (`mailto:` or `https:`), in the VAPID claim.
    pub contact: String,
    /// Accept plain-http push endpoints: only for a push service on this machine (tests).
    pub allow_http: bool,
}

impl Default for PushSettings {
    fn default() -> Self {
        Self {
            contact: "mailto:doorbell@localhost".into(),
            allow_http: false,
        }
    }
}

impl std::fmt::Debug for OwnerApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerApp")
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    /// A config with default limits, no token and closed rooms (set one of the two to start).
    pub fn new(listen: SocketAddr, tls: TlsConfig) -> Self {
        Self {
            listen,
            tls,
            doorbell_token: None,
            open_rooms: false,
            limits: Limits::default(),
            ice: IceSettings::default(),
            owners: None,
            metrics_listen: None,
            redis: None,
        }
    }
}

/// How long a connection without the doorbell token may stay outside any room.
pub const DEFAULT_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Bounds on what clients may cost the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sustained events per second from one connection.
    pub events_per_sec: u32,
    /// Events one connection may send at once (a burst of trickled ICE candidates).
    pub event_burst: u32,
    /// Socket.IO connections held at once, in total.
    pub max_connections: usize,
    /// Socket.IO connections held at once from one IP address (an IPv6 /64), for connections
    /// without the doorbell token.
    pub max_connections_per_ip: usize,
    /// How long a connection without the doorbell token may stay without being in a room
    /// (a page left open before Answer, or one holding a slot for nothing).
    pub idle_timeout: std::time::Duration,
}

/// A cap on connections held at once, in total and from one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    pub total: usize,
    pub per_ip: usize,
    /// Of `total`, kept for connections with the doorbell token.
    pub reserved: usize,
}

impl Limits {
    /// Caps on Socket.IO connections (sessions): what the settings say.
    pub fn socket_io_caps(&self) -> Caps {
        Caps {
            total: self.max_connections,
            per_ip: self.max_connections_per_ip,
            // A tenth (at least one) is for doorbells: connections without the token cannot
            // fill the server so far that a doorbell cannot ring.
            reserved: (self.max_connections / 10).max(1),
        }
    }

    /// Caps on TCP connections, counted from accept, before TLS: they bound what stalled
    /// handshakes and slow requests can hold. A Socket.IO session over polling holds two TCP
    /// connections at once (the long-poll and a POST) and briefly a third while it upgrades,
    /// and a browser loads the page over a few more, hence the multiples.
    pub fn tcp_caps(&self) -> Caps {
        Caps {
            total: self.max_connections.saturating_mul(2),
            per_ip: self
                .max_connections_per_ip
                .saturating_mul(3)
                .saturating_add(8),
            // Before TLS nobody has shown a token yet.
            reserved: 0,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            events_per_sec: limits::DEFAULT_EVENTS_PER_SEC,
            event_burst: limits::DEFAULT_EVENT_BURST,
            max_connections: limits::DEFAULT_MAX_CONNECTIONS,
            max_connections_per_ip: limits::DEFAULT_MAX_CONNECTIONS_PER_IP,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}
