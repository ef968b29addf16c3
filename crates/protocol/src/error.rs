use serde::{Deserialize, Serialize};
use std::fmt;

/// Machine-readable reason carried in an `error` event's `code` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The event name is not part of the protocol.
    UnknownEvent,
    /// The payload has the wrong JSON type or misses a field.
    BadPayload,
    /// The room name is empty, too long, or has characters outside `[A-Za-z0-9_-]`.
    BadRoomName,
    /// An SDP or candidate exceeds its size limit.
    PayloadTooLarge,
    /// A tokenless client tried to join a room that does not exist (the call has ended).
    NoSuchRoom,
    /// A relayed event (`invite`, `ok`, `ice_candidate`, `bye`) from a client in no room.
    NotInRoom,
    /// A `join` from a client that is already in a room.
    AlreadyInRoom,
    /// The client sent too many events too fast.
    RateLimited,
    /// Creating a room needs the doorbell token.
    Unauthorized,
    /// The server holds too many connections (overall or from this address).
    TooManyConnections,
    /// The server is shutting down.
    ShuttingDown,
    /// The server cannot reach the state it shares with its other nodes (Redis); nothing
    /// changed, try again.
    Unavailable,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::UnknownEvent => "unknown_event",
            ErrorCode::BadPayload => "bad_payload",
            ErrorCode::BadRoomName => "bad_room_name",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::NoSuchRoom => "no_such_room",
            ErrorCode::NotInRoom => "not_in_room",
            ErrorCode::AlreadyInRoom => "already_in_room",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TooManyConnections => "too_many_connections",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::Unavailable => "unavailable",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refusal: what the server sends back as the `error` event's payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
}

impl ProtocolError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn payload(&self) -> ErrorPayload {
        ErrorPayload {
            code: self.code,
            message: self.message.clone(),
        }
    }
}

/// The JSON body of the `error` event: `{"code": "...", "message": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorPayload {
    pub code: ErrorCode,
    pub message: String,
}
