use crate::error::{ErrorCode, ProtocolError};
use crate::limits::MAX_CANDIDATE_BYTES;
use serde_json::{Map, Value};

/// One trickled ICE candidate, the JSON form of `RTCIceCandidateInit`.
///
/// An empty `candidate` string (or a `null` payload, see [`IceCandidate::from_json`]) marks
/// the end of candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_mline_index: Option<u16>,
    pub username_fragment: Option<String>,
}

/// Loopback, link-local or unspecified: an address inside one machine or its link.
pub fn is_internal_address(ip: std::net::IpAddr) -> bool {
    match ip {
        std::net::IpAddr::V4(a) => a.is_loopback() || a.is_link_local() || a.is_unspecified(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.is_unspecified() || (a.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

impl IceCandidate {
    /// The candidate's connection address (`candidate:F 1 udp P ADDRESS PORT typ …`), when it
    /// is an IP address (an mDNS `….local` name is not).
    pub fn address(&self) -> Option<std::net::IpAddr> {
        let line = self.candidate.strip_prefix("a=").unwrap_or(&self.candidate);
        line.split_whitespace().nth(4)?.parse().ok()
    }

    /// Whether the candidate points into the receiving machine or its link: loopback,
    /// link-local or unspecified. From the network such a candidate makes the agent send
    /// checks to its own local services.
    pub fn is_internal(&self) -> bool {
        self.address().is_some_and(is_internal_address)
    }

    /// `Ok(None)` for the end-of-candidates marker (`null` payload).
    pub fn from_json(value: &Value) -> Result<Option<Self>, ProtocolError> {
        let obj = match value {
            Value::Null => return Ok(None),
            Value::Object(obj) => obj,
            _ => {
                return Err(ProtocolError::new(
                    ErrorCode::BadPayload,
                    "expected an object {\"candidate\",\"sdpMid\",\"sdpMLineIndex\"} or null",
                ));
            }
        };
        let candidate = match obj.get("candidate") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            _ => {
                return Err(ProtocolError::new(
                    ErrorCode::BadPayload,
                    "field \"candidate\" must be a string",
                ));
            }
        };
        let sdp_mid = optional_string(obj, "sdpMid")?;
        let username_fragment = optional_string(obj, "usernameFragment")?;
        let sdp_mline_index =
            match obj.get("sdpMLineIndex") {
                None | Some(Value::Null) => None,
                Some(v) => Some(v.as_u64().and_then(|n| u16::try_from(n).ok()).ok_or_else(
                    || {
                        ProtocolError::new(
                            ErrorCode::BadPayload,
                            "field \"sdpMLineIndex\" must be an integer 0..=65535",
                        )
                    },
                )?),
            };
        let size = candidate.len()
            + sdp_mid.as_ref().map_or(0, String::len)
            + username_fragment.as_ref().map_or(0, String::len);
        if size > MAX_CANDIDATE_BYTES {
            return Err(ProtocolError::new(
                ErrorCode::PayloadTooLarge,
                format!("ICE candidate is larger than {MAX_CANDIDATE_BYTES} bytes"),
            ));
        }
        if !candidate.is_empty() && sdp_mid.is_none() && sdp_mline_index.is_none() {
            return Err(ProtocolError::new(
                ErrorCode::BadPayload,
                "a candidate needs \"sdpMid\" or \"sdpMLineIndex\"",
            ));
        }
        Ok(Some(Self {
            candidate,
            sdp_mid,
            sdp_mline_index,
            username_fragment,
        }))
    }

    pub fn is_end_of_candidates(&self) -> bool {
        self.candidate.is_empty()
    }

    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("candidate".into(), Value::String(self.candidate.clone()));
        obj.insert(
            "sdpMid".into(),
            self.sdp_mid.clone().map_or(Value::Null, Value::String),
        );
        obj.insert(
            "sdpMLineIndex".into(),
            self.sdp_mline_index.map_or(Value::Null, Value::from),
        );
        if let Some(ufrag) = &self.username_fragment {
            obj.insert("usernameFragment".into(), Value::String(ufrag.clone()));
        }
        Value::Object(obj)
    }
}

fn optional_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, ProtocolError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ProtocolError::new(
            ErrorCode::BadPayload,
            format!("field \"{key}\" must be a string or null"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_browser_candidate_and_round_trips() {
        let v = json!({"candidate":"candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host",
                       "sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"abcd"});
        let c = IceCandidate::from_json(&v).unwrap().unwrap();
        assert_eq!(c.sdp_mline_index, Some(0));
        assert_eq!(c.to_json(), v);
    }

    #[test]
    fn null_and_empty_mean_end_of_candidates() {
        assert_eq!(IceCandidate::from_json(&Value::Null).unwrap(), None);
        let c = IceCandidate::from_json(&json!({"candidate":"","sdpMid":"0"}))
            .unwrap()
            .unwrap();
        assert!(c.is_end_of_candidates());
    }

    #[test]
    fn refuses_bad_fields() {
        for v in [
            json!("candidate:1"),
            json!({"candidate": 5, "sdpMid": "0"}),
            json!({"candidate":"c","sdpMLineIndex":-1}),
            json!({"candidate":"c","sdpMLineIndex":70000}),
            json!({"candidate":"c","sdpMid":3}),
            json!({"candidate":"c"}),
        ] {
            let e = IceCandidate::from_json(&v).expect_err(&v.to_string());
            assert_eq!(e.code, ErrorCode::BadPayload, "{v}");
        }
        let big = json!({"candidate": "x".repeat(MAX_CANDIDATE_BYTES + 1), "sdpMid":"0"});
        assert_eq!(
            IceCandidate::from_json(&big).unwrap_err().code,
            ErrorCode::PayloadTooLarge
        );
    }

    #[test]
    fn loopback_link_local_and_unspecified_candidates_are_internal() {
        let c = |line: &str| IceCandidate {
            candidate: line.into(),
            sdp_mid: Some("0".into()),
            sdp_mline_index: Some(0),
            username_fragment: None,
        };
        for internal in [
            "candidate:1 1 udp 2122260223 127.0.0.1 54321 typ host",
            "candidate:1 1 udp 2122260223 169.254.10.2 54321 typ host",
            "candidate:1 1 udp 2122260223 ::1 54321 typ host",
            "candidate:1 1 udp 2122260223 fe80::1 54321 typ host",
            "candidate:1 1 udp 2122260223 0.0.0.0 9 typ host",
        ] {
            assert!(c(internal).is_internal(), "{internal}");
        }
        for external in [
            "candidate:1 1 udp 2122260223 192.168.1.20 54321 typ host",
            "candidate:2 1 udp 1686052607 203.0.113.7 61000 typ srflx raddr 0.0.0.0 rport 0",
            "candidate:1 1 udp 2122260223 3b8a1e1c-2f2e-4b4e-9a7e-0c1d2e3f4a5b.local 54321 typ host",
        ] {
            assert!(!c(external).is_internal(), "{external}");
        }
    }
}
