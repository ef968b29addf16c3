//! Room bookkeeping as plain data: who is in which room, with no I/O, so every
//! rule (two members at most, one room per client, empty rooms vanish) is unit-tested here and
//! the socket layer only turns outcomes into events.

use doorbell_protocol::{ErrorCode, ProtocolError, RoomId};
use std::collections::HashMap;
use std::hash::Hash;

/// At most two members: the doorbell and the owner.
pub const MAX_MEMBERS: usize = 2;

/// Whether a client may be the first member of a room (the doorbell token).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateRight {
    /// It presented the right token, or the server runs with `--open-rooms`.
    Allowed,
    /// It presented no token.
    NoToken,
    /// It presented a token, but not the right one.
    WrongToken,
}

/// What a successful `join` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome<M> {
    /// The room did not exist; the sender is its first member.
    Created,
    /// The sender is the second member; `other` is told `new_peer`.
    Joined { other: M },
    /// The room already has two members; nothing changed.
    Full,
}

/// A room as seen from outside it (`prepare`), changing nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peek {
    /// One member, the doorbell, waiting for someone to join.
    Ringing,
    /// Two members: someone answered.
    Full,
    /// No such room: never made, or over.
    Absent,
}

impl Peek {
    /// How a room with `members` members stands (one node's table or the shared one).
    pub fn from_members(members: usize) -> Self {
        match members {
            0 => Peek::Absent,
            n if n >= MAX_MEMBERS => Peek::Full,
            _ => Peek::Ringing,
        }
    }
}

/// What removing a member left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Departure<M> {
    pub room: RoomId,
    /// The member still in the room, who must hear `bye`; `None` when the room was deleted.
    pub remaining: Option<M>,
}

#[derive(Debug)]
pub struct Rooms<M> {
    members_by_room: HashMap<RoomId, Vec<M>>,
    room_by_member: HashMap<M, RoomId>,
}

impl<M> Default for Rooms<M> {
    fn default() -> Self {
        Self {
            members_by_room: HashMap::new(),
            room_by_member: HashMap::new(),
        }
    }
}

impl<M: Copy + Eq + Hash> Rooms<M> {
    pub fn join(
        &mut self,
        member: M,
        room: &RoomId,
        right: CreateRight,
    ) -> Result<JoinOutcome<M>, ProtocolError> {
        if let Some(current) = self.room_by_member.get(&member) {
            return Err(ProtocolError::new(
                ErrorCode::AlreadyInRoom,
                format!("you are already in room {current}; send bye before joining another"),
            ));
        }
        match self.members_by_room.get_mut(room) {
            Some(members) if members.len() >= MAX_MEMBERS => Ok(JoinOutcome::Full),
            Some(members) => {
                let other = members[0];
                members.push(member);
                self.room_by_member.insert(member, room.clone());
                Ok(JoinOutcome::Joined { other })
            }
            None => match right {
                CreateRight::Allowed => {
                    self.members_by_room.insert(room.clone(), vec![member]);
                    self.room_by_member.insert(member, room.clone());
                    Ok(JoinOutcome::Created)
                }
                CreateRight::NoToken => Err(ProtocolError::new(
                    ErrorCode::NoSuchRoom,
                    "this room does not exist (the call has ended); only the doorbell may open rooms",
                )),
                CreateRight::WrongToken => Err(ProtocolError::new(
                    ErrorCode::Unauthorized,
                    "the doorbell token is wrong; check the token configured on the doorbell",
                )),
            },
        }
    }

    /// Removes `member` from its room (on `bye` or disconnect). `None` if it was in no room.
    pub fn leave(&mut self, member: M) -> Option<Departure<M>> {
        let room = self.room_by_member.remove(&member)?;
        let members = self.members_by_room.get_mut(&room)?;
        members.retain(|m| *m != member);
        let remaining = members.first().copied();
        if remaining.is_none() {
            self.members_by_room.remove(&room);
        }
        Some(Departure { room, remaining })
    }

    /// The sender's room and the other member, if any, for relaying.
    pub fn peer_of(&self, member: M) -> Result<(&RoomId, Option<M>), ProtocolError> {
        let room = self.room_by_member.get(&member).ok_or_else(|| {
            ProtocolError::new(ErrorCode::NotInRoom, "you are in no room; send join first")
        })?;
        let other = self
            .members_by_room
            .get(room)
            .and_then(|ms| ms.iter().copied().find(|m| *m != member));
        Ok((room, other))
    }

    pub fn room_of(&self, member: M) -> Option<&RoomId> {
        self.room_by_member.get(&member)
    }

    pub fn peek(&self, room: &RoomId) -> Peek {
        Peek::from_members(self.members_by_room.get(room).map_or(0, Vec::len))
    }

    pub fn contains_room(&self, room: &RoomId) -> bool {
        self.members_by_room.contains_key(room)
    }

    pub fn room_count(&self) -> usize {
        self.members_by_room.len()
    }

    /// Empties the table (server shutdown), returning every room with its members.
    pub fn drain(&mut self) -> Vec<(RoomId, Vec<M>)> {
        self.room_by_member.clear();
        self.members_by_room.drain().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomId {
        RoomId::parse(name).unwrap()
    }

    #[test]
    fn first_creates_second_joins_third_is_full() {
        let mut rooms = Rooms::default();
        let r = room("r1");
        assert_eq!(
            rooms.join(1, &r, CreateRight::Allowed),
            Ok(JoinOutcome::Created)
        );
        assert_eq!(
            rooms.join(2, &r, CreateRight::NoToken),
            Ok(JoinOutcome::Joined { other: 1 })
        );
        assert_eq!(
            rooms.join(3, &r, CreateRight::Allowed),
            Ok(JoinOutcome::Full)
        );
        assert_eq!(rooms.room_of(3), None, "a refused member is in no room");
        assert_eq!(rooms.peer_of(1).unwrap().1, Some(2));
        assert_eq!(rooms.peer_of(2).unwrap().1, Some(1));
    }

    #[test]
    fn a_peek_tells_ringing_from_answered_and_over_and_changes_nothing() {
        let mut rooms = Rooms::default();
        let r = room("r1");
        assert_eq!(rooms.peek(&r), Peek::Absent);
        rooms.join(1, &r, CreateRight::Allowed).unwrap();
        assert_eq!(rooms.peek(&r), Peek::Ringing);
        assert_eq!(rooms.room_count(), 1);
        rooms.join(2, &r, CreateRight::NoToken).unwrap();
        assert_eq!(rooms.peek(&r), Peek::Full);
        rooms.leave(2);
        rooms.leave(1);
        assert_eq!(rooms.peek(&r), Peek::Absent);
    }

    #[test]
    fn tokenless_join_of_missing_room_creates_nothing() {
        let mut rooms: Rooms<u32> = Rooms::default();
        let err = rooms
            .join(1, &room("nope"), CreateRight::NoToken)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::NoSuchRoom);
        let err = rooms
            .join(1, &room("nope"), CreateRight::WrongToken)
            .unwrap_err();
        assert_eq!(err.code, ErrorCode::Unauthorized);
        assert_eq!(rooms.room_count(), 0);
        assert_eq!(rooms.room_of(1), None);
    }

    #[test]
    fn one_room_per_member() {
        let mut rooms = Rooms::default();
        rooms.join(1, &room("a"), CreateRight::Allowed).unwrap();
        let err = rooms.join(1, &room("b"), CreateRight::Allowed).unwrap_err();
        assert_eq!(err.code, ErrorCode::AlreadyInRoom);
        let err = rooms.join(1, &room("a"), CreateRight::Allowed).unwrap_err();
        assert_eq!(err.code, ErrorCode::AlreadyInRoom);
        assert!(!rooms.contains_room(&room("b")));
    }

    #[test]
    fn leaving_tells_who_remains_and_empty_rooms_vanish() {
        let mut rooms = Rooms::default();
        let r = room("r");
        rooms.join(1, &r, CreateRight::Allowed).unwrap();
        rooms.join(2, &r, CreateRight::Allowed).unwrap();
        assert_eq!(
            rooms.leave(1),
            Some(Departure {
                room: r.clone(),
                remaining: Some(2)
            })
        );
        assert!(rooms.contains_room(&r));
        assert_eq!(rooms.peer_of(2).unwrap().1, None);
        assert_eq!(
            rooms.leave(2),
            Some(Departure {
                room: r.clone(),
                remaining: None
            })
        );
        assert!(!rooms.contains_room(&r));
        assert_eq!(rooms.leave(2), None);
        // The room is gone: a tokenless visitor can no longer open it.
        let err = rooms.join(3, &r, CreateRight::NoToken).unwrap_err();
        assert_eq!(err.code, ErrorCode::NoSuchRoom);
    }

    #[test]
    fn a_member_who_left_may_join_again_and_refill_a_room() {
        let mut rooms = Rooms::default();
        let r = room("r");
        rooms.join(1, &r, CreateRight::Allowed).unwrap();
        rooms.join(2, &r, CreateRight::Allowed).unwrap();
        rooms.leave(2);
        assert_eq!(
            rooms.join(3, &r, CreateRight::NoToken),
            Ok(JoinOutcome::Joined { other: 1 })
        );
    }

    #[test]
    fn relaying_needs_a_room() {
        let rooms: Rooms<u32> = Rooms::default();
        assert_eq!(rooms.peer_of(9).unwrap_err().code, ErrorCode::NotInRoom);
    }

    #[test]
    fn drain_returns_every_room_and_empties_the_table() {
        let mut rooms = Rooms::default();
        rooms.join(1, &room("a"), CreateRight::Allowed).unwrap();
        rooms.join(2, &room("a"), CreateRight::Allowed).unwrap();
        rooms.join(3, &room("b"), CreateRight::Allowed).unwrap();
        let mut drained = rooms.drain();
        drained.sort();
        assert_eq!(drained, vec![(room("a"), vec![1, 2]), (room("b"), vec![3])]);
        assert_eq!(rooms.room_count(), 0);
        assert_eq!(rooms.room_of(1), None);
    }
}
