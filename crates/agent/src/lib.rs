//! The doorbell agent: the call flow (one explicit state machine), the signaling client, the
//! WebRTC peer, triggers and notifiers.

pub mod backoff;
pub mod call_flow;
pub mod event_sink;
pub mod events;
pub mod indicator;
pub mod media_settings;
pub mod notify;
pub mod peer;
pub mod runtime;
pub mod signaling;
pub mod snapshot;
pub mod trigger;
