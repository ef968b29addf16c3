//! `bye`: the sender leaves first, then the member left hears `bye`. Leaving first is what
//! stops the peer's answering `bye` from bouncing back forever.

use crate::outgoing::Outgoing;
use crate::rooms::{Departure, Rooms};
use doorbell_protocol::{EventName, ProtocolError};
use serde_json::Value;
use std::hash::Hash;

pub(crate) fn handle<M: Copy + Eq + Hash>(
    rooms: &mut Rooms<M>,
    id: M,
) -> Result<Vec<Outgoing<M>>, ProtocolError> {
    // A `bye` from someone in no room is the answering `bye` of a hung-up call: ignore it
    // quietly rather than answer with an error the peer might react to.
    let Some(departure) = rooms.leave(id) else {
        return Ok(Vec::new());
    };
    Ok(speak(departure))
}

/// Who hears of a departure (shared with the rooms kept in Redis, `cluster.rs`).
pub(crate) fn speak<M>(departure: Departure<M>) -> Vec<Outgoing<M>> {
    let room = departure.room;
    match departure.remaining {
        Some(other) => {
            tracing::info!(%room, "bye: member left, peer told");
            vec![Outgoing::new(
                other,
                EventName::Bye,
                Value::String(room.as_str().to_owned()),
            )]
        }
        None => {
            tracing::info!(%room, "bye: last member left, room deleted");
            Vec::new()
        }
    }
}
