use doorbell_protocol::wire::EngineIoVersion;
use std::fmt;
use std::time::Duration;

/// How the client decides to trust the signaling server's TLS certificate (`https://` only).
#[derive(Clone, PartialEq, Eq)]
pub enum ServerTrust {
    /// Verify normally against these CA certificates (PEM file contents). A self-signed server
    /// certificate works as its own CA. The hostname checked is the URL's host.
    CaPem(String),
    /// Accept exactly the certificate whose DER encoding has this SHA-256 hash (the handshake
    /// signature is still verified, so only the holder of the key passes).
    Fingerprint([u8; 32]),
    /// Accept any certificate. Only for tests and first setup; the caller should warn loudly.
    Insecure,
    /// Verify against the public web PKI (Mozilla's roots, from `webpki-roots`).
    WebPki,
}

impl fmt::Debug for ServerTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The PEM is public but long; its size is enough to tell configs apart.
            ServerTrust::CaPem(pem) => write!(f, "CaPem({} bytes)", pem.len()),
            ServerTrust::Fingerprint(hash) => {
                write!(f, "Fingerprint({})", super::format_fingerprint(hash))
            }
            ServerTrust::Insecure => f.write_str("Insecure"),
            ServerTrust::WebPki => f.write_str("WebPki"),
        }
    }
}

/// Where and how to reach the signaling server.
#[derive(Clone)]
pub struct SignalingConfig {
    /// `https://host:port` (our server) or `http://host:port` (a lab server). A path, if any,
    /// is the prefix in front of `/socket.io/`.
    pub server: String,
    /// The doorbell token. Engine.IO 4 sends it in the Socket.IO auth payload; Engine.IO 3 can
    /// only send it in the URL's query string. Never logged.
    pub token: Option<String>,
    pub trust: ServerTrust,
    pub engine_io: EngineIoVersion,
    /// Bound on everything up to the Socket.IO connect reply: TCP, TLS, websocket, handshake.
    pub connect_timeout: Duration,
}

impl SignalingConfig {
    /// A config with the defaults: no token, web PKI trust, Engine.IO 4, 10 s connect timeout.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            server: server.into(),
            token: None,
            trust: ServerTrust::WebPki,
            engine_io: EngineIoVersion::V4,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

impl fmt::Debug for SignalingConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalingConfig")
            .field("server", &self.server)
            // The token is a secret: say only whether there is one.
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("trust", &self.trust)
            .field("engine_io", &self.engine_io)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_token() {
        let mut config = SignalingConfig::new("https://example.org");
        config.token = Some("s3cret-token".into());
        let text = format!("{config:?}");
        assert!(!text.contains("s3cret-token"), "{text}");
        assert!(text.contains("<redacted>"), "{text}");
    }
}
