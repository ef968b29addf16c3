//! The doorbell signaling protocol as plain data: event names, payload types,
//! room ids and their validation, and the Engine.IO / Socket.IO packet framing our own client
//! speaks. Nothing here does I/O or needs a runtime, so the server, the agent and the fuzzers
//! share exactly one definition of what is valid.

pub mod backoff;
mod call_report;
mod error;
mod event;
mod ice_candidate;
pub mod ice_servers;
pub mod limits;
pub mod metrics_text;
mod room_id;
mod secret;
pub mod serde_keys;
mod session_description;
pub mod turn_rest;
pub mod wall_clock;
pub mod wire;

pub use call_report::{CallStats, PeerEvent};
pub use error::{ErrorCode, ErrorPayload, ProtocolError};
pub use event::{ClientEvent, EventName, ServerEvent};
pub use ice_candidate::{IceCandidate, is_internal_address};
pub use ice_servers::{IceServer, IceServers, IceTransportPolicy};
pub use room_id::RoomId;
pub use secret::Secret;
pub use session_description::{SdpType, SessionDescription};
