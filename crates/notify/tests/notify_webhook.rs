//! The webhook channel against a receiver on loopback that checks the JSON body and verifies
//! `X-Doorbell-Signature: sha256=HMAC(secret, "<X-Doorbell-Timestamp>.<body>")` and the
//! timestamp's age itself, as the README tells receivers to.

mod notify_support;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use notify_support::*;
use serde_json::json;
use sha2::Sha256;
use std::time::Duration;

const SECRET: &str = "webhook-shared-secret";

/// A receiver like Home Assistant's: 401 when the signature does not verify.
async fn receiver() -> StandIn {
    StandIn::start(|r| {
        let Some(signature) = r.header("x-doorbell-signature") else {
            return Answer::json(401, json!({"message": "unsigned"}));
        };
        let Some(hex) = signature.strip_prefix("sha256=") else {
            return Answer::json(401, json!({"message": "bad signature format"}));
        };
        let Some(timestamp) = r.header("x-doorbell-timestamp") else {
            return Answer::json(401, json!({"message": "no timestamp"}));
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        match timestamp.parse::<u64>() {
            Ok(t) if t.abs_diff(now) <= 300 => {}
            _ => return Answer::json(401, json!({"message": "stale timestamp"})),
        }
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(&r.body);
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if expected != hex {
            return Answer::json(401, json!({"message": "signature mismatch"}));
        }
        Answer::json(200, json!({"ok": true}))
    })
    .await
}

#[tokio::test]
async fn signed_json_with_room_url_time_and_snapshot() {
    let mut hook = receiver().await;
    let n = build_one(&format!(
        "kind = \"webhook\"\nurl = \"{}/api/webhook/doorbell\"\nsecret = \"{SECRET}\"\n",
        hook.base
    ));
    let ring = ring(true);
    assert_sent(&deliver(n, ring.clone(), Duration::from_secs(10)).await);
    let request = hook.next_request().await;
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/webhook/doorbell");
    assert_eq!(
        request.header("content-type").as_deref(),
        Some("application/json")
    );
    let body = request.json();
    assert_eq!(body["event"], "ring");
    assert_eq!(body["room"], "Zm9vYmFyYmF6cXV4MTIz");
    assert_eq!(body["url"], LINK);
    let time = body["time"].as_str().unwrap();
    assert!(time.ends_with('Z') && time.len() == 24, "{time}");
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(body["snapshot_jpeg_base64"].as_str().unwrap())
        .unwrap();
    assert_eq!(&jpeg, ring.snapshot_jpeg.as_deref().unwrap());
    assert_eq!(jpeg_size(&jpeg), (WIDTH, HEIGHT));
}

#[tokio::test]
async fn wrong_secret_is_refused_for_good() {
    let mut hook = receiver().await;
    let n = build_one(&format!(
        "kind = \"webhook\"\nurl = \"{}/hook\"\nsecret = \"another-secret\"\ninclude_snapshot = false\n",
        hook.base
    ));
    let reason = failed_reason(&deliver(n, ring(true), Duration::from_secs(10)).await);
    assert!(
        reason.contains("401") && reason.contains("signature mismatch"),
        "{reason}"
    );
    assert!(!reason.contains("another-secret"));
    let request = hook.next_request().await;
    assert!(request.json().get("snapshot_jpeg_base64").is_none());
    assert!(hook.drain().is_empty());
}

#[tokio::test]
async fn unreachable_call_service_sends_nulls_and_5xx_is_retried() {
    let mut hook = receiver().await;
    hook.script([Answer::json(503, json!({"message": "starting"}))]);
    let n = build_one(&format!(
        "kind = \"webhook\"\nurl = \"{}/hook\"\nsecret = \"{SECRET}\"\n",
        hook.base
    ));
    let ring = std::sync::Arc::new(doorbell_notify::Ring {
        at: std::time::SystemTime::now(),
        link: None,
        room: None,
        snapshot_jpeg: None,
        message: None,
    });
    assert_sent(&deliver(n, ring, Duration::from_secs(20)).await);
    let requests = hook.drain();
    assert_eq!(requests.len(), 2);
    let body = requests[1].json();
    assert_eq!(body["room"], json!(null));
    assert_eq!(body["url"], json!(null));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let mut hook = receiver().await;
    hook.script([Answer::Reply {
        status: 301,
        headers: vec![("location", "http://example.com/elsewhere".into())],
        body: String::new(),
    }]);
    let n = build_one(&format!(
        "kind = \"webhook\"\nurl = \"{}/hook\"\nsecret = \"{SECRET}\"\n",
        hook.base
    ));
    let reason = failed_reason(&deliver(n, ring(false), Duration::from_secs(10)).await);
    assert!(reason.contains("HTTP 301"), "{reason}");
    assert_eq!(hook.drain().len(), 1);
}

#[tokio::test]
async fn https_receiver_with_a_private_ca() {
    let (cert, key) = self_signed();
    let mut hook =
        StandIn::start_tls(&cert, &key, |_| Answer::json(200, json!({"ok": true}))).await;
    assert!(hook.base.starts_with("https://127.0.0.1:"));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &cert).unwrap();

    let trusting = build_one(&format!(
        "kind = \"webhook\"\nurl = \"{}/hook\"\nca_file = \"{}\"\n",
        hook.base,
        ca_file.display()
    ));
    assert_sent(&deliver(trusting, ring(true), Duration::from_secs(10)).await);
    assert_eq!(hook.next_request().await.json()["url"], LINK);

    // Without the CA the certificate is refused: nothing is sent, the link never leaves.
    let default_roots = build_one(&format!(
        "kind = \"webhook\"\nurl = \"{}/hook\"\n",
        hook.base
    ));
    let reason = failed_reason(&deliver(default_roots, ring(true), Duration::from_secs(2)).await);
    assert!(reason.to_lowercase().contains("certificate"), "{reason}");
    assert!(hook.drain().is_empty());
}
