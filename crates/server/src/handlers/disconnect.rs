//! A closed connection counts as a `bye` from its member.

use crate::outgoing::Outgoing;
use crate::rooms::Rooms;
use std::hash::Hash;

pub(crate) fn handle<M: Copy + Eq + Hash>(rooms: &mut Rooms<M>, id: M) -> Vec<Outgoing<M>> {
    super::bye::handle(rooms, id).unwrap_or_default()
}
