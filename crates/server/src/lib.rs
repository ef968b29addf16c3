//! The doorbell signaling server: HTTPS, the embedded web page, and
//! Socket.IO rooms of two for Engine.IO 3 and 4 clients at once.
//!
//! ```no_run
//! # async fn run() -> Result<(), doorbell_server::ServerError> {
//! use doorbell_server::{bind, Secret, ServerConfig, TlsConfig};
//! let mut config = ServerConfig::new(
//!     "127.0.0.1:0".parse().unwrap(),
//!     TlsConfig::SelfSigned { data_dir: "/tmp/doorbell".into(), hostnames: vec![] },
//! );
//! config.doorbell_token = Some(Secret::new("a-long-random-doorbell-token-0123456789"));
//! let server = bind(config).await?;
//! println!("https://{} {}", server.local_addr(), server.cert_fingerprint());
//! server.serve(async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```

pub mod acme;
mod adapter;
mod api;
mod api_state;
pub mod cluster;
mod cluster_events;
mod config;
mod connections;
mod delivery;
mod error;
mod handlers;
mod history;
mod hub;
pub mod ice;
mod live_view;
mod message;
pub mod metrics;
mod outgoing;
mod push;
mod push_api;
pub mod rate_limit;
mod replies;
mod request_head;
pub mod rooms;
mod server;
mod shutdown;
mod socket;
mod tcp_limit;
mod tls;
mod web;

pub use config::{Caps, Limits, OwnerApp, PushSettings, ServerConfig};
pub use doorbell_protocol::Secret;
pub use doorbell_store::{MAX_MESSAGE_BYTES, Retention, Store};
pub use error::{MIN_TOKEN_CHARS, ServerError};
pub use server::{BoundServer, HANDSHAKE_TIMEOUT, HEADER_READ_TIMEOUT, MetricsSource, bind};
pub use tls::{TlsConfig, fingerprint, pem_fingerprint};
