//! Orderly stop: refuse newcomers, `bye` to every member of a live room, close every
//! Socket.IO connection, then stop HTTP, all within the 2 s the issue allows.

use crate::adapter::Io as SocketIo;
use crate::adapter::SharedHub;
use crate::delivery::deliver;
use axum_server::Handle;
use std::net::SocketAddr;
use std::time::Duration;

/// Time for the `bye`s to leave the send buffers before connections close.
const FLUSH: Duration = Duration::from_millis(200);
/// Upper bound on closing every Socket.IO connection.
const CLOSE_SOCKETS: Duration = Duration::from_millis(800);
/// Upper bound on in-flight HTTP requests.
const DRAIN_HTTP: Duration = Duration::from_millis(500);

pub(crate) async fn run(hub: &SharedHub, io: &SocketIo, handle: &Handle<SocketAddr>) {
    let rooms = hub.room_count();
    let byes = hub.begin_shutdown();
    tracing::info!(
        rooms,
        byes = byes.len(),
        connections = hub.connection_count(),
        "shutting down: telling room members bye"
    );
    deliver(io, &byes);
    tokio::time::sleep(FLUSH).await;
    if tokio::time::timeout(CLOSE_SOCKETS, io.close())
        .await
        .is_err()
    {
        tracing::warn!("some Socket.IO connections did not close in time");
    }
    handle.graceful_shutdown(Some(DRAIN_HTTP));
}
