//! The web-push channel against a push service stand-in (HTTP on loopback): every subscribed
//! browser gets the encrypted ring, gone subscriptions are forgotten, a busy service is tried
//! once more, and a refusal is the ring's one failure.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use doorbell_notify::web_push::{PushSubscriptions, Subscription, Target, VapidKey};
use doorbell_notify::{Notifier, NotifyError, Ring, WebPushNotifier};
use futures_util::future::BoxFuture;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};
use web_push_native::{Auth, p256};

/// What the stand-in answers per path, in turn (the last answer repeats), and what it got.
#[derive(Default)]
struct PushService {
    answers: Mutex<HashMap<String, Vec<u16>>>,
    received: Mutex<Vec<(String, HeaderMap, Bytes)>>,
}

async fn push(
    State(service): State<Arc<PushService>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let path = uri.path().to_owned();
    service
        .received
        .lock()
        .unwrap()
        .push((path.clone(), headers, body));
    let mut answers = service.answers.lock().unwrap();
    let queue = answers.entry(path).or_insert_with(|| vec![201]);
    let status = if queue.len() > 1 {
        queue.remove(0)
    } else {
        queue[0]
    };
    StatusCode::from_u16(status).unwrap()
}

struct Browser {
    private: p256::SecretKey,
    p256dh: String,
    auth: [u8; 16],
}

fn browser(seed: u8) -> Browser {
    let private = p256::SecretKey::from_slice(&[seed; 32]).unwrap();
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&private.public_key(), false);
    Browser {
        p256dh: URL_SAFE_NO_PAD.encode(point.as_bytes()),
        private,
        auth: [seed; 16],
    }
}

#[derive(Default)]
struct Subscriptions {
    stored: Mutex<Vec<(String, String, String, String)>>,
    forgotten: Mutex<Vec<String>>,
}

impl PushSubscriptions for Subscriptions {
    fn targets(&self) -> BoxFuture<'static, Result<Vec<Target>, String>> {
        let stored = self.stored.lock().unwrap().clone();
        Box::pin(async move {
            Ok(stored
                .into_iter()
                .map(|(device, endpoint, p256dh, auth)| Target {
                    subscription: Subscription::parse(&endpoint, &p256dh, &auth, true).unwrap(),
                    device,
                    endpoint,
                })
                .collect())
        })
    }

    fn forget(&self, endpoint: String) -> BoxFuture<'static, ()> {
        self.forgotten.lock().unwrap().push(endpoint);
        Box::pin(async {})
    }
}

async fn stand_in() -> (Arc<PushService>, String) {
    let service = Arc::new(PushService::default());
    let app = Router::new()
        .route("/push/{id}", post(push))
        .with_state(service.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (service, base)
}

fn ring() -> Arc<Ring> {
    Arc::new(Ring {
        at: UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        link: Some("/?room=RingRoom1".into()),
        room: Some(doorbell_protocol::RoomId::parse("RingRoom1").unwrap()),
        snapshot_jpeg: None,
        message: None,
    })
}

#[tokio::test]
async fn every_subscribed_browser_gets_the_ring_and_gone_ones_are_forgotten() {
    let (service, base) = stand_in().await;
    let (anna, ben, gone) = (browser(1), browser(2), browser(3));
    let subscriptions = Arc::new(Subscriptions::default());
    for (name, who, path) in [
        ("Anna", &anna, "a"),
        ("Ben", &ben, "b"),
        ("Old phone", &gone, "gone"),
    ] {
        subscriptions.stored.lock().unwrap().push((
            name.into(),
            format!("{base}/push/{path}"),
            who.p256dh.clone(),
            URL_SAFE_NO_PAD.encode(who.auth),
        ));
    }
    service
        .answers
        .lock()
        .unwrap()
        .insert("/push/gone".into(), vec![410]);
    // Ben's push service is busy once: the channel tries again by itself.
    service
        .answers
        .lock()
        .unwrap()
        .insert("/push/b".into(), vec![503, 201]);
    let vapid = Arc::new(VapidKey::from_private(&VapidKey::generate_private()).unwrap());
    let channel = WebPushNotifier::new(
        vapid.clone(),
        "mailto:owner@example.com",
        subscriptions.clone(),
    )
    .unwrap();
    channel.notify(ring()).await.unwrap();

    assert_eq!(
        *subscriptions.forgotten.lock().unwrap(),
        [format!("{base}/push/gone")]
    );
    let received = service.received.lock().unwrap();
    let to = |path: &str| received.iter().filter(|(p, _, _)| p == path).count();
    assert_eq!((to("/push/a"), to("/push/b"), to("/push/gone")), (1, 2, 1));
    for (path, browser) in [("/push/a", &anna), ("/push/b", &ben)] {
        let (_, headers, body) = received.iter().find(|(p, _, _)| p == path).unwrap();
        assert!(
            headers["authorization"]
                .to_str()
                .unwrap()
                .contains(vapid.public_key())
        );
        let plain = web_push_native::decrypt(
            body.to_vec(),
            &browser.private,
            &Auth::clone_from_slice(&browser.auth),
        )
        .unwrap();
        let shown: serde_json::Value = serde_json::from_slice(&plain).unwrap();
        assert_eq!(shown["url"], "/?room=RingRoom1", "{path}");
        assert_eq!(
            shown["snapshot"],
            serde_json::Value::Null,
            "no photo, no link to one"
        );
    }
}

#[tokio::test]
async fn a_refused_push_is_the_rings_one_failure_and_names_the_device_not_the_endpoint() {
    let (service, base) = stand_in().await;
    let anna = browser(1);
    let subscriptions = Arc::new(Subscriptions::default());
    subscriptions.stored.lock().unwrap().push((
        "Anna".into(),
        format!("{base}/push/secret-capability"),
        anna.p256dh.clone(),
        URL_SAFE_NO_PAD.encode(anna.auth),
    ));
    service
        .answers
        .lock()
        .unwrap()
        .insert("/push/secret-capability".into(), vec![403]);
    let vapid = Arc::new(VapidKey::from_private(&VapidKey::generate_private()).unwrap());
    let channel =
        WebPushNotifier::new(vapid, "mailto:owner@example.com", subscriptions.clone()).unwrap();
    let error = channel.notify(ring()).await.unwrap_err();
    assert!(
        matches!(error, NotifyError::Failed(_)),
        "not retried: {error:?}"
    );
    let text = error.to_string();
    assert!(text.contains("Anna") && text.contains("403"), "{text}");
    assert!(!text.contains("secret-capability"), "{text}");
    assert!(subscriptions.forgotten.lock().unwrap().is_empty());
    assert_eq!(
        service.received.lock().unwrap().len(),
        1,
        "a refusal is not tried again"
    );
}

#[tokio::test]
async fn no_subscribed_device_is_nothing_to_do() {
    let vapid = Arc::new(VapidKey::from_private(&VapidKey::generate_private()).unwrap());
    let channel = WebPushNotifier::new(
        vapid,
        "mailto:owner@example.com",
        Arc::new(Subscriptions::default()),
    )
    .unwrap();
    channel.notify(ring()).await.unwrap();
}
