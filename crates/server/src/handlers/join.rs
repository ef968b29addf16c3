//! `join` / `create`: → `created`, or `joined` + `new_peer` to the first member, or `full`.

use crate::outgoing::Outgoing;
use crate::rooms::{CreateRight, JoinOutcome, Rooms};
use doorbell_protocol::{EventName, ProtocolError, RoomId};
use serde_json::Value;
use std::hash::Hash;

pub(crate) fn handle<M: Copy + Eq + Hash>(
    rooms: &mut Rooms<M>,
    id: M,
    room: RoomId,
    right: CreateRight,
) -> Result<Vec<Outgoing<M>>, ProtocolError> {
    let outcome = rooms.join(id, &room, right).inspect_err(|e| {
        tracing::info!(%room, code = %e.code, "join refused");
    })?;
    Ok(speak(id, &room, outcome))
}

/// What a join's outcome tells whom (shared with the rooms kept in Redis, `cluster.rs`).
pub(crate) fn speak<M: Copy>(id: M, room: &RoomId, outcome: JoinOutcome<M>) -> Vec<Outgoing<M>> {
    let name = Value::String(room.as_str().to_owned());
    match outcome {
        JoinOutcome::Created => {
            tracing::info!(%room, "room created");
            vec![Outgoing::new(id, EventName::Created, name)]
        }
        JoinOutcome::Joined { other } => {
            tracing::info!(%room, "second member joined");
            vec![
                Outgoing::new(id, EventName::Joined, name.clone()),
                Outgoing::new(other, EventName::NewPeer, name),
            ]
        }
        JoinOutcome::Full => {
            tracing::info!(%room, "join refused: room full");
            vec![Outgoing::new(id, EventName::Full, name)]
        }
    }
}
