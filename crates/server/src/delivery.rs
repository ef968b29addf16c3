//! Sending the hub's answers to their connections: here, or (with `--redis`) on another node.

use crate::adapter::{Io, SocketRef};
use crate::outgoing::Outgoing;
use socketioxide::socket::Sid;
use std::time::{Duration, Instant};

/// Sends each event to its connection. A connection that vanished or whose send buffer is
/// full misses it; that is its problem, not the sender's.
pub(crate) fn deliver(io: &Io, out: &[Outgoing<Sid>]) {
    for o in out {
        let Some(socket) = io.get_socket(o.to) else {
            continue;
        };
        settle_connect(&socket);
        if let Err(e) = socket.emit(o.event.as_str(), &o.payload) {
            tracing::debug!(sid = %o.to, event = o.event.as_str(), error = %e, "emit failed");
        }
    }
}

/// How long [`settle_connect`] waits for socketioxide to finish a connect.
const CONNECT_SETTLE_BOUND: Duration = Duration::from_millis(50);

/// socketioxide writes the CONNECT reply and only then marks the socket connected, and `emit`
/// refuses a socket not marked yet. A client that sends `join` the moment it reads CONNECT
/// (every doorbell and page) can have its event handled, on another worker thread, in between:
/// the reply was dropped, about once in 500 connects (`a_join_sent_right_after_connecting_is_
/// always_answered`). The two steps are back to back with no await between them, so this waits
/// (yielding the CPU) for the mark, briefly; a socket that is closing instead is given up
/// after the bound. Waiting here rather than in a task keeps each connection's events in order.
fn settle_connect(socket: &SocketRef) {
    if socket.connected() {
        return;
    }
    let started = Instant::now();
    while !socket.connected() && started.elapsed() < CONNECT_SETTLE_BOUND {
        std::thread::yield_now();
    }
}

/// Sends each event to its connection: directly when it is here, else through the adapter
/// to the node that holds it (every connection is in the room named after its id).
pub(crate) async fn deliver_anywhere(io: &Io, out: &[Outgoing<Sid>]) {
    for o in out {
        if io.get_socket(o.to).is_some() {
            deliver(io, std::slice::from_ref(o));
        } else if let Err(e) = io.to(o.to).emit(o.event.as_str(), &o.payload).await {
            tracing::debug!(sid = %o.to, event = o.event.as_str(), error = %e, "remote emit failed");
        }
    }
}
