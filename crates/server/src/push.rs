//! Web Push for paired devices: "Notify this device" on the page subscribes through the
//! browser's Push API and hands the subscription here; at every ring the server pushes to each
//! subscribed device through `doorbell-notify`'s web-push channel, the same way the agent's
//! channels deliver (one outcome per ring, logged as `notify_sent`/`notify_failed`).
//!
//! | route | who | what |
//! |---|---|---|
//! | `GET /api/push` | a paired device | `{"public_key"}`: the VAPID key to subscribe with |
//! | `POST /api/push` `{"endpoint","keys":{"p256dh","auth"}}` | a paired device | keeps the subscription |
//! | `DELETE /api/push` `{"endpoint"}` | a paired device | forgets it |
//!
//! The VAPID key is made on the first start with the owner app and kept in the data dir's
//! database: a new key would void every subscription.

use crate::api::{Api, paired, problem};
use crate::config::OwnerApp;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use doorbell_notify::web_push::{PushSubscriptions, Subscription, Target, VapidKey};
use doorbell_notify::{ChannelOutcome, Notifier, RetryPolicy, Ring, WebPushNotifier};
use doorbell_store::{RingEntry, Store, StoreError};
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// The VAPID key's name among the server's keys.
const VAPID_KEY: &str = "vapid-p256";
/// The largest subscription request body.
pub(crate) const MAX_BODY: usize = 4 * 1024;
/// How long a ring's push waits for the doorbell's photo of the visitor (it follows the ring
/// by the snapshot bound, 150 ms, plus the upload).
const SNAPSHOT_WAIT: Duration = Duration::from_secs(1);
const SNAPSHOT_POLL: Duration = Duration::from_millis(50);
/// How long the channel may take over one ring: after the ring timeout nobody can answer.
const DEADLINE: Duration = Duration::from_secs(60);

/// The server's Web Push: its key and the channel.
pub(crate) struct Push {
    vapid: Arc<VapidKey>,
    channel: Arc<WebPushNotifier>,
    allow_http: bool,
    /// Where outcomes are counted (`doorbell_notifications_total`).
    metrics: Option<Arc<crate::metrics::ServerMetrics>>,
}

impl Push {
    /// Loads (or makes, the first time) the VAPID key and sets up the channel.
    pub fn start(app: &OwnerApp) -> Result<Push, String> {
        let raw = app
            .store
            .server_key::<StoreError>(VAPID_KEY, || Ok(VapidKey::generate_private()))
            .map_err(|e| e.to_string())?;
        let vapid = Arc::new(VapidKey::from_private(&raw)?);
        let subscriptions = Arc::new(StoredSubscriptions {
            store: app.store.clone(),
            allow_http: app.push.allow_http,
        });
        let channel = WebPushNotifier::new(vapid.clone(), app.push.contact.clone(), subscriptions)?;
        Ok(Push {
            vapid,
            channel: Arc::new(channel),
            allow_http: app.push.allow_http,
            metrics: None,
        })
    }

    /// Counts each push's outcome in the server's metrics.
    pub fn counting(mut self, metrics: Arc<crate::metrics::ServerMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Pushes `entry` (a ring that just started) to every subscribed device, with the
    /// visitor's photo if it arrives within [`SNAPSHOT_WAIT`]. Returns when the channel has
    /// its outcome.
    pub async fn ring(&self, store: Arc<Store>, entry: RingEntry) {
        let snapshot = wait_for_snapshot(&store, &entry.room).await;
        let room = doorbell_protocol::RoomId::parse(&entry.room).ok();
        let ring = Arc::new(Ring {
            at: entry.at,
            link: room.as_ref().map(|r| format!("/?room={}", r.as_str())),
            room,
            snapshot_jpeg: snapshot.map(Arc::new),
            message: None,
        });
        self.send(ring).await;
    }
}

impl Push {
    /// "New video message (12 s)" to every subscribed device, opening the home view where it
    /// plays.
    pub async fn message(&self, entry: RingEntry, duration: Duration) {
        let ring = Arc::new(Ring {
            at: entry.at,
            link: Some("/".into()),
            room: doorbell_protocol::RoomId::parse(&entry.room).ok(),
            snapshot_jpeg: None,
            message: Some(duration),
        });
        self.send(ring).await;
    }

    async fn send(&self, ring: Arc<Ring>) {
        let channel: Arc<dyn Notifier> = self.channel.clone();
        let metrics = self.metrics.clone();
        let handles = doorbell_notify::dispatch_with(
            &[channel],
            ring,
            DEADLINE,
            RetryPolicy::default(),
            move |outcome: ChannelOutcome| {
                if let Some(metrics) = &metrics {
                    metrics.notification(&outcome.channel, outcome.result.is_ok());
                }
                match outcome.result {
                    Ok(()) => tracing::info!(channel = %outcome.channel, "notify_sent"),
                    Err(reason) => {
                        tracing::warn!(channel = %outcome.channel, %reason, "notify_failed")
                    }
                }
            },
        );
        for handle in handles {
            let _ = handle.await;
        }
    }
}

/// The ring's photo once the doorbell has uploaded it, or `None` after the wait.
async fn wait_for_snapshot(store: &Arc<Store>, room: &str) -> Option<Vec<u8>> {
    let until = tokio::time::Instant::now() + SNAPSHOT_WAIT;
    loop {
        let store = store.clone();
        let room = room.to_owned();
        let found = tokio::task::spawn_blocking(move || {
            let entry = store.ring(&room)?;
            match entry {
                Some(entry) if entry.has_snapshot => store.snapshot(entry.id),
                _ => Ok(None),
            }
        })
        .await;
        if let Ok(Ok(Some(jpeg))) = found {
            return Some(jpeg);
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(SNAPSHOT_POLL).await;
    }
}

/// The store's subscriptions, as the channel reads them.
struct StoredSubscriptions {
    store: Arc<Store>,
    allow_http: bool,
}

impl PushSubscriptions for StoredSubscriptions {
    fn targets(&self) -> BoxFuture<'static, Result<Vec<Target>, String>> {
        let store = self.store.clone();
        let allow_http = self.allow_http;
        Box::pin(async move {
            let stored = tokio::task::spawn_blocking(move || store.push_targets())
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| e.to_string())?;
            Ok(stored
                .into_iter()
                .filter_map(|t| {
                    match Subscription::parse(&t.endpoint, &t.p256dh, &t.auth, allow_http) {
                        Ok(subscription) => Some(Target {
                            device: t.device,
                            endpoint: t.endpoint,
                            subscription,
                        }),
                        Err(why) => {
                            tracing::warn!(device = %t.device, %why, "web push: stored subscription unusable");
                            None
                        }
                    }
                })
                .collect())
        })
    }

    fn forget(&self, endpoint: String) -> BoxFuture<'static, ()> {
        let store = self.store.clone();
        Box::pin(async move {
            let _ =
                tokio::task::spawn_blocking(move || store.forget_push_endpoint(&endpoint)).await;
        })
    }
}

fn no_push() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Web Push is not available on this server (see its log)",
    )
}

/// `GET /api/push`: the key to subscribe with.
pub(crate) async fn key(State(api): State<Api>, headers: HeaderMap) -> Response {
    if let Err(refused) = paired(&api, &headers).await {
        return refused;
    }
    match &api.push {
        Some(push) => axum::Json(json!({ "public_key": push.vapid.public_key() })).into_response(),
        None => no_push(),
    }
}

#[derive(Deserialize)]
struct Keys {
    p256dh: String,
    auth: String,
}

#[derive(Deserialize)]
struct SubscribeRequest {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
struct UnsubscribeRequest {
    endpoint: String,
}

/// `POST /api/push`: keeps this device's subscription.
pub(crate) async fn subscribe(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let (app, device) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let Some(push) = &api.push else {
        return no_push();
    };
    let request: SubscribeRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!(
                    "expected the browser's subscription, {{\"endpoint\", \"keys\": {{\"p256dh\", \"auth\"}}}}: {error}"
                ),
            );
        }
    };
    if let Err(why) = Subscription::parse(
        &request.endpoint,
        &request.keys.p256dh,
        &request.keys.auth,
        push.allow_http,
    ) {
        return problem(
            StatusCode::BAD_REQUEST,
            format!("unusable subscription: {why}"),
        );
    }
    let store = app.store.clone();
    let device_id = device.id;
    let kept = tokio::task::spawn_blocking(move || {
        store.subscribe_push(
            device_id,
            &request.endpoint,
            &request.keys.p256dh,
            &request.keys.auth,
            SystemTime::now(),
        )
    })
    .await;
    match kept {
        Ok(Ok(())) => {
            tracing::info!(device = %device.name, "web push: device subscribed");
            (
                StatusCode::CREATED,
                axum::Json(json!({ "subscribed": true })),
            )
                .into_response()
        }
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the subscription could not be kept",
        ),
    }
}

/// `DELETE /api/push`: forgets this device's subscription.
pub(crate) async fn unsubscribe(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (app, device) = match paired(&api, &headers).await {
        Ok(found) => found,
        Err(refused) => return refused,
    };
    let request: UnsubscribeRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                format!("expected {{\"endpoint\"}}: {error}"),
            );
        }
    };
    let store = app.store.clone();
    match tokio::task::spawn_blocking(move || store.unsubscribe_push(device.id, &request.endpoint))
        .await
    {
        Ok(Ok(_)) => StatusCode::NO_CONTENT.into_response(),
        _ => problem(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the subscription could not be forgotten",
        ),
    }
}
