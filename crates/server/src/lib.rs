//! The doorbell signaling server. (In progress.)
