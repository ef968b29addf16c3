//! The owner app's live side: ring facts from signaling become history entries, and every
//! paired device's open page hears each change at once (`ring_update`, pushed, not polled).
//! A revoked device's sockets are closed within a second; old history is pruned hourly.

use crate::adapter::Io as SocketIo;
use crate::config::OwnerApp;
use crate::hub::RingFact;
use crate::push::Push;
use doorbell_protocol::wall_clock::rfc3339_utc;
use doorbell_store::RingEntry;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::mpsc;

/// The Socket.IO room of every connection from a paired device.
pub(crate) const OWNERS_ROOM: &str = "owners";
/// The event that carries a changed history entry.
pub(crate) const RING_UPDATE: &str = "ring_update";
/// How often open sockets of revoked devices are looked for.
const REVOCATION_SWEEP: Duration = Duration::from_secs(1);
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// A paired device's connection, kept in the socket's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DeviceId(pub i64);

/// One history entry as the API and `ring_update` give it.
pub(crate) fn entry_json(entry: &RingEntry) -> Value {
    json!({
        "id": entry.id,
        "room": entry.room,
        "at": rfc3339_utc(entry.at),
        "outcome": entry.outcome.as_str(),
        "answered_by": entry.answered_by,
        "duration_s": entry.duration.map(|d| d.as_secs()),
        "snapshot": entry.has_snapshot.then(|| format!("/api/rings/{}/snapshot", entry.id)),
        "message": entry.has_message.then(|| format!("/api/rings/{}/message", entry.id)),
        "message_s": entry.message_duration.map(|d| d.as_secs_f64().round() as u64),
        "replied": entry.replied,
    })
}

/// Records each fact in order and tells the owners.
pub(crate) async fn record(
    mut facts: mpsc::UnboundedReceiver<RingFact>,
    app: OwnerApp,
    io: SocketIo,
    push: Option<Arc<Push>>,
) {
    while let Some(fact) = facts.recv().await {
        let store = app.store.clone();
        let now = SystemTime::now();
        let started = matches!(fact, RingFact::Started(_));
        let written = tokio::task::spawn_blocking(move || match &fact {
            RingFact::Started(room) => store
                .ring_started(room.as_str(), now)
                .and_then(|_| store.ring(room.as_str())),
            RingFact::Answered { room, by } => {
                store.ring_answered(room.as_str(), by.as_deref(), now)
            }
            RingFact::Ended(room) => store.ring_ended(room.as_str(), now),
        })
        .await;
        match written {
            Ok(Ok(Some(entry))) => {
                tell_owners(&io, &entry).await;
                if let (true, Some(push)) = (started, &push) {
                    // Off this loop: the push waits for the photo, the history must not.
                    let push = push.clone();
                    let store = app.store.clone();
                    tokio::spawn(async move { push.ring(store, entry).await });
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(error)) => tracing::warn!(%error, "ring history: could not record"),
            Err(error) => tracing::warn!(%error, "ring history: the recording task failed"),
        }
    }
}

/// Sends `entry` to every open page of a paired device.
pub(crate) async fn tell_owners(io: &SocketIo, entry: &RingEntry) {
    if let Err(error) = io
        .to(OWNERS_ROOM)
        .emit(RING_UPDATE, &entry_json(entry))
        .await
    {
        tracing::debug!(%error, "ring history: could not tell the owners");
    }
}

/// Closes the sockets of devices revoked since they connected, and prunes the history.
pub(crate) async fn sweep(app: OwnerApp, io: SocketIo) {
    let mut ticks = tokio::time::interval(REVOCATION_SWEEP);
    let mut last_prune: Option<tokio::time::Instant> = None;
    loop {
        ticks.tick().await;
        let sockets = io.to(OWNERS_ROOM).sockets();
        if !sockets.is_empty() {
            let store = app.store.clone();
            if let Ok(Ok(active)) =
                tokio::task::spawn_blocking(move || store.active_device_ids()).await
            {
                for socket in sockets {
                    let revoked = socket
                        .extensions
                        .get::<DeviceId>()
                        .is_some_and(|DeviceId(id)| !active.contains(&id));
                    if revoked {
                        tracing::info!(sid = %socket.id, "closing the connection of a revoked device");
                        let _ = socket.disconnect();
                    }
                }
            }
        }
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            last_prune = Some(tokio::time::Instant::now());
            let store = app.store.clone();
            let retention = app.retention;
            let pruned = tokio::task::spawn_blocking(move || {
                let now = SystemTime::now();
                store.forget_expired_codes(now)?;
                store.prune(now, retention)
            })
            .await;
            if let Ok(Err(error)) = pruned {
                tracing::warn!(%error, "ring history: pruning failed");
            }
        }
    }
}
