//! A generic webhook (Home Assistant, Node-RED, …): `POST` JSON
//! `{"event":"ring","room","url","time","snapshot_jpeg_base64"?}`. With a secret it is signed:
//! `X-Doorbell-Timestamp: <unix seconds>` and
//! `X-Doorbell-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. The receiver
//! checks the signature and that the timestamp is within 5 minutes of its clock, so a recorded
//! request cannot be replayed later (each retry is signed afresh).

use super::http::{self, read_answer, transport_error};
use super::{Notifier, NotifyError, Ring};
use base64::Engine;
use doorbell_protocol::RoomId;
use doorbell_protocol::Secret;
use doorbell_protocol::wall_clock;
use futures_util::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::Arc;

pub const SIGNATURE_HEADER: &str = "X-Doorbell-Signature";
pub const TIMESTAMP_HEADER: &str = "X-Doorbell-Timestamp";
const AUTH_HINT: &str = "check the receiver's authentication and the webhook secret";

pub struct WebhookNotifier {
    channel: String,
    client: reqwest::Client,
    url: url::Url,
    secret: Option<Secret>,
    include_snapshot: bool,
}

impl WebhookNotifier {
    /// `url` must already satisfy the TLS rule (config checks it).
    pub fn new(
        channel: impl Into<String>,
        url: url::Url,
        secret: Option<Secret>,
        include_snapshot: bool,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, String> {
        Ok(Self {
            channel: channel.into(),
            client: http::client(ca_pem)?,
            url,
            secret,
            include_snapshot,
        })
    }
}

/// The JSON body for a ring.
pub(crate) fn body(ring: &Ring, include_snapshot: bool) -> Vec<u8> {
    let mut value = serde_json::json!({
        "event": "ring",
        "room": ring.room.as_ref().map(RoomId::as_str),
        "url": ring.link,
        "time": wall_clock::rfc3339_utc(ring.at),
    });
    if let (true, Some(jpeg)) = (include_snapshot, &ring.snapshot_jpeg) {
        value["snapshot_jpeg_base64"] =
            serde_json::json!(base64::engine::general_purpose::STANDARD.encode(jpeg.as_slice()));
    }
    value.to_string().into_bytes()
}

/// `sha256=<lowercase hex>` of HMAC-SHA256(secret, "<timestamp>.<body>").
pub fn signature(secret: &Secret, timestamp: u64, body: &[u8]) -> String {
    hmac_hex(secret, &[format!("{timestamp}.").as_bytes(), body])
}

/// `sha256=<lowercase hex>` of HMAC-SHA256(secret, the parts one after another).
fn hmac_hex(secret: &Secret, parts: &[&[u8]]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    for part in parts {
        mac.update(part);
    }
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest.iter() {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

impl Notifier for WebhookNotifier {
    fn channel(&self) -> String {
        self.channel.clone()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let body = body(&ring, self.include_snapshot);
        let mut request = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            request = request
                .header(TIMESTAMP_HEADER, now.to_string())
                .header(SIGNATURE_HEADER, signature(secret, now, &body));
        }
        let request = request.body(body);
        Box::pin(async move {
            let response = request
                .send()
                .await
                .map_err(|e| transport_error("the webhook", e))?;
            read_answer("the webhook", AUTH_HINT, response)
                .await
                .map(drop)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn the_hmac_matches_rfc4231_case_2() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let s = hmac_hex(
            &Secret::new("Jefe"),
            &[b"what do ya ", b"want for nothing?"],
        );
        assert_eq!(
            s,
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_signature_covers_the_timestamp() {
        let secret = Secret::new("Jefe");
        let a = signature(&secret, 1_700_000_000, b"{}");
        assert_eq!(a, hmac_hex(&secret, &[b"1700000000.{}"]));
        assert_ne!(
            a,
            signature(&secret, 1_700_000_001, b"{}"),
            "a replay a second later"
        );
    }

    #[test]
    fn body_has_the_documented_fields() {
        let ring = Ring {
            at: UNIX_EPOCH + Duration::from_secs(1),
            link: Some("https://b.example/?room=r00m".into()),
            room: doorbell_protocol::RoomId::parse("r00m").ok(),
            snapshot_jpeg: Some(Arc::new(vec![0xff, 0xd8])),
            message: None,
        };
        let v: serde_json::Value = serde_json::from_slice(&body(&ring, true)).unwrap();
        assert_eq!(v["event"], "ring");
        assert_eq!(v["room"], "r00m");
        assert_eq!(v["url"], "https://b.example/?room=r00m");
        assert_eq!(v["time"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["snapshot_jpeg_base64"], "/9g=");
        let v: serde_json::Value = serde_json::from_slice(&body(&ring, false)).unwrap();
        assert!(v.get("snapshot_jpeg_base64").is_none());
    }
}
