//! Glue between socketioxide and the [`Hub`](crate::hub::Hub): connection admission (token, limits), event
//! dispatch and disconnects.
//!
//! Events are dispatched by [`Dispatch`], a hand-written `MessageHandler` that runs the hub
//! synchronously as each packet is decoded. socketioxide spawns one task per event for
//! closure handlers, so an `ice_candidate` could overtake the `invite` sent just before it;
//! processing in receive order keeps each connection's relays in the order they were sent.

use crate::cluster::Cluster;
use crate::outgoing::Outgoing;
use axum::extract::ConnectInfo;
use socketioxide::extract::{Event, State, TryData};
use socketioxide::handler::{FromMessage, FromMessageParts, MessageHandler, Value as RawValue};
use socketioxide::socket::{DisconnectReason, Socket};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::adapter::{Adapter, Io, SharedHub, SocketRef};
use crate::delivery::deliver;

/// The shared rooms, with `--redis`.
#[derive(Clone)]
pub(crate) struct Shared(pub Option<Cluster>);

/// The owner app, when on: connections from paired devices join the owners' room.
#[derive(Clone)]
pub(crate) struct Owners(pub Option<crate::config::OwnerApp>);

/// Admission of a new connection, as a connect *middleware*: socketioxide sends the CONNECT
/// packet only after middlewares finish, but runs the connect handler in a spawned task after
/// sending it. A client that emits `join` right on `connect` (every doorbell and page does)
/// would race a handler registered there, and its first event would be dropped unanswered.
/// So the hub admits the connection and the event handlers are registered here, before the
/// client can send anything.
pub(crate) async fn admit(
    socket: SocketRef,
    TryData(auth): TryData<serde_json::Value>,
    State(hub): State<SharedHub>,
    State(Owners(owners)): State<Owners>,
    State(Shared(cluster)): State<Shared>,
    io: Io,
) -> Result<(), std::convert::Infallible> {
    let parts = socket.req_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| *addr);
    let auth_token = auth
        .ok()
        .and_then(|a| a.get("token").and_then(|t| t.as_str()).map(str::to_owned));
    // Engine.IO 3 clients have no auth payload: they put the token in the query. Engine.IO 4
    // clients have one, and a token in a URL ends up in proxy and access logs: not taken.
    let from_query = query_token(parts.uri.query());
    // (socketioxide numbers the Socket.IO protocol: its V5 is Engine.IO 4, V4 is Engine.IO 3.)
    let token = match socket.protocol() {
        socketioxide::ProtocolVersion::V5 => {
            if from_query.is_some() {
                tracing::warn!(
                    sid = %socket.id,
                    "token in the URL ignored: Engine.IO 4 clients send it in the auth payload"
                );
            }
            auth_token
        }
        _ => auth_token.or(from_query),
    };
    let right = hub.create_right(token.as_deref());
    tracing::info!(
        sid = %socket.id,
        peer = ?peer,
        protocol = ?socket.protocol(),
        transport = ?socket.transport_type(),
        right = ?right,
        "connected"
    );
    // A paired device (its cookie came with the handshake): it hears the ring history live.
    let device = match &owners {
        Some(app) => crate::api_state::device(&app.store, &parts.headers).await,
        None => None,
    };
    match hub.connect(socket.id, peer.map(|a| a.ip()), right, Instant::now()) {
        Ok(()) => {
            if let Some(device) = device {
                hub.set_owner(socket.id, device.name);
                socket
                    .extensions
                    .insert(crate::history::DeviceId(device.id));
                socket.join(crate::history::OWNERS_ROOM);
            }
            socket.on_fallback(Dispatch {
                hub: hub.clone(),
                shared: cluster.map(|cluster| (cluster, io)),
                queue: Arc::default(),
            });
            socket.on_disconnect(on_disconnect);
        }
        Err(error) => {
            // Refused connections get a readable `error` event once connected (below), which
            // every client generation shows, unlike a CONNECT_ERROR.
            socket.extensions.insert(Refused(error));
        }
    }
    Ok(())
}

/// Set by [`admit`] on a connection the hub refused.
#[derive(Clone)]
struct Refused(doorbell_protocol::ProtocolError);

/// Namespace `/` connect handler: tells a refused connection why, then closes it.
pub(crate) async fn on_connect(socket: SocketRef, io: Io) {
    if let Some(Refused(error)) = socket.extensions.get::<Refused>() {
        tracing::warn!(sid = %socket.id, code = %error.code, "connection refused");
        deliver(&io, &[Outgoing::error(socket.id, &error)]);
        let _ = socket.disconnect();
    }
}

async fn on_disconnect(
    socket: SocketRef,
    reason: DisconnectReason,
    State(hub): State<SharedHub>,
    io: Io,
) {
    tracing::info!(sid = %socket.id, %reason, "disconnected");
    let out = hub.disconnect(socket.id);
    deliver(&io, &out);
    // With shared rooms, the departure is the connection's last piece of work, after what it
    // sent before.
    if let Some(queue) = socket.extensions.get::<crate::cluster_events::Queue>() {
        queue.left();
    }
}

/// Closes, now and then, the connections the hub finds idle too long (no token, no room): a
/// held slot costs the server a descriptor and memory and could keep a doorbell out.
pub(crate) async fn close_idle_connections(hub: SharedHub, io: Io, idle_timeout: Duration) {
    // A tenth of the timeout, between 1 s and 30 s: closes within 10 % of it.
    let every = (idle_timeout / 10).clamp(Duration::from_secs(1), Duration::from_secs(30));
    let mut ticks = tokio::time::interval(every);
    loop {
        ticks.tick().await;
        for sid in hub.idle_connections(Instant::now()) {
            if let Some(socket) = io.get_socket(sid) {
                tracing::info!(%sid, "closing a connection idle without a token or a room");
                hub.metrics()
                    .idle_closed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let _ = socket.disconnect();
            }
        }
    }
}

fn query_token(query: Option<&str>) -> Option<String> {
    form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
}

#[derive(Clone)]
pub(crate) struct Dispatch {
    hub: SharedHub,
    /// With shared rooms: where they are, and the handle for answering through the adapter.
    shared: Option<(Cluster, Io)>,
    /// With shared rooms: the connection's ordered queue (`cluster_events.rs`), made at its
    /// first event, so an idle doorbell costs no task, queue or room (~5 KiB, BENCHMARKS.md).
    queue: Arc<std::sync::OnceLock<crate::cluster_events::Queue>>,
}

impl MessageHandler<Adapter, Dispatch> for Dispatch {
    fn call(&self, s: Arc<Socket<Adapter>>, mut v: RawValue, ack_id: Option<i64>) {
        let Ok(Event(name)) = Event::from_message_parts(&s, &mut v, &ack_id) else {
            return;
        };
        let io = match Io::from_message_parts(&s, &mut v, &ack_id) {
            Ok(io) => io,
            Err(never) => match never {},
        };
        let id = s.id;
        let queue = self.shared.as_ref().map(|(cluster, io)| {
            self.queue.get_or_init(|| {
                // Other nodes reach a member only through the room named after it; a
                // connection becomes a member only through an event, so it joins now.
                s.join(s.id);
                let queue = crate::cluster_events::start(
                    s.id,
                    self.hub.clone(),
                    cluster.clone(),
                    io.clone(),
                );
                s.extensions.insert(queue.clone());
                queue
            })
        });
        let data = match TryData::<serde_json::Value>::from_message(s, v, ack_id) {
            Ok(TryData(data)) => data.ok(),
            Err(never) => match never {},
        };
        if let Some(queue) = queue {
            queue.event(name, data, Instant::now());
            return;
        }
        let out = self.hub.event(id, &name, data.as_ref(), Instant::now());
        deliver(&io, &out);
    }
}
