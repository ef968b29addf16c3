//! The `ice_servers` event: the STUN and TURN servers the signaling server hands each room
//! member right after `created`/`joined`, with TURN credentials made for that member and that
//! call (the TURN REST convention: username `EXPIRY:LABEL`, credential
//! `base64(HMAC-SHA1(secret, username))`). The payload has the shape of the browser's
//! `RTCConfiguration` subset it feeds:
//! `{"iceServers":[{"urls":[…],"username","credential"}],"iceTransportPolicy":"all"|"relay","ttl":s}`.

use crate::error::{ErrorCode, ProtocolError};
use serde_json::{Value, json};
use std::fmt;

/// At most this many servers, each with at most this many URLs: more is an attack or a mistake.
pub const MAX_ICE_SERVERS: usize = 8;
pub const MAX_URLS_PER_SERVER: usize = 8;
/// Longest URL, username or credential accepted, in bytes.
pub const MAX_ICE_FIELD_BYTES: usize = 512;

/// One STUN or TURN server.
#[derive(Clone, PartialEq, Eq)]
pub struct IceServer {
    /// `stun:`, `stuns:`, `turn:` or `turns:` URLs.
    pub urls: Vec<String>,
    pub username: Option<String>,
    /// A TURN credential: time-limited, but still never logged.
    pub credential: Option<String>,
}

impl fmt::Debug for IceServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field(
                "credential",
                &self.credential.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Which candidates a peer may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IceTransportPolicy {
    #[default]
    All,
    /// Relay candidates only: neither end learns the other's address.
    Relay,
}

impl IceTransportPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            IceTransportPolicy::All => "all",
            IceTransportPolicy::Relay => "relay",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "all" => Some(IceTransportPolicy::All),
            "relay" => Some(IceTransportPolicy::Relay),
            _ => None,
        }
    }
}

/// The payload of `ice_servers`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IceServers {
    pub servers: Vec<IceServer>,
    pub policy: IceTransportPolicy,
    /// How long the credentials stay valid, in seconds.
    pub ttl_secs: u64,
}

fn bad(message: impl Into<String>) -> ProtocolError {
    ProtocolError::new(ErrorCode::BadPayload, message)
}

fn field(value: Option<&Value>, name: &str) -> Result<Option<String>, ProtocolError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.len() <= MAX_ICE_FIELD_BYTES => Ok(Some(s.clone())),
        Some(Value::String(_)) => Err(ProtocolError::new(
            ErrorCode::PayloadTooLarge,
            format!("ice_servers: {name} is longer than {MAX_ICE_FIELD_BYTES} bytes"),
        )),
        Some(_) => Err(bad(format!("ice_servers: {name} must be a string"))),
    }
}

impl IceServer {
    fn from_json(value: &Value) -> Result<Self, ProtocolError> {
        let Value::Object(map) = value else {
            return Err(bad("ice_servers: each server must be an object"));
        };
        // `urls` may be one string or a list, as in RTCIceServer.
        let urls: Vec<String> = match map.get("urls") {
            Some(Value::String(url)) => vec![url.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|u| match u {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(bad("ice_servers: urls must be strings")),
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad("ice_servers: a server needs urls")),
        };
        if urls.is_empty() || urls.len() > MAX_URLS_PER_SERVER {
            return Err(bad(format!(
                "ice_servers: a server needs 1 to {MAX_URLS_PER_SERVER} urls"
            )));
        }
        for url in &urls {
            if url.len() > MAX_ICE_FIELD_BYTES {
                return Err(ProtocolError::new(
                    ErrorCode::PayloadTooLarge,
                    "ice_servers: a url is too long",
                ));
            }
            if !["stun:", "stuns:", "turn:", "turns:"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
            {
                return Err(bad(
                    "ice_servers: urls must start with stun:, stuns:, turn: or turns:",
                ));
            }
        }
        Ok(IceServer {
            urls,
            username: field(map.get("username"), "username")?,
            credential: field(map.get("credential"), "credential")?,
        })
    }

    fn to_json(&self) -> Value {
        let mut server = json!({ "urls": self.urls });
        if let Some(username) = &self.username {
            server["username"] = json!(username);
        }
        if let Some(credential) = &self.credential {
            server["credential"] = json!(credential);
        }
        server
    }
}

impl IceServers {
    pub fn from_json(payload: &Value) -> Result<Self, ProtocolError> {
        let Value::Object(map) = payload else {
            return Err(bad("ice_servers: expected an object"));
        };
        let servers = match map.get("iceServers") {
            Some(Value::Array(list)) if list.len() <= MAX_ICE_SERVERS => list
                .iter()
                .map(IceServer::from_json)
                .collect::<Result<_, _>>()?,
            Some(Value::Array(_)) => {
                return Err(bad(format!(
                    "ice_servers: at most {MAX_ICE_SERVERS} servers"
                )));
            }
            None | Some(Value::Null) => Vec::new(),
            Some(_) => return Err(bad("ice_servers: iceServers must be a list")),
        };
        let policy = match map.get("iceTransportPolicy") {
            None | Some(Value::Null) => IceTransportPolicy::All,
            Some(Value::String(p)) => IceTransportPolicy::parse(p)
                .ok_or_else(|| bad("ice_servers: iceTransportPolicy must be all or relay"))?,
            Some(_) => return Err(bad("ice_servers: iceTransportPolicy must be a string")),
        };
        let ttl_secs = match map.get("ttl") {
            None | Some(Value::Null) => 0,
            Some(v) => v
                .as_u64()
                .ok_or_else(|| bad("ice_servers: ttl must be a whole number of seconds"))?,
        };
        Ok(IceServers {
            servers,
            policy,
            ttl_secs,
        })
    }

    pub fn to_json(&self) -> Value {
        json!({
            "iceServers": self.servers.iter().map(IceServer::to_json).collect::<Vec<_>>(),
            "iceTransportPolicy": self.policy.as_str(),
            "ttl": self.ttl_secs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_payload_round_trips() {
        let payload = json!({
            "iceServers": [
                {"urls": ["stun:stun.example:3478"]},
                {"urls": ["turn:t.example:3478?transport=udp", "turns:t.example:5349?transport=tcp"],
                 "username": "1796431045:agent", "credential": "c2VjcmV0"}
            ],
            "iceTransportPolicy": "relay",
            "ttl": 86400
        });
        let parsed = IceServers::from_json(&payload).unwrap();
        assert_eq!(parsed.policy, IceTransportPolicy::Relay);
        assert_eq!(parsed.servers[1].urls.len(), 2);
        assert_eq!(parsed.to_json(), payload);
    }

    #[test]
    fn a_single_url_string_is_accepted_and_defaults_apply() {
        let parsed =
            IceServers::from_json(&json!({"iceServers": [{"urls": "stun:s.example"}]})).unwrap();
        assert_eq!(parsed.servers[0].urls, ["stun:s.example"]);
        assert_eq!(parsed.policy, IceTransportPolicy::All);
        assert_eq!(parsed.ttl_secs, 0);
    }

    #[test]
    fn the_credential_is_not_in_debug_output() {
        let parsed = IceServers::from_json(&json!({"iceServers": [
            {"urls": "turn:t.example", "username": "u", "credential": "TOPSECRET"}
        ]}))
        .unwrap();
        assert!(!format!("{parsed:?}").contains("TOPSECRET"));
    }

    #[test]
    fn malformed_payloads_are_refused() {
        let long = "x".repeat(MAX_ICE_FIELD_BYTES + 1);
        let too_many: Vec<Value> = (0..=MAX_ICE_SERVERS)
            .map(|_| json!({"urls": "stun:s"}))
            .collect();
        for payload in [
            json!("stun:s"),
            json!({"iceServers": "stun:s"}),
            json!({"iceServers": [{"urls": []}]}),
            json!({"iceServers": [{"urls": ["http://s"]}]}),
            json!({"iceServers": [{"urls": [1]}]}),
            json!({"iceServers": [{"urls": "turn:t", "credential": 5}]}),
            json!({"iceServers": [{"urls": "turn:t", "username": long}]}),
            json!({"iceServers": too_many}),
            json!({"iceServers": [], "iceTransportPolicy": "none"}),
            json!({"iceServers": [], "ttl": -1}),
        ] {
            assert!(IceServers::from_json(&payload).is_err(), "{payload}");
        }
    }
}
