// The page's Socket.IO connection over a plain WebSocket: Engine.IO 4 / Socket.IO 5, the
// default namespace, JSON events without acknowledgements, which is all the call needs. It
// replaces the 47 KB vendored client on the ring's critical path: index.html loads this module
// `async`, so it runs as soon as it arrives – before the page's other modules are even parsed –
// and a ringing page's connection is opened then (`early`), its handshakes overlapping the
// rest of the page load. The vendored client stays the fallback for a network that refuses
// WebSockets (signaling.js), where it long-polls.
//
// The subset of socket.io-client's interface the page uses: on, off, emit, connected,
// disconnect, and the events 'connect', 'connect_error', 'disconnect'.

const CONNECT_TIMEOUT_MS = 10000;

export class WireSocket {
  constructor(url) {
    this.connected = false;
    // Whether the WebSocket itself ever opened: if not, the network may refuse WebSockets.
    this.opened = false;
    this.ended = false;
    this.listeners = new Map();
    this.pingTimer = null;
    this.ws = new WebSocket(url);
    this.connectTimer = setTimeout(() => this.fail(), CONNECT_TIMEOUT_MS);
    this.ws.onopen = () => (this.opened = true);
    this.ws.onmessage = (event) => this.receive(event.data);
    this.ws.onerror = () => {};
    this.ws.onclose = () => (this.connected ? this.lost() : this.fail());
  }

  on(name, listener) {
    if (!this.listeners.has(name)) this.listeners.set(name, []);
    this.listeners.get(name).push(listener);
    return this;
  }

  off(name, listener) {
    const list = this.listeners.get(name);
    if (list) this.listeners.set(name, list.filter((l) => l !== listener));
    return this;
  }

  emit(name, payload) {
    // Like socket.io-client, an event sent before the connection is up waits for it.
    const packet = '42' + JSON.stringify(payload === undefined ? [name] : [name, payload]);
    if (this.connected) this.ws.send(packet);
    else if (!this.ended) (this.queued ??= []).push(packet);
    return this;
  }

  disconnect() {
    if (this.ended) return this;
    if (this.connected && this.ws.readyState === WebSocket.OPEN) this.ws.send('41');
    this.end();
    this.ws.close();
    return this;
  }

  fire(name, payload) {
    for (const listener of [...(this.listeners.get(name) || [])]) listener(payload);
  }

  receive(data) {
    if (typeof data !== 'string' || data.length === 0) return;
    switch (data[0]) {
      case '0': // Engine.IO open: join the default namespace.
        this.heartbeat(data.slice(1));
        this.ws.send('40');
        break;
      case '2': // ping: answer, and expect the next within the server's interval.
        this.ws.send('3');
        this.heartbeat(null);
        break;
      case '1': // Engine.IO close
        this.ws.close();
        break;
      case '4':
        this.message(data.slice(1));
        break;
      default: // pong, noop, upgrade: nothing to do over a WebSocket.
        break;
    }
  }

  message(data) {
    switch (data[0]) {
      case '0': // connected to the namespace
        clearTimeout(this.connectTimer);
        this.connected = true;
        for (const packet of this.queued || []) this.ws.send(packet);
        this.queued = null;
        this.fire('connect');
        break;
      case '1': // the server left the namespace
        this.ws.close();
        break;
      case '2': {
        // An event: optional ack id digits, then a JSON array [name, ...args].
        let event;
        try {
          event = JSON.parse(data.slice(1).replace(/^\d+/, ''));
        } catch {
          return;
        }
        if (Array.isArray(event) && typeof event[0] === 'string') this.fire(event[0], event[1]);
        break;
      }
      case '4': // connect refused
        this.fail();
        break;
      default:
        break;
    }
  }

  // The server pings every pingInterval; a silence of interval + timeout means it is gone.
  heartbeat(openPayload) {
    if (openPayload) {
      try {
        const open = JSON.parse(openPayload);
        this.silenceMs = (open.pingInterval || 25000) + (open.pingTimeout || 20000);
      } catch {
        this.silenceMs = 45000;
      }
    }
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => this.ws.close(), this.silenceMs || 45000);
  }

  end() {
    this.ended = true;
    this.connected = false;
    this.queued = null;
    clearTimeout(this.connectTimer);
    clearTimeout(this.pingTimer);
  }

  fail() {
    if (this.ended) return;
    this.end();
    this.ws.close();
    this.fire('connect_error');
  }

  lost() {
    if (this.ended) return;
    this.end();
    this.fire('disconnect');
  }
}

export function wireUrl(location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/socket.io/?EIO=4&transport=websocket`;
}

// A ringing page (a room in its URL, not a live view) connects the moment this module runs; the
// call page takes this connection over (signaling.js `warmUp`). Other pages connect when they
// need to.
function ringing(location) {
  const query = new URLSearchParams(location.search);
  return location.pathname === '/' && query.has('room') && query.get('live') !== '1';
}

export const early =
  typeof WebSocket === 'function' && ringing(window.location) ? new WireSocket(wireUrl(window.location)) : null;
