// The signaling connection: Socket.IO (the vendored client's global `io`) on the page's own
// origin, and the protocol's events turned into the page's events (docs/protocol.md). Only the
// lab's events plus `ice_servers` are used, so the page works against our server and the lab's.

export function available() {
  return typeof window.io === 'function';
}

// Same origin, default path /socket.io/. No automatic reconnection: the server treats a dropped
// connection as a hang-up, so a silent reconnect could not resume the call anyway; the owner
// gets a Retry button instead. WebSocket first (one round trip less than polling then
// upgrading); long-polling if a proxy refuses WebSockets.
function openSocket() {
  return window.io({
    path: '/socket.io/',
    transports: ['websocket', 'polling'],
    tryAllTransports: true,
    reconnection: false,
    forceNew: true,
    timeout: 10000,
  });
}

// A connection opened while the page rings, so the Answer tap does not wait for the TLS,
// Engine.IO and Socket.IO handshakes (20–35 ms on loopback, measured; more on a phone network).
// It only connects: the doorbell sees nothing until the tap joins the room.
// A paired device's connection also hears the ring history (`ring_update`): `onRingUpdate`.
export function warmUp(onRingUpdate) {
  const warm = { socket: openSocket(), usable: true };
  if (onRingUpdate) warm.socket.on('ring_update', onRingUpdate);
  warm.socket.on('connect', () => performance.mark('doorbell:connected'));
  warm.socket.on('connect_error', () => (warm.usable = false));
  warm.socket.on('disconnect', () => (warm.usable = false));
  return warm;
}

// Server events → page events.
const RELAYED = {
  joined: 'joined',
  created: 'created',
  full: 'full',
  ice_servers: 'ice_servers',
  ok: 'answer_received',
  ice_candidate: 'remote_candidate',
  bye: 'bye',
  error: 'server_error',
};

// The connection of one attempt: the warm one if it is still good, else a fresh one. Every
// event goes to `emit` as `{type, payload}`.
export function connect(warm, emit) {
  let socket;
  if (warm && warm.usable) {
    socket = warm.socket;
  } else {
    if (warm) warm.socket.close();
    socket = openSocket();
  }
  socket.on('connect', () => {
    performance.mark('doorbell:connected');
    emit({ type: 'signaling_up' });
  });
  socket.on('connect_error', () => emit({ type: 'signaling_error' }));
  socket.on('disconnect', () => emit({ type: 'signaling_lost' }));
  socket.on('joined', () => performance.mark('doorbell:joined'));
  for (const [name, type] of Object.entries(RELAYED)) {
    socket.on(name, (payload) => emit({ type, payload }));
  }
  // The warm connection may be up already: its 'connect' has been and gone.
  if (socket.connected) emit({ type: 'signaling_up' });
  return {
    send(name, payload) {
      socket.emit(name, payload);
    },
    connected() {
      return socket.connected;
    },
    // Lets a just-sent `bye` leave before the socket closes (the server reads a close as a
    // `bye` anyway, but an explicit one is faster and works with servers that differ).
    close(afterMs) {
      if (afterMs) setTimeout(() => socket.disconnect(), afterMs);
      else socket.disconnect();
    },
  };
}
