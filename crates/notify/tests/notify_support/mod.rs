//! Shared parts of the notification tests: a ring with a real 640x480 JPEG snapshot,
//! and an HTTP stand-in on loopback that records every request and answers like the service
//! it stands in for (a per-service answer function, with scripted overrides for errors).
#![allow(dead_code)]

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use doorbell_notify::{ChannelOutcome, Notifier, Ring};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

pub const LINK_ROOM: &str = "Zm9vYmFyYmF6cXV4MTIz";
pub const LINK: &str = "https://bell.example/?room=Zm9vYmFyYmF6cXV4MTIz";
pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 480;

pub fn snapshot_640x480() -> Arc<Vec<u8>> {
    // A real JPEG of a gradient, made by the same encoder the agent uses.
    let (w, h) = (WIDTH as usize, HEIGHT as usize);
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            rgb.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, 128]);
        }
    }
    let mut jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut jpeg, 80)
        .encode(
            &rgb,
            WIDTH as u16,
            HEIGHT as u16,
            jpeg_encoder::ColorType::Rgb,
        )
        .unwrap();
    Arc::new(jpeg)
}

pub fn ring(with_snapshot: bool) -> Arc<Ring> {
    Arc::new(Ring {
        at: SystemTime::now(),
        link: Some(LINK.into()),
        room: doorbell_protocol::RoomId::parse(LINK_ROOM).ok(),
        snapshot_jpeg: with_snapshot.then(snapshot_640x480),
        message: None,
    })
}

/// Decodes a JPEG and returns its size.
pub fn jpeg_size(jpeg: &[u8]) -> (u32, u32) {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    decoder.decode().expect("the JPEG decodes");
    let info = decoder.info().expect("the JPEG has a header");
    (u32::from(info.width), u32::from(info.height))
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: Method,
    /// Path and query, e.g. `/bot123:abc/sendPhoto`.
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("ASCII header").to_owned())
    }

    /// The multipart/form-data fields: name → (file name, content type, bytes).
    pub async fn multipart(&self) -> HashMap<String, (Option<String>, Option<String>, Vec<u8>)> {
        let request = Request::builder()
            .header(
                "content-type",
                self.header("content-type").expect("a content-type"),
            )
            .body(Body::from(self.body.clone()))
            .unwrap();
        let mut form = Multipart::from_request(request, &())
            .await
            .expect("multipart body");
        let mut fields = HashMap::new();
        while let Some(field) = form.next_field().await.expect("a well-formed field") {
            let name = field.name().expect("a named field").to_owned();
            let file_name = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let bytes = field.bytes().await.expect("field bytes").to_vec();
            assert!(
                fields
                    .insert(name.clone(), (file_name, content_type, bytes))
                    .is_none(),
                "field {name} sent twice"
            );
        }
        fields
    }

    /// The application/x-www-form-urlencoded fields.
    pub fn form(&self) -> HashMap<String, String> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }
}

/// How the stand-in answers one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Reply {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
    /// Never answer (a hung service).
    Hang,
}

impl Answer {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Answer::Reply {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
        }
    }

    pub fn with_header(mut self, name: &'static str, value: &str) -> Self {
        if let Answer::Reply { headers, .. } = &mut self {
            headers.push((name, value.to_owned()));
        }
        self
    }
}

type Answerer = Arc<dyn Fn(&Recorded) -> Answer + Send + Sync>;

#[derive(Clone)]
struct Shared {
    recorded: mpsc::UnboundedSender<Recorded>,
    scripted: Arc<Mutex<VecDeque<Answer>>>,
    answer: Answerer,
}

pub struct StandIn {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub requests: mpsc::UnboundedReceiver<Recorded>,
    scripted: Arc<Mutex<VecDeque<Answer>>>,
}

impl StandIn {
    /// Serves on an ephemeral loopback port; `answer` plays the service.
    pub async fn start(answer: impl Fn(&Recorded) -> Answer + Send + Sync + 'static) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let scripted = Arc::new(Mutex::new(VecDeque::new()));
        let shared = Shared {
            recorded: tx,
            scripted: scripted.clone(),
            answer: Arc::new(answer),
        };
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(shared)
            .layer(axum::extract::DefaultBodyLimit::max(16 * 1024 * 1024));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base,
            requests: rx,
            scripted,
        }
    }

    /// Like [`StandIn::start`] over HTTPS with the given certificate (`base` is `https://…`).
    pub async fn start_tls(
        cert_pem: &str,
        key_pem: &str,
        answer: impl Fn(&Recorded) -> Answer + Send + Sync + 'static,
    ) -> Self {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let (tx, rx) = mpsc::unbounded_channel();
        let scripted = Arc::new(Mutex::new(VecDeque::new()));
        let shared = Shared {
            recorded: tx,
            scripted: scripted.clone(),
            answer: Arc::new(answer),
        };
        let app = axum::Router::new().fallback(handle).with_state(shared);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", tcp.local_addr().unwrap());
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        };
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base,
            requests: rx,
            scripted,
        }
    }

    /// The next requests get these answers, in order, before the service's own.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.scripted.lock().unwrap().extend(answers);
    }

    pub async fn next_request(&mut self) -> Recorded {
        tokio::time::timeout(Duration::from_secs(30), self.requests.recv())
            .await
            .expect("a request within 30 s")
            .expect("the stand-in is running")
    }

    pub fn drain(&mut self) -> Vec<Recorded> {
        let mut all = Vec::new();
        while let Ok(r) = self.requests.try_recv() {
            all.push(r);
        }
        all
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method,
        path: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        headers: parts.headers,
        body,
    };
    let scripted = shared.scripted.lock().unwrap().pop_front();
    let answer = scripted.unwrap_or_else(|| (shared.answer)(&recorded));
    let _ = shared.recorded.send(recorded);
    match answer {
        Answer::Hang => std::future::pending::<Response>().await,
        Answer::Reply {
            status,
            headers,
            body,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
    }
}

/// Sends one ring through the real dispatcher and returns the channel's outcome event.
pub async fn deliver(
    notifier: Arc<dyn Notifier>,
    ring: Arc<Ring>,
    deadline: Duration,
) -> ChannelOutcome {
    let (tx, mut rx) = mpsc::unbounded_channel();
    doorbell_notify::dispatch(&[notifier], ring, deadline, tx);
    rx.recv().await.expect("one outcome event")
}

pub fn failed_reason(event: &ChannelOutcome) -> String {
    match &event.result {
        Err(reason) => reason.clone(),
        Ok(()) => panic!("expected a failure, got {event:?}"),
    }
}

pub fn assert_sent(event: &ChannelOutcome) {
    assert!(event.result.is_ok(), "expected sent, got {event:?}");
}

/// A `[[notify]]` table from TOML text.
pub fn table(text: &str) -> toml::Table {
    text.parse::<toml::Table>().expect("valid TOML")
}

/// Builds exactly one notifier from a table, with no environment.
pub fn build_one(text: &str) -> Arc<dyn Notifier> {
    let mut built = doorbell_notify::build_notifiers_with_env(&[table(text)], &|_| None)
        .unwrap_or_else(|problems| panic!("config problems: {problems:?}"));
    assert_eq!(built.len(), 1);
    built.remove(0)
}

struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            // A client that refuses our certificate fails the handshake; wait for the next.
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

/// A self-signed certificate for 127.0.0.1 and localhost: (cert PEM, key PEM).
pub fn self_signed() -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}
