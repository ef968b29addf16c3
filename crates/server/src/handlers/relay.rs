//! `invite`, `ok`, `ice_candidate`: to the other member of the sender's room, nobody else.

use crate::outgoing::Outgoing;
use crate::rooms::Rooms;
use doorbell_protocol::{ClientEvent, ProtocolError};
use std::hash::Hash;

pub(crate) fn handle<M: Copy + Eq + Hash>(
    rooms: &Rooms<M>,
    id: M,
    event: &ClientEvent,
) -> Result<Vec<Outgoing<M>>, ProtocolError> {
    let (room, other) = rooms.peer_of(id)?;
    let name = event.name();
    match other {
        // The validated, re-serialised payload: a client cannot smuggle extra fields through.
        Some(other) => {
            tracing::debug!(%room, event = name.as_str(), "relayed");
            Ok(vec![Outgoing::new(other, name, event.payload())])
        }
        // Alone in the room: nobody to tell. Not an error; the peer may arrive later.
        None => {
            tracing::debug!(%room, event = name.as_str(), "dropped: no peer yet");
            Ok(Vec::new())
        }
    }
}
