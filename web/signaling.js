// The signaling connection: Socket.IO on the page's own origin (socket.js over a WebSocket; the
// vendored socket.io client, long-polling, where WebSockets are refused), and the protocol's
// events turned into the page's events (docs/protocol.md). Only the lab's events plus
// `ice_servers` and `prepare` are used, so the page works against our server and the lab's.

import { WireSocket, wireUrl, early } from './socket.js';

// Set once a WebSocket failed before it even opened: a proxy or network that refuses them.
let websocketRefused = false;

export function available() {
  return typeof WebSocket === 'function' || typeof window.io === 'function';
}

function wire() {
  const socket = new WireSocket(wireUrl(window.location));
  watchRefusal(socket);
  return socket;
}

function watchRefusal(socket) {
  socket.on('connect_error', () => {
    if (!socket.opened) websocketRefused = true;
  });
}
if (early) watchRefusal(early);

// A connection through the vendored client, loaded only when needed (it sets the global
// `io`): the call's long-polling fallback, and the home view's connection, which stays open
// for hours and so `reconnect`s by itself.
export function vendoredSocket({ transports, reconnect }) {
  return import('./vendor/socket.io.min.js').then(() =>
    window.io({ path: '/socket.io/', transports, reconnection: reconnect, forceNew: true, timeout: 10000 })
  );
}

// No automatic reconnection for a call: the server treats a dropped connection as a hang-up,
// so a silent reconnect could not resume it; the owner gets a Retry button instead.
function fallback() {
  return vendoredSocket({ transports: ['polling', 'websocket'], reconnect: false });
}

// A connection: over a WebSocket unless those are refused here.
function openSocket() {
  if (typeof WebSocket !== 'function' || websocketRefused) return fallback();
  return Promise.resolve(wire());
}

// The connection opened while the page rings (socket.js opened it as the page started loading),
// so the Answer tap does not wait for the TLS, Engine.IO and Socket.IO handshakes. It only
// connects and asks to ready the offer (`prepare`): the doorbell sees nothing until the tap joins
// the room. `on` gets the page's events from before the tap: `warm_connected`, `prepared` (the
// ICE servers), `prepare_refused` (`code`: full, no_such_room, …).
// A paired device's connection also hears the ring history (`ring_update`): `onRingUpdate`.
export function warmUp(on, onRingUpdate) {
  const socket = early && !early.ended ? early : typeof WebSocket === 'function' ? wire() : null;
  if (!socket) return null;
  const warm = { socket, usable: true };
  if (onRingUpdate) socket.on('ring_update', onRingUpdate);
  const listeners = {
    connect: () => {
      performance.mark('doorbell:connected');
      on({ type: 'warm_connected' });
    },
    ice_servers: (payload) => on({ type: 'prepared', payload }),
    full: () => on({ type: 'prepare_refused', code: 'full' }),
    error: (p) => on({ type: 'prepare_refused', code: p && typeof p === 'object' ? p.code : null }),
  };
  for (const [name, listener] of Object.entries(listeners)) socket.on(name, listener);
  socket.on('connect_error', () => (warm.usable = false));
  socket.on('disconnect', () => (warm.usable = false));
  // The early connection may be up already: say so once the caller holds `warm` (its answer,
  // `prepare`, goes through it), not from inside this call.
  if (socket.connected) queueMicrotask(listeners.connect);
  // Asks our server to ready the offer; the lab's ignores the event.
  warm.prepare = (room) => socket.emit('prepare', room);
  // From the tap on, the attempt's own listeners hear this connection.
  warm.handOver = () => {
    for (const [name, listener] of Object.entries(listeners)) socket.off(name, listener);
  };
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

// The connection of one attempt: the warm one if it is still good, else a fresh one (the
// vendored client's if a WebSocket cannot even open). Every event goes to `emit` as
// `{type, payload}`.
export function connect(warm, emit) {
  let socket = null;
  let closed = false;
  const attach = (s) => {
    if (closed) {
      s.disconnect();
      return;
    }
    socket = s;
    s.on('connect', () => {
      performance.mark('doorbell:connected');
      emit({ type: 'signaling_up' });
    });
    s.on('connect_error', () => {
      // Refused before it opened: try the long-polling client once, within this attempt.
      if (s instanceof WireSocket && !s.opened && !closed) {
        socket = null;
        fallback().then(attach, () => emit({ type: 'no_signaling_client' }));
      } else {
        emit({ type: 'signaling_error' });
      }
    });
    s.on('disconnect', () => emit({ type: 'signaling_lost' }));
    s.on('joined', () => performance.mark('doorbell:joined'));
    for (const [name, type] of Object.entries(RELAYED)) {
      s.on(name, (payload) => emit({ type, payload }));
    }
    // The warm connection may be up already: its 'connect' has been and gone.
    if (s.connected) emit({ type: 'signaling_up' });
  };
  if (warm && warm.usable) {
    warm.handOver();
    attach(warm.socket);
  } else {
    if (warm) warm.socket.disconnect();
    openSocket().then(attach, () => emit({ type: 'no_signaling_client' }));
  }
  return {
    send(name, payload) {
      if (socket) socket.emit(name, payload);
    },
    connected() {
      return !!socket && socket.connected;
    },
    // Lets a just-sent `bye` leave before the socket closes (the server reads a close as a
    // `bye` anyway, but an explicit one is faster and works with servers that differ).
    close(afterMs) {
      closed = true;
      const s = socket;
      if (!s) return;
      if (afterMs) setTimeout(() => s.disconnect(), afterMs);
      else s.disconnect();
    },
  };
}
