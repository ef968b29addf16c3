//! The types every file of the socket layer shares: the socket.io adapter and the hub as the
//! sockets see it. Apart so that those files need not import each other for them.

use crate::cluster::NodeDriver;
use crate::hub::Hub;
use socketioxide::SocketIo;
use socketioxide::socket::Sid;
use std::sync::Arc;

pub(crate) type SharedHub = Arc<Hub<Sid>>;

/// The socket.io adapter: the Redis adapter protocol, over Redis with `--redis`, over nothing
/// for a single node (`NodeDriver::Alone`).
pub(crate) type Adapter =
    socketioxide_redis::CustomRedisAdapter<socketioxide::adapter::Emitter, NodeDriver>;
pub(crate) type Io = SocketIo<Adapter>;
pub(crate) type SocketRef = socketioxide::extract::SocketRef<Adapter>;
