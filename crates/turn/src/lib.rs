//! The embedded TURN server for the one-binary setup (`doorbell server --turn-listen`): the
//! webrtc-rs `turn` crate with what it lacks for the open internet.
//!
//! - [`auth`]: the TURN REST credentials the signaling server hands out (username
//!   `EXPIRY:LABEL`, password `base64(HMAC-SHA1(secret, username))`), expiry checked against
//!   the clock, and a cap on allocations per username. The crate's stock handler parses
//!   usernames as numbers and checks nothing else.
//! - [`peers`]: no relaying to or from loopback, private, CGNAT, link-local, multicast or
//!   unspecified addresses unless `--turn-allow-peer` allows a range. The crate has no peer
//!   filter: every relayed packet passes through the relay socket, so the filter wraps that
//!   socket ([`relay`]).
//! - [`relay`]: a cap on allocations in total.
//!
//! coturn (`deploy/turnserver.conf`) stays the recommended deployment for many users or TCP/TLS
//! listeners; this one listens on UDP.

pub mod auth;
pub mod peers;
pub mod relay;

use auth::RestAuth;
use doorbell_protocol::Secret;
use peers::{Cidr, PeerFilter};
use relay::FilteredRelays;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// Allocations at once, in total (each holds a UDP port and a task).
pub const DEFAULT_MAX_ALLOCATIONS: usize = 100;
/// Allocations at once per username (one call member needs one or two).
pub const DEFAULT_MAX_ALLOCATIONS_PER_USER: usize = 4;

/// What the embedded server needs.
#[derive(Debug, Clone)]
pub struct TurnConfig {
    /// Where it listens for TURN over UDP.
    pub listen: SocketAddr,
    /// The address clients and peers reach relays on (the public address).
    pub external_ip: IpAddr,
    /// The shared secret of the TURN REST credentials (the signaling server's `turn-secret`).
    pub secret: Secret,
    pub realm: String,
    /// Peer ranges relaying may reach although they are private or local.
    pub allow_peers: Vec<Cidr>,
    pub max_allocations: usize,
    pub max_allocations_per_user: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum TurnError {
    #[error("cannot listen for TURN on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the TURN server did not start: {0}")]
    Start(String),
}

/// A TURN server's allocation counts, readable while it runs.
#[derive(Clone, Debug)]
pub struct TurnCounters {
    live: Arc<std::sync::atomic::AtomicUsize>,
    granted: Arc<std::sync::atomic::AtomicU64>,
}

impl TurnCounters {
    /// Allocations held now.
    pub fn allocations(&self) -> usize {
        self.live.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Allocations granted since start.
    pub fn granted(&self) -> u64 {
        self.granted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// A running embedded TURN server.
pub struct TurnServer {
    server: turn::server::Server,
    local_addr: SocketAddr,
    live: Arc<std::sync::atomic::AtomicUsize>,
    granted: Arc<std::sync::atomic::AtomicU64>,
}

impl TurnServer {
    pub async fn start(config: TurnConfig) -> Result<Self, TurnError> {
        let socket = UdpSocket::bind(config.listen)
            .await
            .map_err(|source| TurnError::Bind {
                addr: config.listen,
                source,
            })?;
        let local_addr = socket.local_addr().map_err(|source| TurnError::Bind {
            addr: config.listen,
            source,
        })?;
        let auth = Arc::new(RestAuth::new(
            config.secret.clone(),
            config.realm.clone(),
            config.max_allocations_per_user,
            SystemTime::now,
        ));
        // Ended allocations free their user's place (the crate reports each one).
        let (closed_tx, mut closed_rx) = mpsc::channel::<turn::allocation::AllocationInfo>(64);
        let releasing = Arc::clone(&auth);
        tokio::spawn(async move {
            while let Some(info) = closed_rx.recv().await {
                releasing.released(&info.username, info.five_tuple.src_addr);
            }
        });
        let relays = FilteredRelays::new(
            config.external_ip,
            // Relays bind on the listening address's IP (all of them for 0.0.0.0).
            config.listen.ip(),
            Arc::new(PeerFilter::new(config.allow_peers.clone())),
            config.max_allocations,
        );
        let (live, granted) = relays.counters();
        let server = turn::server::Server::new(turn::server::config::ServerConfig {
            conn_configs: vec![turn::server::config::ConnConfig {
                conn: Arc::new(socket),
                relay_addr_generator: Box::new(relays),
            }],
            realm: config.realm,
            auth_handler: auth,
            channel_bind_timeout: std::time::Duration::from_secs(0),
            alloc_close_notify: Some(closed_tx),
        })
        .await
        .map_err(|e| TurnError::Start(e.to_string()))?;
        tracing::info!(%local_addr, external_ip = %config.external_ip, "embedded TURN server listening (UDP)");
        Ok(Self {
            server,
            local_addr,
            live,
            granted,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Its allocation counts, live, for metrics.
    pub fn counters(&self) -> TurnCounters {
        TurnCounters {
            live: Arc::clone(&self.live),
            granted: Arc::clone(&self.granted),
        }
    }

    pub async fn close(self) {
        if let Err(e) = self.server.close().await {
            tracing::debug!("closing the TURN server: {e}");
        }
    }
}
