//! The doorbell agent: the call flow (one explicit state machine), the signaling client, the
//! WebRTC peer, triggers and notifiers.

pub mod call_flow;
pub mod events;
pub mod peer;
pub mod signaling;
