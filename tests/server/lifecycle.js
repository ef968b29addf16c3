// Peers for the server's lifecycle tests. Usage: node lifecycle.js MODE URL CA_FILE TOKEN
//   shutdown: two rooms (one full, one with one member, mixed generations) print "READY",
//             then every member must receive `bye` with its room name when the server stops
//             ("PASS shutdown_bye").
//   limits:   the server allows 2 connections per address; the third gets
//             error too_many_connections and is disconnected; after one leaves, a new one
//             gets in ("PASS connection_limits").
'use strict';
const fs = require('fs');
const { connect, assertEqual } = require('./peer');

const [mode, url, caFile, token] = process.argv.slice(2);
const ca = fs.readFileSync(caFile, 'utf8');
const opts = (client, transport, withToken) => ({ url, ca, client, transport, token: withToken ? token : null });

async function shutdown() {
  const r1 = 'shutdown-one';
  const r2 = 'shutdown-two';
  const a = await connect('a', opts('v4', 'websocket', true));
  const b = await connect('b', opts('v2', 'polling', false));
  const c = await connect('c', opts('v2', 'websocket', true));
  a.emit('join', r1);
  await a.expect('created', r1);
  b.emit('join', r1);
  await b.expect('joined', r1);
  await a.expect('new_peer', r1);
  c.emit('join', r2);
  await c.expect('created', r2);
  console.log('READY');
  await Promise.all([a.expect('bye', r1), b.expect('bye', r1), c.expect('bye', r2)]);
  console.log('PASS shutdown_bye');
}

async function limits() {
  const first = await connect('first', opts('v4', 'websocket', false));
  const second = await connect('second', opts('v2', 'polling', false));
  // The connection itself is accepted, then refused with an error and closed.
  const third = await connect('third', opts('v4', 'websocket', false));
  await third.expectError('too_many_connections');
  await new Promise((resolve) => (third.socket.disconnected ? resolve() : third.socket.on('disconnect', resolve)));
  first.close();
  // The slot frees when the server processes the disconnect; retry until it has.
  for (let i = 0; ; i++) {
    const next = await connect(`next${i}`, opts('v4', 'websocket', false));
    await next.flush().catch(() => {});
    const refused = next.received.some((r) => r.event === 'error' && r.payload.code === 'too_many_connections');
    if (!refused) { assertEqual(next.socket.connected, true, 'connected'); break; }
    next.close();
    if (i > 50) throw new Error('slot never freed');
  }
  second.close();
  console.log('PASS connection_limits');
}

({ shutdown, limits })[mode]()
  .then(() => process.exit(0))
  .catch((e) => { console.log(`FAIL ${mode}: ${e && e.stack}`); process.exit(1); });
