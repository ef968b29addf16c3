//! The doorbell agent: what it decides (the call flow and the connection around it, sans-IO),
//! the driver that carries those decisions out through the [`ports`], the triggers that ring
//! and the indicators that show it. The Socket.IO client, the WebRTC peer and the notifiers are
//! crates of their own (docs/architecture.md).

pub mod agent_flow;
pub mod call_flow;
pub mod driver;
pub mod entropy;
pub mod event_sink;
pub mod events;
pub mod gpio;
pub mod indicator;
pub mod metrics;
pub mod ports;
pub mod trigger;
