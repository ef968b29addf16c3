use super::press::{Press, Trigger, TriggerError};
use axum::{Router, extract::State, http::StatusCode, routing::post};
use futures_util::future::BoxFuture;
use std::net::SocketAddr;
use tokio::sync::mpsc;

/// `POST /ring` on a local HTTP port is one press: for a Home Assistant button, a script, or
/// a second bell. Bind it to loopback unless the network is trusted: it has no authentication.
pub struct HttpTrigger {
    addr: SocketAddr,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
}

impl HttpTrigger {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, bound: None }
    }

    /// Reports the address actually bound (useful with port 0).
    pub fn with_bound_notifier(mut self, tx: tokio::sync::oneshot::Sender<SocketAddr>) -> Self {
        self.bound = Some(tx);
        self
    }
}

async fn ring(State(presses): State<mpsc::Sender<Press>>) -> (StatusCode, &'static str) {
    match presses.send(Press).await {
        Ok(()) => (StatusCode::ACCEPTED, "ring accepted\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping\n"),
    }
}

impl Trigger for HttpTrigger {
    fn name(&self) -> String {
        format!("http:{}", self.addr)
    }

    fn run(
        self: Box<Self>,
        presses: mpsc::Sender<Press>,
    ) -> BoxFuture<'static, Result<(), TriggerError>> {
        Box::pin(async move {
            let listener = tokio::net::TcpListener::bind(self.addr)
                .await
                .map_err(|source| TriggerError::Bind {
                    addr: self.addr,
                    source,
                })?;
            let local = listener.local_addr().map_err(|source| TriggerError::Bind {
                addr: self.addr,
                source,
            })?;
            if let Some(tx) = self.bound {
                let _ = tx.send(local);
            }
            tracing::info!(%local, "ring trigger: POST http://{local}/ring");
            let closed = presses.clone();
            let app = Router::new().route("/ring", post(ring)).with_state(presses);
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { closed.closed().await })
                .await
                .map_err(|source| TriggerError::Bind {
                    addr: local,
                    source,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn request(addr: SocketAddr, req: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0; 1024];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    #[tokio::test]
    async fn post_ring_is_a_press_and_get_is_not() {
        let (tx, mut rx) = mpsc::channel(8);
        let (btx, brx) = tokio::sync::oneshot::channel();
        let trigger = HttpTrigger::new("127.0.0.1:0".parse().unwrap()).with_bound_notifier(btx);
        tokio::spawn(Box::new(trigger).run(tx));
        let addr = brx.await.unwrap();
        let resp = request(
            addr,
            "POST /ring HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 202"), "{resp}");
        assert_eq!(rx.recv().await, Some(Press));
        let resp = request(
            addr,
            "GET /ring HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 405"), "{resp}");
        assert!(rx.try_recv().is_err());
    }
}
