//! The events an entry point of the hub asks the socket layer to send. Its own module because
//! both the hub and the per-event handlers produce them; with the type in either of the two,
//! each would import the other.

use doorbell_protocol::{EventName, ProtocolError};
use serde_json::Value;

/// One event to emit to one connection.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Outgoing<M> {
    pub to: M,
    pub event: EventName,
    pub payload: Value,
}

impl<M> Outgoing<M> {
    pub fn new(to: M, event: EventName, payload: Value) -> Self {
        Self { to, event, payload }
    }

    pub fn error(to: M, error: &ProtocolError) -> Self {
        let payload = serde_json::to_value(error.payload()).unwrap_or(Value::Null);
        Self::new(to, EventName::Error, payload)
    }
}
