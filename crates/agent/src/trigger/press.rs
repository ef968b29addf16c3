//! What every trigger shares: a press, the trait, and how a trigger fails.

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;

/// One press of the button (or its stand-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Press;

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("cannot listen for ring requests on {addr}: {source} (is the port free?)")]
    Bind {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("reading presses from standard input failed: {0}")]
    Stdin(std::io::Error),
    #[error("bad trigger {spec:?}: {why}")]
    BadSpec { spec: String, why: String },
    /// The button's GPIO line cannot be used or stopped working; the text says what to check.
    #[error("{0}")]
    Gpio(String),
}

pub trait Trigger: Send + 'static {
    /// A short name for logs, e.g. `stdin` or `http:127.0.0.1:8080`.
    fn name(&self) -> String;
    /// Sends one [`Press`] per press until the source ends (`Ok`) or breaks (`Err`). The
    /// agent stops when every trigger has ended and no call is going on.
    fn run(
        self: Box<Self>,
        presses: mpsc::Sender<Press>,
    ) -> BoxFuture<'static, Result<(), TriggerError>>;
}
