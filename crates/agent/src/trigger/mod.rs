//! What rings the bell. Each trigger is its own file behind [`Trigger`]; the agent runs every
//! configured trigger at once and treats each message on the channel as one press.

mod device;
mod gpio;
mod http;
mod manual;
mod press;
mod stdin;

pub use device::DeviceTrigger;
pub use gpio::{
    ButtonDebouncer, ButtonLevel, DEFAULT_DEBOUNCE, GpioButtonSpec, GpioTrigger, Polarity,
    debounce_presses,
};
pub use http::{HttpTrigger, PressRate, RATE_PRESSES, RATE_WINDOW};
pub use manual::ManualTrigger;
pub use press::{Press, Trigger, TriggerError};
pub use stdin::StdinTrigger;

use doorbell_protocol::Secret;
use std::net::SocketAddr;

/// Parses `--trigger` values: `stdin`, `http:[ADDR:]PORT`, `gpio:CHIP:LINE[:OPTION]...`.
/// `ring_secret` is what an HTTP trigger requires as its bearer token; without one, an HTTP
/// trigger is refused.
pub fn from_spec(
    spec: &str,
    ring_secret: Option<&Secret>,
) -> Result<Box<dyn Trigger>, TriggerError> {
    if spec == "stdin" {
        return Ok(Box::new(StdinTrigger::new(tokio::io::stdin())));
    }
    if let Some(addr) = spec.strip_prefix("http:") {
        // A bare port is loopback: nothing on the network rings unless asked for.
        let addr = match addr.parse::<u16>() {
            Ok(port) => SocketAddr::from(([127, 0, 0, 1], port)),
            Err(_) => addr.parse().map_err(|e| TriggerError::BadSpec {
                spec: spec.to_owned(),
                why: format!("expected http:PORT or http:ADDRESS:PORT, e.g. http:8080 ({e})"),
            })?,
        };
        let secret =
            ring_secret
                .filter(|s| !s.is_empty())
                .ok_or_else(|| TriggerError::BadSpec {
                    spec: spec.to_owned(),
                    why: "an HTTP trigger needs a ring secret (its callers send \
                      Authorization: Bearer SECRET): set ring-secret-file, DOORBELL_RING_SECRET \
                      or a systemd credential ring-secret"
                        .into(),
                })?;
        return Ok(Box::new(HttpTrigger::new(addr, secret.clone())));
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
