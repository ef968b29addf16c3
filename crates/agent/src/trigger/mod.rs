//! What rings the bell. Each trigger is its own file behind [`Trigger`]; the agent runs every
//! configured trigger at once and treats each message on the channel as one press.

mod gpio;
mod http;
mod manual;
mod stdin;

pub use gpio::{
    ButtonDebouncer, ButtonLevel, DEFAULT_DEBOUNCE, GpioButtonSpec, GpioTrigger, Polarity,
    debounce_presses,
};
pub use http::HttpTrigger;
pub use manual::ManualTrigger;
pub use stdin::StdinTrigger;

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

/// Parses `--trigger` values: `stdin`, `http:ADDR:PORT`, `gpio:CHIP:LINE[:OPTION]...`.
pub fn from_spec(spec: &str) -> Result<Box<dyn Trigger>, TriggerError> {
    if spec == "stdin" {
        return Ok(Box::new(StdinTrigger::new(tokio::io::stdin())));
    }
    if let Some(addr) = spec.strip_prefix("http:") {
        let addr = addr.parse().map_err(|e| TriggerError::BadSpec {
            spec: spec.to_owned(),
            why: format!("expected http:ADDRESS:PORT, e.g. http:127.0.0.1:8080 ({e})"),
        })?;
        return Ok(Box::new(HttpTrigger::new(addr)));
    }
    if let Some(gpio) = spec.strip_prefix("gpio:") {
        let parsed = GpioButtonSpec::parse(gpio).map_err(|why| TriggerError::BadSpec {
            spec: spec.to_owned(),
            why,
        })?;
        return Ok(Box::new(GpioTrigger::new(parsed)));
    }
    Err(TriggerError::BadSpec {
        spec: spec.to_owned(),
        why: "known triggers: stdin, http:ADDRESS:PORT, gpio:CHIP:LINE".into(),
    })
}
