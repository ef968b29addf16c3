//! What rings the bell. Each trigger is its own file behind [`Trigger`]; the agent runs every
//! configured trigger at once and treats each message on the channel as one press.

mod gpio;
mod http;
mod manual;
mod press;
mod stdin;

pub use gpio::{
    ButtonDebouncer, ButtonLevel, DEFAULT_DEBOUNCE, GpioButtonSpec, GpioTrigger, Polarity,
    debounce_presses,
};
pub use http::HttpTrigger;
pub use manual::ManualTrigger;
pub use press::{Press, Trigger, TriggerError};
pub use stdin::StdinTrigger;

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
