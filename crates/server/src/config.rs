use crate::tls::TlsConfig;
use doorbell_protocol::Secret;
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
        }
    }
}

/// Bounds on what clients may cost the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sustained events per second from one connection.
    pub events_per_sec: u32,
    /// Events one connection may send at once (a burst of trickled ICE candidates).
    pub event_burst: u32,
    /// Socket.IO connections held at once, in total.
    pub max_connections: usize,
    /// Socket.IO connections held at once from one IP address.
    pub max_connections_per_ip: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            events_per_sec: 20,
            event_burst: 60,
            max_connections: 10_000,
            max_connections_per_ip: 64,
        }
    }
}
