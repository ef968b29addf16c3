use std::time::Duration;

/// Everything that can go wrong between the agent and the signaling server. No variant ever
/// carries the token (URLs in messages are the redacted form).
#[derive(Debug, thiserror::Error)]
pub enum SignalingError {
    #[error(
        "bad signaling server address {server:?}: {reason}. Use https://HOST:PORT or http://HOST:PORT"
    )]
    BadUrl { server: String, reason: String },
    #[error(
        "cannot reach the signaling server at {server}: {reason}. Check the address and that the server is running"
    )]
    Connect { server: String, reason: String },
    #[error(
        "TLS with the signaling server failed: {0}. Check the CA certificate / fingerprint, or the URL's host name"
    )]
    Tls(String),
    #[error(
        "the server's certificate has SHA-256 fingerprint {actual}, not the pinned {expected}. Pin the server's current certificate or check that you reach the right server"
    )]
    FingerprintMismatch { expected: String, actual: String },
    #[error(
        "cannot use the CA certificate: {0}. Give the PEM file of the server's certificate or of its CA"
    )]
    BadCaCertificate(String),
    #[error("the signaling server refused the connection: {0}. Check the doorbell token")]
    Refused(String),
    #[error(
        "the signaling server does not speak the expected Socket.IO protocol: {0}. Check the URL and the Engine.IO version (3 for socket.io 2.x servers, 4 otherwise)"
    )]
    Protocol(String),
    #[error(
        "no answer from the signaling server within {0:?}. Check the address, firewall and that the server is running"
    )]
    Timeout(Duration),
    #[error("the signaling connection is closed; reconnect")]
    Closed,
}
