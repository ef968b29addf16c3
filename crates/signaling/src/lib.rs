//! Our own Socket.IO client, websocket transport only, for the subset the doorbell uses: the
//! default namespace, events with exactly one JSON argument, Engine.IO 3 and 4.
//!
//! The maintained Rust Socket.IO clients fail against our servers, so this
//! speaks the framing of [`doorbell_protocol::wire`] over `tokio-tungstenite`, with TLS by
//! rustls (ring provider).
//!
//! Secrets: nothing here logs the token, the auth payload or a URL that carries it, and no
//! error message holds them. But `tungstenite` itself logs the whole HTTP request (the
//! Engine.IO 3 URL with `&token=`) and every frame's payload (the Engine.IO 4 auth packet) at
//! `trace` level through the `log` crate: whoever bridges `log` into `tracing` must cap the
//! `tungstenite` and `tokio_tungstenite` targets at `debug`.
//!
//! ```no_run
//! # async fn demo() -> Result<(), doorbell_signaling::SignalingError> {
//! use doorbell_signaling::{connect, SignalingConfig, ServerTrust};
//! use doorbell_protocol::{ClientEvent, RoomId};
//! let mut config = SignalingConfig::new("https://127.0.0.1:8443");
//! config.trust = ServerTrust::Insecure;
//! let mut connection = connect(&config).await?;
//! let room = RoomId::parse("room1").expect("valid");
//! connection.sender().send(ClientEvent::Join(room))?;
//! while let Some(event) = connection.recv().await {
//!     println!("{event:?}");
//! }
//! # Ok(()) }
//! ```

mod config;
mod connection;
mod endpoint;
mod error;
mod fingerprint;
mod handshake;
mod tls;

pub use config::{ServerTrust, SignalingConfig};
pub use connection::{SignalingConnection, SignalingSender, connect, connect_over_stream};
pub use error::SignalingError;
pub use fingerprint::{format_fingerprint, parse_fingerprint};
pub use tls::client_config as tls_client_config;
