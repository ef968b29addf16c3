//! Caps on TCP connections, applied the moment a connection is accepted, before TLS.
//!
//! The Socket.IO caps (hub.rs) count sessions, which exist only after a TLS handshake and an
//! Engine.IO handshake. A flood that never gets that far (stalled handshakes, headers that
//! never end) would otherwise be bounded only by the timeouts and the process's file limit;
//! here one address can hold at most `Limits::tcp_caps().per_ip` connections and everyone
//! together `.total`. A refused connection is closed at once, unanswered.

use crate::config::Caps;
use crate::connections::Connections;
use axum_server::accept::Accept;
use std::future::{Ready, ready};
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Counts accepted TCP connections by client address; sets `TCP_NODELAY` on those it keeps.
#[derive(Clone, Debug)]
pub(crate) struct TcpLimitAcceptor {
    counts: Arc<Mutex<Connections>>,
    caps: Caps,
    /// Where refusals are counted, if anywhere.
    metrics: Option<Arc<crate::metrics::ServerMetrics>>,
}

impl TcpLimitAcceptor {
    pub fn new(caps: Caps) -> Self {
        Self {
            counts: Arc::default(),
            caps,
            metrics: None,
        }
    }

    /// Counts refused connections (`doorbell_rejected_connections_total{reason="tcp_limit"}`).
    pub fn counting_refusals(mut self, metrics: Arc<crate::metrics::ServerMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    fn counts(counts: &Mutex<Connections>) -> MutexGuard<'_, Connections> {
        // The counts stay consistent even if a holder panicked: every change is one step.
        counts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes a place for a connection from `ip`, or says why there is none.
    fn admit(&self, ip: IpAddr) -> io::Result<Slot> {
        Self::counts(&self.counts)
            .admit(Some(ip), false, self.caps)
            .map_err(|e| io::Error::other(e.message))?;
        Ok(Slot {
            counts: self.counts.clone(),
            ip,
        })
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        Self::counts(&self.counts).total()
    }
}

impl<S> Accept<TcpStream, S> for TcpLimitAcceptor {
    type Stream = CountedStream;
    type Service = S;
    type Future = Ready<io::Result<(CountedStream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let accepted = stream.peer_addr().and_then(|peer| {
            let slot = self.admit(peer.ip()).inspect_err(|_| {
                if let Some(metrics) = &self.metrics {
                    metrics.rejected("tcp_limit");
                }
            })?;
            // Signaling messages are small and latency-bound; with Nagle on, the Engine.IO
            // handshake and relayed events waited ~40 ms for delayed ACKs (measured).
            stream.set_nodelay(true)?;
            Ok((
                CountedStream {
                    inner: stream,
                    _slot: slot,
                },
                service,
            ))
        });
        if let Err(e) = &accepted {
            tracing::debug!(error = %e, "TCP connection refused");
        }
        ready(accepted)
    }
}

/// A place held in the counts; given back when dropped, i.e. when the connection closes.
#[derive(Debug)]
struct Slot {
    counts: Arc<Mutex<Connections>>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        TcpLimitAcceptor::counts(&self.counts).release(Some(self.ip), false);
    }
}

/// A TCP stream that holds its place in the counts while it lives.
#[derive(Debug)]
pub(crate) struct CountedStream {
    inner: TcpStream,
    _slot: Slot,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A client connected to `listener`, and the server side of it as accepted.
    async fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), accepted.expect("accept").0)
    }

    #[tokio::test]
    async fn refuses_past_the_per_address_cap_and_frees_places_on_close() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let acceptor = TcpLimitAcceptor::new(Caps {
            total: 100,
            per_ip: 2,
            reserved: 0,
        });
        let mut clients = Vec::new();
        let mut kept = Vec::new();
        for _ in 0..2 {
            let (client, server_side) = pair(&listener).await;
            let (stream, ()) = acceptor.accept(server_side, ()).await.expect("admitted");
            clients.push(client);
            kept.push(stream);
        }
        assert_eq!(acceptor.held(), 2);

        // A third from the same address is refused, and its socket closed: the client reads
        // end-of-stream.
        let (mut third, server_side) = pair(&listener).await;
        let refused = acceptor.accept(server_side, ()).await;
        assert!(refused.is_err(), "a third connection from one address");
        let mut buf = [0u8; 1];
        assert_eq!(third.read(&mut buf).await.expect("read"), 0);
        assert_eq!(acceptor.held(), 2);

        // A kept connection still carries data, both ways.
        let mut first = kept.remove(0);
        clients[0].write_all(b"x").await.expect("write");
        first.read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"x");
        first.write_all(b"y").await.expect("write");
        clients[0].read_exact(&mut buf).await.expect("read");
        assert_eq!(&buf, b"y");

        // Closing one gives its place back.
        drop(first);
        assert_eq!(acceptor.held(), 1);
        let (_client, server_side) = pair(&listener).await;
        let (_again, ()) = acceptor
            .accept(server_side, ())
            .await
            .expect("a place again");
        assert_eq!(acceptor.held(), 2);
    }

    #[tokio::test]
    async fn refuses_past_the_total_cap() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let acceptor = TcpLimitAcceptor::new(Caps {
            total: 1,
            per_ip: 10,
            reserved: 0,
        });
        let (_c1, s1) = pair(&listener).await;
        let (_kept, ()) = acceptor.accept(s1, ()).await.expect("admitted");
        let (_c2, s2) = pair(&listener).await;
        let err = acceptor.accept(s2, ()).await.expect_err("over the total");
        assert!(err.to_string().contains("too many connections"), "{err}");
    }
}
