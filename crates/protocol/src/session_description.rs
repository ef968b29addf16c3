use crate::error::{ErrorCode, ProtocolError};
use crate::limits::MAX_SDP_BYTES;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SdpType {
    Offer,
    Answer,
}

impl SdpType {
    pub fn as_str(self) -> &'static str {
        match self {
            SdpType::Offer => "offer",
            SdpType::Answer => "answer",
        }
    }
}

/// `{"type": "offer"|"answer", "sdp": "..."}`, the JSON form of `RTCSessionDescription`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDescription {
    #[serde(rename = "type")]
    pub kind: SdpType,
    pub sdp: String,
}

impl SessionDescription {
    /// Validates a payload that must be a description of `expected` type.
    pub fn from_json(value: &Value, expected: SdpType) -> Result<Self, ProtocolError> {
        let obj = value.as_object().ok_or_else(|| {
            ProtocolError::new(
                ErrorCode::BadPayload,
                format!(
                    "expected an object {{\"type\":\"{}\",\"sdp\":\"...\"}}",
                    expected.as_str()
                ),
            )
        })?;
        let sdp = obj.get("sdp").and_then(Value::as_str).ok_or_else(|| {
            ProtocolError::new(ErrorCode::BadPayload, "field \"sdp\" must be a string")
        })?;
        if sdp.len() > MAX_SDP_BYTES {
            return Err(ProtocolError::new(
                ErrorCode::PayloadTooLarge,
                format!("SDP is larger than {MAX_SDP_BYTES} bytes"),
            ));
        }
        if sdp.is_empty() {
            return Err(ProtocolError::new(ErrorCode::BadPayload, "SDP is empty"));
        }
        match obj.get("type").and_then(Value::as_str) {
            Some(t) if t == expected.as_str() => {}
            _ => {
                return Err(ProtocolError::new(
                    ErrorCode::BadPayload,
                    format!("field \"type\" must be \"{}\"", expected.as_str()),
                ));
            }
        }
        Ok(Self {
            kind: expected,
            sdp: sdp.to_owned(),
        })
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({ "type": self.kind.as_str(), "sdp": self.sdp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn accepts_matching_type() {
        let d = SessionDescription::from_json(&json!({"type":"offer","sdp":"v=0"}), SdpType::Offer)
            .unwrap();
        assert_eq!(d.sdp, "v=0");
        assert_eq!(d.to_json(), json!({"type":"offer","sdp":"v=0"}));
    }

    #[test]
    fn refuses_wrong_shapes() {
        let cases = [
            json!("v=0"),
            json!({"type":"answer","sdp":"v=0"}),
            json!({"type":"offer"}),
            json!({"type":"offer","sdp":7}),
            json!({"type":"offer","sdp":""}),
            json!(null),
        ];
        for c in cases {
            let e = SessionDescription::from_json(&c, SdpType::Offer).expect_err(&c.to_string());
            assert_eq!(e.code, ErrorCode::BadPayload, "{c}");
        }
    }

    #[test]
    fn refuses_oversized_sdp() {
        let big = "a".repeat(MAX_SDP_BYTES + 1);
        let e = SessionDescription::from_json(&json!({"type":"offer","sdp":big}), SdpType::Offer)
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::PayloadTooLarge);
    }
}
