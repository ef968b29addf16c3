//! `prepare`: a ringing page asks, before the tap, for what it needs to have its offer ready.
//! It joins nothing and the doorbell hears nothing; the answer only says how the room stands.

use crate::outgoing::Outgoing;
use crate::rooms::Peek;
use doorbell_protocol::{ErrorCode, EventName, ProtocolError, RoomId};
use serde_json::Value;
use std::hash::Hash;

/// What the sender is told, from the room's state (`peek`) and the sender's own room
/// (`current`; one node's table or the shared one). `Ok(None)`: the room rings, so the caller
/// hands out the ICE servers, as it does after a `joined`.
pub(crate) fn handle<M: Copy + Eq + Hash>(
    id: M,
    room: &RoomId,
    current: Option<&RoomId>,
    peek: Peek,
) -> Result<Option<Outgoing<M>>, ProtocolError> {
    if let Some(current) = current {
        // A member has had its servers already; a page in another room is confused.
        return Err(ProtocolError::new(
            ErrorCode::AlreadyInRoom,
            format!("you are already in room {current}"),
        ));
    }
    match peek {
        Peek::Ringing => Ok(None),
        Peek::Full => Ok(Some(Outgoing::new(
            id,
            EventName::Full,
            Value::String(room.as_str().to_owned()),
        ))),
        Peek::Absent => Err(ProtocolError::new(
            ErrorCode::NoSuchRoom,
            "this room does not exist (the call has ended)",
        )),
    }
}
