//! Relay sockets: one per allocation, bound on the listening address, announced with the
//! external IP. Every relayed packet passes through them, so the peer filter sits here: a
//! packet to a refused peer is dropped (the client's send looks done: a TURN server does not
//! report per-packet delivery), one from a refused peer is never handed to the allocation. And
//! the total cap: past it, the crate answers 508 (Insufficient Capacity).

use crate::peers::PeerFilter;
use async_trait::async_trait;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use tokio::net::UdpSocket;
use turn::relay::RelayAddressGenerator;
use util::Conn;

pub struct FilteredRelays {
    external_ip: IpAddr,
    bind_ip: IpAddr,
    filter: Arc<PeerFilter>,
    live: Arc<AtomicUsize>,
    /// Allocations granted since start, for metrics.
    granted: Arc<AtomicU64>,
    max: usize,
}

impl FilteredRelays {
    /// Allocations held now and granted since start, shared with whoever reports them.
    pub fn counters(&self) -> (Arc<AtomicUsize>, Arc<AtomicU64>) {
        (Arc::clone(&self.live), Arc::clone(&self.granted))
    }

    pub fn new(external_ip: IpAddr, bind_ip: IpAddr, filter: Arc<PeerFilter>, max: usize) -> Self {
        Self {
            external_ip,
            bind_ip,
            filter,
            live: Arc::new(AtomicUsize::new(0)),
            granted: Arc::default(),
            max,
        }
    }
}

#[async_trait]
impl RelayAddressGenerator for FilteredRelays {
    fn validate(&self) -> Result<(), turn::Error> {
        Ok(())
    }

    async fn allocate_conn(
        &self,
        _use_ipv4: bool,
        requested_port: u16,
    ) -> Result<(Arc<dyn Conn + Send + Sync>, SocketAddr), turn::Error> {
        // Taken before the bind so that concurrent allocations cannot overshoot.
        if self.live.fetch_add(1, Ordering::SeqCst) >= self.max {
            self.live.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(
                max = self.max,
                "TURN allocation refused: the server is full"
            );
            return Err(turn::Error::Other("allocation cap reached".into()));
        }
        let socket = match UdpSocket::bind(SocketAddr::new(self.bind_ip, requested_port)).await {
            Ok(socket) => socket,
            Err(e) => {
                self.live.fetch_sub(1, Ordering::SeqCst);
                return Err(turn::Error::Other(format!("cannot bind a relay port: {e}")));
            }
        };
        let port = match socket.local_addr() {
            Ok(addr) => addr.port(),
            Err(e) => {
                self.live.fetch_sub(1, Ordering::SeqCst);
                return Err(turn::Error::Other(format!("relay port: {e}")));
            }
        };
        let conn = FilteredConn {
            socket,
            filter: Arc::clone(&self.filter),
            live: Arc::clone(&self.live),
            counted: AtomicBool::new(true),
        };
        self.granted.fetch_add(1, Ordering::Relaxed);
        Ok((Arc::new(conn), SocketAddr::new(self.external_ip, port)))
    }
}

struct FilteredConn {
    socket: UdpSocket,
    filter: Arc<PeerFilter>,
    live: Arc<AtomicUsize>,
    /// Still counted in `live` (until closed or dropped).
    counted: AtomicBool,
}

impl FilteredConn {
    fn uncount(&self) {
        if self.counted.swap(false, Ordering::SeqCst) {
            self.live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for FilteredConn {
    fn drop(&mut self) {
        self.uncount();
    }
}

#[async_trait]
impl Conn for FilteredConn {
    async fn connect(&self, addr: SocketAddr) -> util::Result<()> {
        Ok(self.socket.connect(addr).await?)
    }

    async fn recv(&self, buf: &mut [u8]) -> util::Result<usize> {
        Ok(self.recv_from(buf).await?.0)
    }

    async fn recv_from(&self, buf: &mut [u8]) -> util::Result<(usize, SocketAddr)> {
        loop {
            let (n, from) = self.socket.recv_from(buf).await?;
            if self.filter.allows(from.ip()) {
                return Ok((n, from));
            }
            tracing::debug!(%from, "TURN relay: dropped a packet from a refused peer");
        }
    }

    async fn send(&self, buf: &[u8]) -> util::Result<usize> {
        Ok(self.socket.send(buf).await?)
    }

    async fn send_to(&self, buf: &[u8], target: SocketAddr) -> util::Result<usize> {
        if !self.filter.allows(target.ip()) {
            tracing::debug!(%target, "TURN relay: dropped a packet to a refused peer");
            return Ok(buf.len());
        }
        Ok(self.socket.send_to(buf, target).await?)
    }

    fn local_addr(&self) -> util::Result<SocketAddr> {
        Ok(self.socket.local_addr()?)
    }

    fn remote_addr(&self) -> Option<SocketAddr> {
        None
    }

    async fn close(&self) -> util::Result<()> {
        self.uncount();
        Ok(())
    }

    fn as_any(&self) -> &(dyn std::any::Any + Send + Sync) {
        self
    }
}
