use super::press::{Press, Trigger, TriggerError};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::{Router, routing::post};
use doorbell_protocol::Secret;
use futures_util::future::BoxFuture;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Presses accepted per [`RATE_WINDOW`]: a person, or an automation gone wrong, not a flood.
pub const RATE_PRESSES: usize = 6;
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// `POST /ring` on a local HTTP port is one press: for a Home Assistant button, a script, or
/// a second bell. It needs `Authorization: Bearer RING_SECRET`, refuses anything a browser
/// sends on its own (any `Origin` or `Sec-Fetch-*` header: a web page the owner visits must
/// not ring through their browser), answers no CORS, and takes at most [`RATE_PRESSES`] a
/// minute. `http:PORT` binds to loopback.
pub struct HttpTrigger {
    addr: SocketAddr,
    secret: Secret,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
}

impl HttpTrigger {
    pub fn new(addr: SocketAddr, secret: Secret) -> Self {
        Self {
            addr,
            secret,
            bound: None,
        }
    }

    /// Reports the address actually bound (useful with port 0).
    pub fn with_bound_notifier(mut self, tx: tokio::sync::oneshot::Sender<SocketAddr>) -> Self {
        self.bound = Some(tx);
        self
    }
}

/// The presses of the last [`RATE_WINDOW`].
#[derive(Debug, Default)]
pub struct PressRate(VecDeque<Instant>);

impl PressRate {
    /// Whether a press at `now` is allowed; an allowed press is counted.
    pub fn allow(&mut self, now: Instant) -> bool {
        while self
            .0
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            self.0.pop_front();
        }
        if self.0.len() >= RATE_PRESSES {
            return false;
        }
        self.0.push_back(now);
        true
    }
}

/// Why a request may not ring, if it may not.
fn refusal(headers: &HeaderMap, secret: &Secret) -> Option<(StatusCode, &'static str)> {
    let from_a_browser = headers.contains_key(header::ORIGIN)
        || headers.keys().any(|k| k.as_str().starts_with("sec-fetch-"));
    if from_a_browser {
        return Some((
            StatusCode::FORBIDDEN,
            "browsers may not ring; call from a script or home automation\n",
        ));
    }
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(p) if secret.matches(p.trim()) => None,
        _ => Some((
            StatusCode::UNAUTHORIZED,
            "send Authorization: Bearer with the ring secret\n",
        )),
    }
}

struct Ring {
    presses: mpsc::Sender<Press>,
    secret: Secret,
    rate: Mutex<PressRate>,
}

async fn ring(State(state): State<Arc<Ring>>, headers: HeaderMap) -> (StatusCode, &'static str) {
    if let Some(refused) = refusal(&headers, &state.secret) {
        return refused;
    }
    let allowed = state
        .rate
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .allow(Instant::now());
    if !allowed {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "too many rings; try again in a minute\n",
        );
    }
    match state.presses.send(Press).await {
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
            tracing::info!(%local, "ring trigger: POST http://{local}/ring (bearer ring secret)");
            let closed = presses.clone();
            let state = Arc::new(Ring {
                presses,
                secret: self.secret,
                rate: Mutex::new(PressRate::default()),
            });
            let app = Router::new().route("/ring", post(ring)).with_state(state);
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

    const SECRET: &str = "ring-secret-0123456789abcdef";

    async fn request(addr: SocketAddr, req: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(req.as_bytes()).await.unwrap();
        let mut buf = vec![0; 1024];
        let n = s.read(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    fn post(extra_headers: &str) -> String {
        format!(
            "POST /ring HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n{extra_headers}Connection: close\r\n\r\n"
        )
    }

    async fn start() -> (SocketAddr, mpsc::Receiver<Press>) {
        let (tx, rx) = mpsc::channel(8);
        let (btx, brx) = tokio::sync::oneshot::channel();
        let trigger = HttpTrigger::new("127.0.0.1:0".parse().unwrap(), Secret::new(SECRET))
            .with_bound_notifier(btx);
        tokio::spawn(Box::new(trigger).run(tx));
        (brx.await.unwrap(), rx)
    }

    #[tokio::test]
    async fn post_ring_with_the_secret_is_a_press_and_get_is_not() {
        let (addr, mut rx) = start().await;
        let auth = format!("Authorization: Bearer {SECRET}\r\n");
        let resp = request(addr, &post(&auth)).await;
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

    #[tokio::test]
    async fn no_or_a_wrong_secret_and_anything_from_a_browser_rings_nothing() {
        let (addr, mut rx) = start().await;
        let auth = format!("Authorization: Bearer {SECRET}\r\n");
        for (headers, status) in [
            (String::new(), "401"),
            ("Authorization: Bearer wrong\r\n".to_owned(), "401"),
            (format!("{auth}Origin: https://evil.example\r\n"), "403"),
            (format!("{auth}Sec-Fetch-Site: cross-site\r\n"), "403"),
        ] {
            let resp = request(addr, &post(&headers)).await;
            assert!(
                resp.starts_with(&format!("HTTP/1.1 {status}")),
                "{headers}: {resp}"
            );
        }
        assert!(rx.try_recv().is_err(), "no press");
    }

    #[test]
    fn at_most_six_presses_a_minute() {
        let mut rate = PressRate::default();
        let t0 = Instant::now();
        for i in 0..RATE_PRESSES {
            assert!(rate.allow(t0 + Duration::from_secs(i as u64)), "press {i}");
        }
        assert!(!rate.allow(t0 + Duration::from_secs(10)));
        assert!(!rate.allow(t0 + Duration::from_secs(59)));
        // The first press leaves the window after a minute.
        assert!(rate.allow(t0 + Duration::from_secs(60)));
        assert!(!rate.allow(t0 + Duration::from_secs(60)));
    }
}
