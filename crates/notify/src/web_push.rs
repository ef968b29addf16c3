//! Web Push: a ring straight to the owners' browsers and installed web apps, through the push
//! service each browser uses (Mozilla's, Google's, Apple's), with no messenger account.
//! Delivery is RFC 8030, the payload is encrypted for each browser (RFC 8291, `aes128gcm`),
//! and the server identifies itself with its VAPID key (RFC 8292), made once and kept by the
//! caller (the server keeps it in its data dir). The crypto is `web-push-native`'s.
//!
//! The subscriptions live where the owners' devices are paired (the server's store), so the
//! channel reads them through [`PushSubscriptions`] at each ring and forgets those the push
//! service says are gone (404, 410). One ring is one outcome, like every channel's: a push
//! service that is busy is tried once more after a second, inside the attempt, so the
//! dispatcher never re-sends to the browsers that already got the ring.

use crate::{Notifier, NotifyError, Ring};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::BoxFuture;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use web_push_native::jwt_simple::algorithms::{ECDSAP256PublicKeyLike, ES256KeyPair};
use web_push_native::{Auth, WebPushBuilder, p256};

/// The channel's name in outcomes and logs.
pub const CHANNEL: &str = "web-push";
/// The longest endpoint URL taken from a browser (Firefox's and Chrome's are ~200 bytes).
pub const MAX_ENDPOINT_BYTES: usize = 1024;
/// How long a push service keeps trying to reach a device that is off: after that nobody can
/// answer the ring anyway.
const TIME_TO_LIVE: Duration = Duration::from_secs(120);
/// The pause before the one retry of a push service that said "busy" or could not be reached.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The server's VAPID key pair (P-256).
pub struct VapidKey {
    pair: ES256KeyPair,
    public: String,
}

impl VapidKey {
    /// A new private key (32 raw bytes), to keep and pass to [`VapidKey::from_private`].
    pub fn generate_private() -> Vec<u8> {
        ES256KeyPair::generate().to_bytes()
    }

    pub fn from_private(raw: &[u8]) -> Result<Self, String> {
        let pair = ES256KeyPair::from_bytes(raw)
            .map_err(|e| format!("the stored VAPID key is not a P-256 private key: {e}"))?;
        let public = URL_SAFE_NO_PAD.encode(pair.public_key().public_key().to_bytes_uncompressed());
        Ok(Self { pair, public })
    }

    /// The public key as browsers take it (`applicationServerKey`): the uncompressed point,
    /// base64url.
    pub fn public_key(&self) -> &str {
        &self.public
    }
}

/// One browser's subscription, checked.
#[derive(Debug, Clone)]
pub struct Subscription {
    endpoint: http::Uri,
    ua_public: p256::PublicKey,
    auth: Auth,
}

impl Subscription {
    /// From a browser's `PushSubscription.toJSON()` fields. `allow_http`: accept a plain-http
    /// endpoint (a push service on this machine, in tests); real push services are HTTPS.
    pub fn parse(
        endpoint: &str,
        p256dh: &str,
        auth: &str,
        allow_http: bool,
    ) -> Result<Self, String> {
        if endpoint.len() > MAX_ENDPOINT_BYTES {
            return Err(format!(
                "the endpoint is longer than {MAX_ENDPOINT_BYTES} bytes"
            ));
        }
        let uri: http::Uri = endpoint
            .parse()
            .map_err(|_| "the endpoint is not a URL".to_owned())?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if allow_http => {}
            _ => return Err("the endpoint must be an https:// URL".into()),
        }
        if uri.host().is_none() {
            return Err("the endpoint has no host".into());
        }
        let key = URL_SAFE_NO_PAD
            .decode(p256dh.trim_end_matches('='))
            .map_err(|_| "keys.p256dh is not base64url".to_owned())?;
        let ua_public = p256::PublicKey::from_sec1_bytes(&key)
            .map_err(|_| "keys.p256dh is not a P-256 public key".to_owned())?;
        let secret = URL_SAFE_NO_PAD
            .decode(auth.trim_end_matches('='))
            .map_err(|_| "keys.auth is not base64url".to_owned())?;
        if secret.len() != 16 {
            return Err("keys.auth must be 16 bytes".into());
        }
        Ok(Self {
            endpoint: uri,
            ua_public,
            auth: Auth::clone_from_slice(&secret),
        })
    }

    /// The encrypted, VAPID-signed request that delivers `payload` to this browser.
    pub fn request(
        &self,
        vapid: &VapidKey,
        contact: &str,
        payload: Vec<u8>,
    ) -> Result<http::Request<Vec<u8>>, String> {
        let mut request = WebPushBuilder::new(self.endpoint.clone(), self.ua_public, self.auth)
            .with_valid_duration(TIME_TO_LIVE)
            .with_vapid(&vapid.pair, contact)
            .build(payload)
            .map_err(|e| format!("the push could not be encrypted: {e}"))?;
        // RFC 8030 §5.3: a ring is worth waking a phone for.
        request
            .headers_mut()
            .insert("urgency", http::HeaderValue::from_static("high"));
        Ok(request)
    }
}

/// A subscription and whose device it is.
#[derive(Debug, Clone)]
pub struct Target {
    pub device: String,
    /// The endpoint as stored, to forget it by.
    pub endpoint: String,
    pub subscription: Subscription,
}

/// Where the subscriptions are kept (the server's store).
pub trait PushSubscriptions: Send + Sync + 'static {
    /// Every subscription to push to now; stored ones that no longer parse are left out.
    fn targets(&self) -> BoxFuture<'static, Result<Vec<Target>, String>>;
    /// The push service says this endpoint is gone.
    fn forget(&self, endpoint: String) -> BoxFuture<'static, ()>;
}

/// What the service worker (`web/sw.js`) shows: the title, the time, the visitor's photo (a
/// URL the worker fetches with the device's cookie) and the call page to open.
pub fn payload(ring: &Ring) -> Vec<u8> {
    let room = ring.room.as_ref().map(|r| r.as_str().to_owned());
    let title = match ring.message {
        Some(length) => format!("New video message ({} s)", length.as_secs().max(1)),
        None => "Someone is at the door".to_owned(),
    };
    json!({
        "title": title,
        "body": format!("Rang at {}", doorbell_protocol::wall_clock::human_utc(ring.at)),
        "at": doorbell_protocol::wall_clock::rfc3339_utc(ring.at),
        "room": room,
        "url": ring.link,
        "snapshot": match (&room, &ring.snapshot_jpeg) {
            (Some(room), Some(_)) => Some(format!("/api/rooms/{room}/snapshot")),
            _ => None,
        },
    })
    .to_string()
    .into_bytes()
}

/// How one push went.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Delivery {
    Delivered,
    /// 404/410: the browser unsubscribed or the subscription expired.
    Gone,
    /// Worth one more try (429, 5xx, unreachable).
    Busy(String),
    Refused(String),
}

pub struct WebPushNotifier {
    vapid: Arc<VapidKey>,
    contact: String,
    client: reqwest::Client,
    subscriptions: Arc<dyn PushSubscriptions>,
}

impl WebPushNotifier {
    /// `contact`: how a push service can reach the operator (`mailto:` or `https:`), sent in
    /// the VAPID claim.
    pub fn new(
        vapid: Arc<VapidKey>,
        contact: impl Into<String>,
        subscriptions: Arc<dyn PushSubscriptions>,
    ) -> Result<Self, String> {
        Ok(Self {
            vapid,
            contact: contact.into(),
            client: crate::http::client(None)?,
            subscriptions,
        })
    }
}

async fn deliver(client: &reqwest::Client, request: &http::Request<Vec<u8>>) -> Delivery {
    let sent = client
        .post(request.uri().to_string())
        .headers(request.headers().clone())
        .body(request.body().clone())
        .send()
        .await;
    // The endpoint is a capability (anyone holding it can push to the browser): never in a
    // message.
    let response = match sent {
        Ok(response) => response,
        Err(e) => {
            return Delivery::Busy(format!("push service unreachable: {}", e.without_url()));
        }
    };
    let status = response.status();
    match status.as_u16() {
        200..=299 => Delivery::Delivered,
        404 | 410 => Delivery::Gone,
        408 | 429 | 500..=599 => Delivery::Busy(format!("push service answered {status}")),
        _ => Delivery::Refused(format!("push service refused the push: {status}")),
    }
}

impl Notifier for WebPushNotifier {
    fn channel(&self) -> String {
        CHANNEL.to_owned()
    }

    fn notify(&self, ring: Arc<Ring>) -> BoxFuture<'static, Result<(), NotifyError>> {
        let client = self.client.clone();
        let vapid = self.vapid.clone();
        let contact = self.contact.clone();
        let subscriptions = self.subscriptions.clone();
        Box::pin(async move {
            let targets = subscriptions.targets().await.map_err(NotifyError::retry)?;
            let body = payload(&ring);
            let mut failures = Vec::new();
            let mut pending = Vec::new();
            for target in targets {
                match target.subscription.request(&vapid, &contact, body.clone()) {
                    Ok(request) => pending.push((target, request)),
                    Err(why) => failures.push(format!("{}: {why}", target.device)),
                }
            }
            let mut delivered = 0;
            for round in 0..2 {
                let results = futures_util::future::join_all(
                    pending.iter().map(|(_, request)| deliver(&client, request)),
                )
                .await;
                let mut again = Vec::new();
                for ((target, request), result) in pending.into_iter().zip(results) {
                    match result {
                        Delivery::Delivered => delivered += 1,
                        Delivery::Gone => {
                            tracing::info!(device = %target.device, "web push: subscription gone, forgotten");
                            subscriptions.forget(target.endpoint.clone()).await;
                        }
                        Delivery::Busy(why) if round == 0 => {
                            tracing::debug!(device = %target.device, %why, "web push: trying again");
                            again.push((target, request));
                        }
                        Delivery::Busy(why) | Delivery::Refused(why) => {
                            failures.push(format!("{}: {why}", target.device));
                        }
                    }
                }
                pending = again;
                if pending.is_empty() {
                    break;
                }
                tokio::time::sleep(RETRY_AFTER).await;
            }
            if failures.is_empty() {
                tracing::debug!(delivered, "web push: sent");
                Ok(())
            } else {
                Err(NotifyError::Failed(format!(
                    "{} of {} devices not reached: {}",
                    failures.len(),
                    failures.len() + delivered,
                    failures.join("; ")
                )))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap()
    }

    /// RFC 8291 §5: the example push message, decrypted with the user agent's keys.
    #[test]
    fn the_rfc_8291_example_decrypts_to_its_plaintext() {
        let ciphertext = b64(
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN",
        );
        let ua_private =
            p256::SecretKey::from_slice(&b64("q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
                .unwrap();
        let auth = Auth::clone_from_slice(&b64("BTBZMqHH6r4Tts7J_aSIgg"));
        let plain = web_push_native::decrypt(ciphertext, &ua_private, &auth).unwrap();
        assert_eq!(plain, b"When I grow up, I want to be a watermelon");
        // The example's user agent public key is the one its private key makes, and a
        // subscription made of it parses.
        let ua_public = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        assert_eq!(
            p256::PublicKey::from_sec1_bytes(&b64(ua_public)).unwrap(),
            ua_private.public_key()
        );
        assert!(
            Subscription::parse(
                "https://push.test/x",
                ua_public,
                "BTBZMqHH6r4Tts7J_aSIgg",
                false
            )
            .is_ok()
        );
    }

    #[test]
    fn our_push_decrypts_for_the_browser_and_carries_our_vapid_key() {
        let ua_private = p256::SecretKey::from_slice(&[7_u8; 32]).unwrap();
        let ua_public = URL_SAFE_NO_PAD.encode(
            p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(
                &ua_private.public_key(),
                false,
            )
            .as_bytes(),
        );
        let auth = URL_SAFE_NO_PAD.encode([3_u8; 16]);
        let subscription =
            Subscription::parse("https://push.test/wpush/abc", &ua_public, &auth, false).unwrap();
        let vapid = VapidKey::from_private(&VapidKey::generate_private()).unwrap();
        let ring = Ring {
            at: std::time::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
            link: Some("/?room=RingRoom1".into()),
            room: Some(doorbell_protocol::RoomId::parse("RingRoom1").unwrap()),
            snapshot_jpeg: Some(Arc::new(vec![0xFF, 0xD8])),
            message: None,
        };
        let request = subscription
            .request(&vapid, "mailto:owner@example.com", payload(&ring))
            .unwrap();
        assert_eq!(request.headers()["content-encoding"], "aes128gcm");
        assert_eq!(request.headers()["ttl"], "120");
        assert_eq!(request.headers()["urgency"], "high");
        let authorization = request.headers()["authorization"].to_str().unwrap();
        assert!(authorization.starts_with("vapid t="), "{authorization}");
        assert!(
            authorization.ends_with(&format!("k={}", vapid.public_key())),
            "{authorization}"
        );
        let plain = web_push_native::decrypt(
            request.body().clone(),
            &ua_private,
            &Auth::clone_from_slice(&[3_u8; 16]),
        )
        .unwrap();
        let shown: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(shown["title"], "Someone is at the door");
        assert_eq!(shown["url"], "/?room=RingRoom1");
        assert_eq!(shown["snapshot"], "/api/rooms/RingRoom1/snapshot");
        assert_eq!(shown["at"], "2027-01-15T08:00:00.000Z");
    }

    #[test]
    fn subscriptions_from_browsers_are_checked() {
        let key = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4";
        let auth = "BTBZMqHH6r4Tts7J_aSIgg";
        let cases = [
            ("http://push.test/x", key, auth, "https://"),
            ("ftp://push.test/x", key, auth, "https://"),
            ("not a url", key, auth, "not a URL"),
            ("https://push.test/x", "AAAA", auth, "P-256"),
            ("https://push.test/x", "***", auth, "base64url"),
            ("https://push.test/x", key, "AAAA", "16 bytes"),
        ];
        for (endpoint, p256dh, secret, why) in cases {
            let error = Subscription::parse(endpoint, p256dh, secret, false).unwrap_err();
            assert!(error.contains(why), "{endpoint} {p256dh} {secret}: {error}");
        }
        let long = format!("https://push.test/{}", "x".repeat(MAX_ENDPOINT_BYTES));
        assert!(Subscription::parse(&long, key, auth, false).is_err());
        assert!(Subscription::parse("http://127.0.0.1:9/x", key, auth, true).is_ok());
    }
}
