// Drives the doorbell server through every scenario of issue #2's Tests section with real
// Socket.IO clients. Usage:
//   node scenarios.js '{"url":"https://127.0.0.1:PORT","caFile":"cert.pem","token":"T",
//                       "door":{"client":"v4","transport":"websocket"},
//                       "visitor":{"client":"v2","transport":"polling"},"mode":"token"}'
// "door" is the role that presents the token, "visitor" the role without one (null = none).
// mode "open": the server runs with --open-rooms (only the open_rooms scenario applies).
// Prints "PASS <scenario>" per scenario; exits 1 on the first failure.
'use strict';
const fs = require('fs');
const { connect, assertEqual } = require('./peer');

const cfg = JSON.parse(process.argv[2]);
const ca = fs.readFileSync(cfg.caFile, 'utf8');
const peers = [];

function door(name, token = cfg.token) {
  return track(connect(name, { url: cfg.url, ca, token, ...cfg.door }));
}
function visitor(name, token) {
  return track(connect(name, { url: cfg.url, ca, token, ...cfg.visitor }));
}
async function track(p) { const peer = await p; peers.push(peer); return peer; }
function room(label) { return `${label}-${Math.random().toString(36).slice(2, 10)}`; }

const OFFER = { type: 'offer', sdp: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' };
const ANSWER = { type: 'answer', sdp: 'v=0\r\no=- 2 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n' };
const CANDIDATE = { candidate: 'candidate:1 1 udp 2122260223 192.168.1.2 54321 typ host', sdpMid: '0', sdpMLineIndex: 0 };

// Everything each peer sent has been processed and every relay delivered; then nobody holds
// an event the scenario did not check.
async function settle(...ps) {
  for (const p of ps) await p.flush();
  for (const p of ps) await p.flush();
  for (const p of ps) {
    const extra = p.unexpected();
    if (extra.length) throw new Error(`${p.name} got unexpected ${JSON.stringify(extra)}`);
  }
}

async function pair(label) {
  const r = room(label);
  const a = await door(`${label}-door`);
  const b = await visitor(`${label}-visitor`);
  a.emit('join', r);
  await a.expect('created', r);
  await a.expectIceServers();
  b.emit('join', r);
  await b.expect('joined', r);
  await b.expectIceServers();
  await a.expect('new_peer', r);
  return { r, a, b };
}

const scenarios = {
  async created_joined_new_peer_full() {
    const r = room('cjf');
    const a = await door('a');
    const b = await visitor('b');
    const c = await visitor('c');
    a.emit('create', r); // the alias
    await a.expect('created', r);
    await a.expectIceServers();
    b.emit('join', r);
    await b.expect('joined', r);
    await b.expectIceServers();
    await a.expect('new_peer', r);
    c.emit('join', r);
    await c.expect('full', r);
    // c was not added: its relays are refused and reach nobody.
    c.emit('invite', OFFER);
    await c.expectError('not_in_room');
    await settle(a, b, c);
  },

  async relay_each_event_to_the_other_member_only() {
    const { a, b } = await pair('relay');
    const outsider = await visitor('outsider');
    b.emit('invite', OFFER);
    await a.expect('invite', OFFER);
    a.emit('ok', ANSWER);
    await b.expect('ok', ANSWER);
    b.emit('ice_candidate', CANDIDATE);
    await a.expect('ice_candidate', CANDIDATE);
    a.emit('ice_candidate', { ...CANDIDATE, usernameFragment: 'abcd' });
    await b.expect('ice_candidate', { ...CANDIDATE, usernameFragment: 'abcd' });
    a.emit('ice_candidate', null); // end of candidates
    await b.expect('ice_candidate', null);
    await settle(a, b, outsider);
  },

  async order_is_kept() {
    const { a, b } = await pair('order');
    b.emit('invite', OFFER);
    for (let i = 0; i < 20; i++) b.emit('ice_candidate', { ...CANDIDATE, sdpMLineIndex: i });
    await a.expect('invite', OFFER);
    const got = [];
    for (let i = 0; i < 20; i++) got.push((await a.expect('ice_candidate')).sdpMLineIndex);
    const order = a.received.filter((r) => r.event === 'invite' || r.event === 'ice_candidate')
      .map((r) => (r.event === 'invite' ? 'invite' : r.payload.sdpMLineIndex));
    assertEqual(order, ['invite', ...Array.from({ length: 20 }, (_, i) => i)], 'arrival order');
    await settle(a, b);
  },

  async two_rooms_never_see_each_other() {
    const one = await pair('one');
    const two = await pair('two');
    one.b.emit('invite', { ...OFFER, sdp: 'one' });
    two.b.emit('invite', { ...OFFER, sdp: 'two' });
    one.a.emit('ok', { ...ANSWER, sdp: 'one' });
    two.a.emit('ok', { ...ANSWER, sdp: 'two' });
    await one.a.expect('invite', { ...OFFER, sdp: 'one' });
    await two.a.expect('invite', { ...OFFER, sdp: 'two' });
    await one.b.expect('ok', { ...ANSWER, sdp: 'one' });
    await two.b.expect('ok', { ...ANSWER, sdp: 'two' });
    one.a.emit('bye', one.r);
    await one.b.expect('bye', one.r);
    await settle(one.a, one.b, two.a, two.b);
  },

  async bye_has_no_ping_pong_and_empty_room_disappears() {
    const { r, a, b } = await pair('bye');
    b.emit('bye', r);
    await a.expect('bye', r);
    a.emit('bye', r); // the peer answers bye with bye; it must not come back
    await settle(a, b);
    const late = await visitor('late');
    late.emit('join', r);
    await late.expectError('no_such_room');
    await settle(late);
  },

  async disconnect_becomes_bye() {
    const { r, a, b } = await pair('disc');
    b.close();
    await a.expect('bye', r);
    // The room still exists with one member: the visitor may come back.
    const again = await visitor('again');
    again.emit('join', r);
    await again.expect('joined', r);
    await again.expectIceServers();
    await a.expect('new_peer', r);
    a.close();
    await again.expect('bye', r);
    again.close();
    // The door's disconnect emptied... not yet: `again` was still in it. Now it is empty.
    const probe = await visitor('probe');
    await waitForRoomGone(probe, r);
  },

  async tokens() {
    const r = room('tok');
    const none = await door('no-token', null);
    none.emit('join', r);
    await none.expectError('no_such_room');
    const wrong = await door('wrong-token', `${cfg.token}x`);
    wrong.emit('join', r);
    await wrong.expectError('unauthorized');
    const empty = await door('empty-token', '');
    empty.emit('join', r);
    await empty.expectError('no_such_room');
    if (cfg.door.client === 'v4') {
      // Engine.IO 4 has an auth payload: a token in the URL (proxy logs) is not taken.
      const inUrl = await track(connect('token-in-url', { url: cfg.url, ca, token: cfg.token, ...cfg.door, tokenInQuery: true }));
      inUrl.emit('join', r);
      await inUrl.expectError('no_such_room');
    }
    const right = await door('right-token');
    right.emit('join', r);
    await right.expect('created', r);
    await right.expectIceServers();
    // A wrong token does not stop anyone from joining an existing room as second member.
    wrong.emit('join', r);
    await wrong.expect('joined', r);
    await wrong.expectIceServers();
    await right.expect('new_peer', r);
    await settle(none, wrong, empty, right);
  },

  async tokenless_join_of_missing_room_creates_nothing() {
    const r = room('missing');
    const v = await visitor('v');
    v.emit('join', r);
    await v.expectError('no_such_room');
    // Nothing was created: a second tokenless visitor finds no room either.
    const w = await visitor('w');
    w.emit('join', r);
    await w.expectError('no_such_room');
    await settle(v, w);
  },

  async invalid_payloads_get_errors_and_server_keeps_serving() {
    const { r, a, b } = await pair('bad');
    const stranger = await visitor('stranger');
    const cases = [
      [a, ['shout', 'x'], 'unknown_event'],
      [a, ['created', r], 'unknown_event'],
      // socket.io-client 2.x treats emit('error') as a local event; only 4.x sends it.
      ...(cfg.door.client === 'v4' ? [[a, ['error', { code: 'x' }], 'unknown_event']] : []),
      [stranger, ['join', 42], 'bad_payload'],
      [stranger, ['join', { room: r }], 'bad_payload'],
      [stranger, ['join', ''], 'bad_room_name'],
      [stranger, ['join', 'a b'], 'bad_room_name'],
      [stranger, ['join', '../etc'], 'bad_room_name'],
      [stranger, ['join', 'x'.repeat(65)], 'bad_room_name'],
      [stranger, ['join'], 'bad_payload'],
      [a, ['join', room('other')], 'already_in_room'],
      [stranger, ['invite', OFFER], 'not_in_room'],
      [stranger, ['ok', ANSWER], 'not_in_room'],
      [stranger, ['ice_candidate', CANDIDATE], 'not_in_room'],
      [b, ['invite', 'v=0'], 'bad_payload'],
      [b, ['invite', { type: 'answer', sdp: 'v=0' }], 'bad_payload'],
      [b, ['invite', { type: 'offer' }], 'bad_payload'],
      [b, ['invite', { type: 'offer', sdp: 'x'.repeat(65 * 1024) }], 'payload_too_large'],
      [a, ['ok', { type: 'offer', sdp: 'v=0' }], 'bad_payload'],
      [a, ['ok', [1, 2]], 'bad_payload'],
      [b, ['ice_candidate', 'candidate:1'], 'bad_payload'],
      [b, ['ice_candidate', { candidate: 5 }], 'bad_payload'],
      [b, ['ice_candidate', { ...CANDIDATE, sdpMLineIndex: -1 }], 'bad_payload'],
      [b, ['ice_candidate', { ...CANDIDATE, candidate: 'c'.repeat(3000) }], 'payload_too_large'],
      [b, ['bye', 17], 'bad_payload'],
    ];
    for (const [peer, args, code] of cases) {
      peer.emit(...args);
      await peer.expectError(code);
    }
    // Nothing changed: the call still relays, the stranger is still in no room.
    b.emit('invite', OFFER);
    await a.expect('invite', OFFER);
    stranger.emit('join', r);
    await stranger.expect('full', r);
    await settle(a, b, stranger);
  },

  async too_many_events_are_refused() {
    const { a, b } = await pair('flood');
    const sent = 150;
    for (let i = 0; i < sent; i++) b.emit('ice_candidate', CANDIDATE);
    // Every event is either relayed or refused; wait until all are accounted for.
    const count = () => ({
      relayed: a.received.filter((x) => x.event === 'ice_candidate').length,
      refused: b.received.filter((x) => x.event === 'error' && x.payload.code === 'rate_limited').length,
    });
    const deadline = Date.now() + 15000; // hang guard
    while (count().relayed + count().refused < sent) {
      if (Date.now() > deadline) throw new Error(`flood not accounted for: ${JSON.stringify(count())}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    const { relayed, refused } = count();
    if (refused === 0) throw new Error('no event was refused');
    if (relayed === 0) throw new Error('the burst should have been relayed');
    assertEqual(relayed + refused, sent, 'relayed + refused');
  },
};

const openScenarios = {
  async open_rooms_let_anyone_create() {
    const r = room('open');
    const v = await visitor('v', null);
    v.emit('join', r);
    await v.expect('created', r);
    await v.expectIceServers();
    const w = await visitor('w', null);
    w.emit('join', r);
    await w.expect('joined', r);
    await w.expectIceServers();
    await v.expect('new_peer', r);
    await settle(v, w);
  },
};

// The room of a departed pair goes away when the disconnect is processed, which races with
// the probe's connection; a tokenless join is answered either way, so ask until it is gone.
async function waitForRoomGone(probe, r) {
  for (let i = 0; i < 50; i++) {
    probe.emit('join', r);
    const answer = await probe.next((x) => x.event === 'error' || x.event === 'joined', 'join answer');
    if (answer.event === 'error') {
      assertEqual(answer.payload.code, 'no_such_room', 'probe error');
      return;
    }
    probe.emit('bye', r);
    await probe.flush();
  }
  throw new Error('room never disappeared');
}

async function main() {
  const list = cfg.mode === 'open' ? openScenarios : scenarios;
  for (const [name, run] of Object.entries(list)) {
    try {
      await run();
      console.log(`PASS ${name}`);
    } catch (e) {
      console.log(`FAIL ${name}: ${e && e.stack}`);
      process.exitCode = 1;
    } finally {
      while (peers.length) peers.pop().close();
    }
  }
  process.exit(process.exitCode || 0);
}

main();
