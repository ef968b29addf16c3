use crate::error::{ErrorCode, ErrorPayload, ProtocolError};
use crate::ice_candidate::IceCandidate;
use crate::ice_servers::IceServers;
use crate::room_id::RoomId;
use crate::session_description::{SdpType, SessionDescription};
use serde_json::Value;

/// Every event name of the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventName {
    Join,
    /// Alias of `join`: the lab text says `create`, its server only knows `join`.
    Create,
    Created,
    Joined,
    NewPeer,
    Full,
    Invite,
    Ok,
    IceCandidate,
    Bye,
    Error,
    /// The STUN/TURN servers for this member's call (our server only; the lab's never sends it).
    IceServers,
    /// A paired owner asks to see the door without a ring (our server only, to the doorbell):
    /// the payload is the room to open for it.
    Live,
    /// A paired owner answers a ring with a recorded reply (our server only, to the doorbell):
    /// `{"id": N, "end": bool}`.
    Reply,
    /// The owners' recorded replies changed: the doorbell refreshes its copies (our server
    /// only, to the doorbell; no payload).
    RepliesChanged,
    /// A ringing page asks, before the owner taps Answer, for what it needs to have its offer
    /// ready: the payload is the room; the answer is `ice_servers` while the room rings,
    /// `full` once someone answered, `error` `no_such_room` once it is over. Nothing joins and
    /// the doorbell hears nothing (our server only; the lab's ignores it).
    Prepare,
}

impl EventName {
    pub const ALL: [EventName; 16] = [
        EventName::Join,
        EventName::Create,
        EventName::Created,
        EventName::Joined,
        EventName::NewPeer,
        EventName::Full,
        EventName::Invite,
        EventName::Ok,
        EventName::IceCandidate,
        EventName::Bye,
        EventName::Error,
        EventName::IceServers,
        EventName::Live,
        EventName::Reply,
        EventName::RepliesChanged,
        EventName::Prepare,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Join => "join",
            EventName::Create => "create",
            EventName::Created => "created",
            EventName::Joined => "joined",
            EventName::NewPeer => "new_peer",
            EventName::Full => "full",
            EventName::Invite => "invite",
            EventName::Ok => "ok",
            EventName::IceCandidate => "ice_candidate",
            EventName::Bye => "bye",
            EventName::Error => "error",
            EventName::IceServers => "ice_servers",
            EventName::Live => "live",
            EventName::Reply => "reply",
            EventName::RepliesChanged => "replies_changed",
            EventName::Prepare => "prepare",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// A validated event sent by a client (doorbell agent or browser) to the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// `join` or `create`.
    Join(RoomId),
    /// `prepare`: a ringing page readying its offer before the tap.
    Prepare(RoomId),
    Invite(SessionDescription),
    Ok(SessionDescription),
    /// `None` is the end-of-candidates marker (`null` payload).
    IceCandidate(Option<IceCandidate>),
    /// The payload names the sender's room; the server uses the room it knows instead.
    Bye(Option<RoomId>),
}

impl ClientEvent {
    /// Validates one client event. Unknown names, server-only names and wrong payloads are
    /// refused with the matching [`ErrorCode`].
    pub fn parse(name: &str, payload: &Value) -> Result<Self, ProtocolError> {
        let Some(event) = EventName::parse(name) else {
            return Err(ProtocolError::new(
                ErrorCode::UnknownEvent,
                format!("unknown event {:?}", truncate(name, 40)),
            ));
        };
        match event {
            EventName::Join | EventName::Create => Ok(ClientEvent::Join(room_name(payload)?)),
            EventName::Prepare => Ok(ClientEvent::Prepare(room_name(payload)?)),
            EventName::Invite => Ok(ClientEvent::Invite(SessionDescription::from_json(
                payload,
                SdpType::Offer,
            )?)),
            EventName::Ok => Ok(ClientEvent::Ok(SessionDescription::from_json(
                payload,
                SdpType::Answer,
            )?)),
            EventName::IceCandidate => {
                Ok(ClientEvent::IceCandidate(IceCandidate::from_json(payload)?))
            }
            // Some pages send `bye` with no argument; that is still a hang-up.
            EventName::Bye => match payload {
                Value::Null => Ok(ClientEvent::Bye(None)),
                _ => Ok(ClientEvent::Bye(Some(room_name(payload)?))),
            },
            EventName::Created
            | EventName::Joined
            | EventName::NewPeer
            | EventName::Full
            | EventName::Error
            | EventName::IceServers
            | EventName::Live
            | EventName::Reply
            | EventName::RepliesChanged => Err(ProtocolError::new(
                ErrorCode::UnknownEvent,
                format!("{:?} is sent by the server, not by clients", event.as_str()),
            )),
        }
    }

    pub fn name(&self) -> EventName {
        match self {
            ClientEvent::Join(_) => EventName::Join,
            ClientEvent::Prepare(_) => EventName::Prepare,
            ClientEvent::Invite(_) => EventName::Invite,
            ClientEvent::Ok(_) => EventName::Ok,
            ClientEvent::IceCandidate(_) => EventName::IceCandidate,
            ClientEvent::Bye(_) => EventName::Bye,
        }
    }

    /// The JSON argument to put on the wire for this event.
    pub fn payload(&self) -> Value {
        match self {
            ClientEvent::Join(room) | ClientEvent::Prepare(room) => {
                Value::String(room.as_str().to_owned())
            }
            ClientEvent::Invite(d) | ClientEvent::Ok(d) => d.to_json(),
            ClientEvent::IceCandidate(c) => c.as_ref().map_or(Value::Null, IceCandidate::to_json),
            ClientEvent::Bye(room) => room
                .as_ref()
                .map_or(Value::Null, |r| Value::String(r.as_str().to_owned())),
        }
    }
}

/// An event as a client receives it from the server (its own replies and relayed events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerEvent {
    Created(RoomId),
    Joined(RoomId),
    NewPeer(RoomId),
    Full(RoomId),
    Invite(SessionDescription),
    Ok(SessionDescription),
    IceCandidate(Option<IceCandidate>),
    Bye,
    Error(ErrorPayload),
    IceServers(IceServers),
    /// Open this room for a live view: no chime, no notification.
    Live(RoomId),
    /// Play recorded reply `id` on the speaker now; `end`: then stop ringing.
    Reply {
        id: i64,
        end: bool,
    },
    RepliesChanged,
}

impl ServerEvent {
    pub fn parse(name: &str, payload: &Value) -> Result<Self, ProtocolError> {
        let Some(event) = EventName::parse(name) else {
            return Err(ProtocolError::new(
                ErrorCode::UnknownEvent,
                format!("unknown event {:?}", truncate(name, 40)),
            ));
        };
        Ok(match event {
            EventName::Created => ServerEvent::Created(room_name(payload)?),
            EventName::Joined => ServerEvent::Joined(room_name(payload)?),
            EventName::NewPeer => ServerEvent::NewPeer(room_name(payload)?),
            EventName::Full => ServerEvent::Full(room_name(payload)?),
            EventName::Invite => {
                ServerEvent::Invite(SessionDescription::from_json(payload, SdpType::Offer)?)
            }
            EventName::Ok => {
                ServerEvent::Ok(SessionDescription::from_json(payload, SdpType::Answer)?)
            }
            EventName::IceCandidate => ServerEvent::IceCandidate(IceCandidate::from_json(payload)?),
            EventName::Bye => ServerEvent::Bye,
            EventName::IceServers => ServerEvent::IceServers(IceServers::from_json(payload)?),
            EventName::Live => ServerEvent::Live(room_name(payload)?),
            EventName::Reply => match (payload["id"].as_i64(), payload["end"].as_bool()) {
                (Some(id), Some(end)) => ServerEvent::Reply { id, end },
                _ => {
                    return Err(ProtocolError::new(
                        ErrorCode::BadPayload,
                        "expected {\"id\": number, \"end\": bool}",
                    ));
                }
            },
            EventName::RepliesChanged => ServerEvent::RepliesChanged,
            EventName::Error => {
                ServerEvent::Error(serde_json::from_value(payload.clone()).unwrap_or_else(|_| {
                    ErrorPayload {
                        code: ErrorCode::BadPayload,
                        message: truncate(&payload.to_string(), 200).to_owned(),
                    }
                }))
            }
            EventName::Join | EventName::Create | EventName::Prepare => {
                return Err(ProtocolError::new(
                    ErrorCode::UnknownEvent,
                    format!("{:?} is sent by clients, not by the server", event.as_str()),
                ));
            }
        })
    }
}

fn room_name(payload: &Value) -> Result<RoomId, ProtocolError> {
    match payload {
        Value::String(s) => RoomId::parse(s),
        _ => Err(ProtocolError::new(
            ErrorCode::BadPayload,
            "expected the room name as a string",
        )),
    }
}

fn truncate(s: &str, max_chars: usize) -> &str {
    match s.char_indices().nth(max_chars) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_doorbells_own_events_parse_and_bad_replies_are_refused() {
        assert_eq!(
            ServerEvent::parse("reply", &json!({"id": 7, "end": true})).unwrap(),
            ServerEvent::Reply { id: 7, end: true }
        );
        assert_eq!(
            ServerEvent::parse("replies_changed", &Value::Null).unwrap(),
            ServerEvent::RepliesChanged
        );
        assert_eq!(
            ServerEvent::parse("live", &json!("LiveRoom1")).unwrap(),
            ServerEvent::Live(RoomId::parse("LiveRoom1").unwrap())
        );
        for bad in [json!({"id": "7", "end": true}), json!({"id": 7}), json!(7)] {
            let error = ServerEvent::parse("reply", &bad).unwrap_err();
            assert_eq!(error.code, ErrorCode::BadPayload, "{bad}");
        }
        assert!(ClientEvent::parse("reply", &json!({"id": 7, "end": true})).is_err());
    }

    #[test]
    fn join_and_create_are_the_same() {
        let a = ClientEvent::parse("join", &json!("r1")).unwrap();
        let b = ClientEvent::parse("create", &json!("r1")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.payload(), json!("r1"));
    }

    #[test]
    fn every_client_event_round_trips() {
        let events = [
            ("join", json!("room")),
            ("prepare", json!("room")),
            ("invite", json!({"type":"offer","sdp":"v=0\r\n"})),
            ("ok", json!({"type":"answer","sdp":"v=0\r\n"})),
            (
                "ice_candidate",
                json!({"candidate":"candidate:1","sdpMid":"0","sdpMLineIndex":0}),
            ),
            ("ice_candidate", Value::Null),
            ("bye", json!("room")),
            ("bye", Value::Null),
        ];
        for (name, payload) in events {
            let e = ClientEvent::parse(name, &payload).unwrap();
            assert_eq!(e.name().as_str(), name);
            assert_eq!(e.payload(), payload);
        }
    }

    #[test]
    fn refusals_carry_the_right_code() {
        let cases = [
            ("nonsense", json!("r"), ErrorCode::UnknownEvent),
            ("created", json!("r"), ErrorCode::UnknownEvent),
            ("join", json!(5), ErrorCode::BadPayload),
            ("join", json!({"room":"r"}), ErrorCode::BadPayload),
            ("join", json!("bad room"), ErrorCode::BadRoomName),
            ("prepare", json!("bad room"), ErrorCode::BadRoomName),
            ("prepare", Value::Null, ErrorCode::BadPayload),
            (
                "invite",
                json!({"type":"answer","sdp":"x"}),
                ErrorCode::BadPayload,
            ),
            ("ok", json!([]), ErrorCode::BadPayload),
            ("bye", json!(1), ErrorCode::BadPayload),
        ];
        for (name, payload, code) in cases {
            let e = ClientEvent::parse(name, &payload).expect_err(name);
            assert_eq!(e.code, code, "{name} {payload}");
        }
    }

    #[test]
    fn server_events_parse() {
        assert_eq!(
            ServerEvent::parse("created", &json!("abc")).unwrap(),
            ServerEvent::Created(RoomId::parse("abc").unwrap())
        );
        assert_eq!(
            ServerEvent::parse("bye", &json!("abc")).unwrap(),
            ServerEvent::Bye
        );
        let e = ServerEvent::parse("error", &json!({"code":"no_such_room","message":"m"})).unwrap();
        assert_eq!(
            e,
            ServerEvent::Error(ErrorPayload {
                code: ErrorCode::NoSuchRoom,
                message: "m".into()
            })
        );
    }
}
