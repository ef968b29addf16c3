use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The shortest doorbell token accepted: 16 random bytes are 22 base64 characters. Length is
/// the one thing a server can check; `head -c 32 /dev/urandom | base64` gives 44.
pub const MIN_TOKEN_CHARS: usize = 22;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "no doorbell token configured: set --doorbell-token, DOORBELL_TOKEN or \
         --doorbell-token-file so only your doorbell can open rooms, or pass --open-rooms to let anyone"
    )]
    NoTokenNoOpenRooms,
    #[error("the doorbell token is empty; give a non-empty token")]
    EmptyToken,
    #[error(
        "the doorbell token has {0} characters, too few to be 128 random bits: whoever guesses \
         it can ring and open rooms; make one with `head -c 32 /dev/urandom | base64` \
         (at least {min} characters)",
        min = MIN_TOKEN_CHARS
    )]
    WeakToken(usize),
    #[error(
        "cannot listen on {addr}: {source} (is another server using the port? try another --listen)"
    )]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot read {what} {path}: {source}")]
    ReadFile {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("cannot write {path}: {source} (check that --data-dir is writable)")]
    WriteFile { path: PathBuf, source: io::Error },
    #[error("{path} holds no PEM certificate; give a PEM file with -----BEGIN CERTIFICATE-----")]
    NoCertificate { path: PathBuf },
    #[error(
        "bad TLS certificate or key: {0} (check that --cert and --key are PEM and belong together)"
    )]
    Tls(String),
    #[error(
        "cannot serve metrics on {addr}: {source} (is another process using the port? try another --metrics-listen)"
    )]
    MetricsBind { addr: SocketAddr, source: io::Error },
    #[error("--redis {0}")]
    Redis(String),
    #[error("automatic HTTPS (ACME): {0}")]
    Acme(String),
    #[error("cannot make a self-signed certificate: {0}")]
    CertificateGeneration(String),
    #[error("server I/O error: {0}")]
    Io(#[from] io::Error),
}
