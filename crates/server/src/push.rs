//! Web Push for paired devices: at every ring (and every video message) the server pushes to
//! each subscribed device through `doorbell-notify`'s web-push channel, the same way the
//! agent's channels deliver (one outcome per ring, logged as `notify_sent`/`notify_failed`).
//! Subscribing is `push_api.rs`.
//!
//! The VAPID key is made on the first start with the owner app and kept in the data dir's
//! database: a new key would void every subscription.

use crate::config::OwnerApp;
use doorbell_notify::web_push::{PushSubscriptions, Subscription, Target, VapidKey};
use doorbell_notify::{ChannelOutcome, Notifier, RetryPolicy, Ring, WebPushNotifier};
use doorbell_store::{RingEntry, Store, StoreError};
use futures_util::future::BoxFuture;
use std::sync::Arc;
use std::time::Duration;

/// The VAPID key's name among the server's keys.
const VAPID_KEY: &str = "vapid-p256";
/// How long a ring's push waits for the doorbell's photo of the visitor (it follows the ring
/// by the snapshot bound, 150 ms, plus the upload).
const SNAPSHOT_WAIT: Duration = Duration::from_secs(1);
/// How long the channel may take over one ring: after the ring timeout nobody can answer.
const DEADLINE: Duration = Duration::from_secs(60);

/// The server's Web Push: its key and the channel.
pub(crate) struct Push {
    pub(crate) vapid: Arc<VapidKey>,
    channel: Arc<WebPushNotifier>,
    pub(crate) allow_http: bool,
    /// Where outcomes are counted (`doorbell_notifications_total`).
    metrics: Option<Arc<crate::metrics::ServerMetrics>>,
    /// Woken by every photo the doorbell uploads: a ring's push waits for its own.
    snapshots: tokio::sync::Notify,
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
            snapshots: tokio::sync::Notify::new(),
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
        let snapshot = self.wait_for_snapshot(&store, &entry.room).await;
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

impl Push {
    /// The doorbell uploaded a photo: wakes the pushes waiting for theirs.
    pub fn snapshot_arrived(&self) {
        self.snapshots.notify_waiters();
    }

    /// The ring's photo once the doorbell has uploaded it, or `None` after [`SNAPSHOT_WAIT`]:
    /// the store is read when a photo arrives, not polled.
    async fn wait_for_snapshot(&self, store: &Arc<Store>, room: &str) -> Option<Vec<u8>> {
        let until = tokio::time::Instant::now() + SNAPSHOT_WAIT;
        loop {
            // Made before the read, so an upload between the two still wakes it.
            let arrived = self.snapshots.notified();
            let store = store.clone();
            let key = room.to_owned();
            if let Ok(Ok(Some(jpeg))) =
                tokio::task::spawn_blocking(move || store.room_snapshot(&key)).await
            {
                return Some(jpeg);
            }
            if tokio::time::timeout_at(until, arrived).await.is_err() {
                return None;
            }
        }
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
