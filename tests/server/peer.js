// A Socket.IO test peer of either generation: socket.io-client 4.x (Engine.IO 4) or
// socket.io-client 2.x (Engine.IO 3), over websocket or polling, trusting the server's
// self-signed certificate as its CA. Every received event is recorded, so a scenario can
// check what arrived and, after `flush`, that nothing else did.
'use strict';
const path = require('path');
const modules = path.join(__dirname, '..', 'node_modules');
const clients = {
  v4: require(path.join(modules, 'socket.io-client')),
  v2: require(path.join(modules, 'socket.io-client-v2')),
};

const EVENTS = ['created', 'joined', 'new_peer', 'full', 'ice_servers', 'invite', 'ok', 'ice_candidate', 'bye', 'error'];
const WAIT_MS = 15000; // hang guard only; a correct server answers in milliseconds

class Peer {
  constructor(name, socket) {
    this.name = name;
    this.socket = socket;
    this.received = []; // [{event, payload}]
    this.waiters = [];
    for (const event of EVENTS) {
      socket.on(event, (payload) => this.record(event, payload));
    }
  }

  record(event, payload) {
    this.received.push({ event, payload });
    this.waiters = this.waiters.filter((w) => !w.check());
  }

  emit(event, ...args) {
    this.socket.emit(event, ...args);
  }

  // Resolves with the first recorded event matching `pred` not yet taken by an earlier wait.
  next(pred, what) {
    return new Promise((resolve, reject) => {
      const w = {
        check: () => {
          const i = this.received.findIndex((r) => !r.taken && pred(r));
          if (i < 0) return false;
          this.received[i].taken = true;
          clearTimeout(w.timer);
          resolve(this.received[i]);
          return true;
        },
      };
      if (w.check()) return;
      w.timer = setTimeout(() => reject(new Error(`${this.name}: no ${what} (got ${this.describe()})`)), WAIT_MS);
      this.waiters.push(w);
    });
  }

  async expect(event, payload) {
    const r = await this.next((r) => r.event === event, event);
    if (payload !== undefined) assertEqual(r.payload, payload, `${this.name} ${event} payload`);
    return r.payload;
  }

  // Our server follows created/joined with this member's STUN/TURN servers.
  async expectIceServers() {
    const p = await this.expect('ice_servers');
    if (!Array.isArray(p.iceServers) || !['all', 'relay'].includes(p.iceTransportPolicy) || typeof p.ttl !== 'number') {
      throw new Error(`${this.name}: malformed ice_servers ${JSON.stringify(p)}`);
    }
    return p;
  }

  async expectError(code) {
    const r = await this.next((r) => r.event === 'error', `error ${code}`);
    assertEqual(r.payload && r.payload.code, code, `${this.name} error code (message ${JSON.stringify(r.payload)})`);
    if (typeof r.payload.message !== 'string' || r.payload.message.length === 0) {
      throw new Error(`${this.name}: error ${code} without a message`);
    }
    return r.payload;
  }

  // A round trip through the server: an unknown event is answered by an error. The server
  // handles one connection's events in order, so when the answer arrives everything this peer
  // sent before has been processed (and relayed into the other peers' queues).
  async flush() {
    const marker = `flush_${Math.random().toString(36).slice(2)}`;
    this.socket.emit(marker, 'x');
    await this.next((r) => r.event === 'error' && r.payload && r.payload.code === 'unknown_event'
      && r.payload.message.includes(marker), 'flush answer');
  }

  // Everything received and not yet checked, flush answers aside.
  unexpected() {
    return this.received.filter((r) => !r.taken);
  }

  describe() {
    return JSON.stringify(this.received.map((r) => r.event));
  }

  close() {
    this.socket.close();
  }
}

// JSON with sorted keys: key order is not part of the protocol.
function canonical(value) {
  return JSON.stringify(value, (_, v) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]]))
    : v));
}

function assertEqual(actual, expected, what) {
  const a = canonical(actual);
  const e = canonical(expected);
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`);
}

// opts: {url, ca, client: 'v2'|'v4', transport: 'websocket'|'polling', token, tokenInQuery}
// (`tokenInQuery`: a v4 client that puts the token in the URL, as only v2 clients must).
function connect(name, opts) {
  const io = clients[opts.client];
  if (!io) throw new Error(`unknown client ${opts.client}`);
  const common = {
    transports: [opts.transport],
    upgrade: false,
    forceNew: true,
    reconnection: false,
    ca: opts.ca,
    timeout: WAIT_MS,
  };
  const extra = opts.client === 'v4' && !opts.tokenInQuery
    ? { auth: opts.token == null ? {} : { token: opts.token } }
    // Engine.IO 3 clients have no auth payload: the token goes in the query.
    : { query: opts.token == null ? {} : { token: opts.token } };
  const socket = io(opts.url, { ...common, ...extra });
  const peer = new Peer(name, socket);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: connect timeout`)), WAIT_MS);
    socket.on('connect', () => { clearTimeout(timer); resolve(peer); });
    socket.on('connect_error', (e) => { clearTimeout(timer); reject(new Error(`${name}: connect_error ${e && e.message}`)); });
  });
}

module.exports = { connect, assertEqual, Peer };
