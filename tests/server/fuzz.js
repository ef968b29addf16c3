// Robustness: thousands of random and malformed Engine.IO / Socket.IO frames over raw
// websockets and raw polling requests (both Engine.IO versions), then a normal client must
// still get through a whole call. Usage: node fuzz.js URL CA_FILE TOKEN [SEED]
// Prints counts and "PASS fuzz_then_normal_call"; exits 1 on failure.
'use strict';
const fs = require('fs');
const https = require('https');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'node_modules', 'ws'));
const { connect, assertEqual } = require('./peer');

const [url, caFile, token, seedArg] = process.argv.slice(2);
const ca = fs.readFileSync(caFile, 'utf8');
const { hostname, port } = new URL(url);
let seed = Number(seedArg || 12345) >>> 0;

// xorshift32: reproducible from the printed seed.
function rand() {
  seed ^= seed << 13; seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5; seed >>>= 0;
  return seed / 4294967296;
}
const pick = (xs) => xs[Math.floor(rand() * xs.length)];
const int = (n) => Math.floor(rand() * n);

function randomString(n) {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(int(0x2500));
  return s;
}

// Frames that look almost right, and frames that are nothing at all.
function frame() {
  const room = pick(['r', 'x'.repeat(70), 'a b', '', '\u0000', '../..']);
  const json = pick([
    '[]', '[1]', '{}', 'null', '"x"', '["join"]', `["join","${room}"]`, '["invite",{"type":"offer"}]',
    '["ice_candidate",{"candidate":5}]', '["bye",1,2,3]', `["join",${'['.repeat(500)}`,
    '['.repeat(5000) + ']'.repeat(5000), '["x",' + '{"a":'.repeat(200) + '1' + '}'.repeat(200) + ']',
    '["ok",{"type":"answer","sdp":"' + 'y'.repeat(int(3000)) + '"}]', '[' + int(1e9) + ']', '["\\ud800"]',
  ]);
  return pick([
    () => randomString(int(200)),
    () => `${int(10)}${randomString(int(20))}`,
    () => `4${int(10)}${json}`,
    () => `42${json}`,
    () => `4${int(7)}${int(1e6)}${json}`,
    () => `45${int(5)}-${json}`, // binary event announcing attachments that never come
    () => `40/${randomString(int(10))},`,
    () => `41`, () => `40`, () => `40{"token":${json}}`, () => `2`, () => `3`, () => `5`, () => `6`, () => `1`,
    () => `2probe`, () => `42["join","r"]`.repeat(int(50)),
    () => '', () => '4' + 'x'.repeat(int(100000)),
  ])();
}

// A GET on a live session is a long poll that waits for the next ping (25 s); give up on it
// quickly, the point is only to have sent it.
function request(method, pathQuery, body, timeout = method === 'GET' ? 300 : 10000) {
  return new Promise((resolve) => {
    const req = https.request({ hostname, port, method, path: pathQuery, ca, agent: false, timeout,
      headers: body === undefined ? {} : { 'content-type': 'text/plain;charset=UTF-8' } }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { if (data.length < 1e6) data += d; });
      res.on('end', () => resolve({ status: res.statusCode, data }));
      res.on('error', () => resolve({ status: 0, data: '' }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, data: '' }));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

const stats = { wsFrames: 0, wsConnections: 0, pollRequests: 0, pollStatuses: {} };

function fuzzWebsocket(eio, frames) {
  return new Promise((resolve) => {
    const ws = new WebSocket(`wss://${hostname}:${port}/socket.io/?EIO=${eio}&transport=websocket`, { ca });
    stats.wsConnections++;
    const done = () => resolve();
    const timer = setTimeout(() => { ws.terminate(); done(); }, 10000);
    ws.on('error', () => {});
    ws.on('close', () => { clearTimeout(timer); done(); });
    ws.on('open', () => {
      if (rand() < 0.5) ws.send(eio === 4 ? '40' : '40'); // sometimes connect the namespace first
      for (let i = 0; i < frames && ws.readyState === WebSocket.OPEN; i++) {
        const f = frame();
        ws.send(rand() < 0.05 ? Buffer.from(f) : f); // some binary frames
        stats.wsFrames++;
      }
      if (rand() < 0.1) ws.send('x'.repeat(1 << 20)); // far over the size limit
      ws.close();
    });
  });
}

async function fuzzPolling(eio, posts) {
  const base = `/socket.io/?EIO=${eio}&transport=polling`;
  let sid;
  let q;
  const handshake = async () => {
    const hs = await request('GET', base, undefined, 10000);
    stats.pollRequests++;
    const m = /"sid":"([^"]+)"/.exec(hs.data);
    sid = m ? m[1] : 'nosid';
    q = `${base}&sid=${encodeURIComponent(sid)}`;
    stats.pollSessions = (stats.pollSessions || 0) + 1;
  };
  await handshake();
  for (let i = 0; i < posts; i++) {
    const body = rand() < 0.3
      ? Array.from({ length: 1 + int(5) }, frame).join('\x1e') // several EIO4 packets
      : (eio === 3 ? `${int(99)}:${frame()}` : frame()); // EIO3 length-prefixed framing
    const r = await pick([
      () => request('POST', q, body),
      () => request('POST', `${base}&sid=bogus${int(100)}`, body),
      () => request('POST', pick([`/socket.io/?EIO=9&transport=polling`, `/socket.io/?transport=bogus`,
        `/socket.io/?EIO=4&transport=polling&sid=${sid}&b64=1`, `/socket.io/`, `/socket.io/?EIO=4`]), body),
      () => Promise.all([request('GET', q), request('GET', q)]).then((rs) => rs[0]), // concurrent polls
    ])();
    stats.pollRequests++;
    stats.pollStatuses[r.status] = (stats.pollStatuses[r.status] || 0) + 1;
    // A malformed packet ends the session (that is the point); fuzz a fresh one.
    if (r.status !== 200 && rand() < 0.5) await handshake();
  }
}

async function normalCall() {
  const room = `after-fuzz-${int(1e9)}`;
  const a = await connect('door', { url, ca, token, client: 'v4', transport: 'websocket' });
  const b = await connect('visitor', { url, ca, client: 'v2', transport: 'polling' });
  a.emit('join', room);
  await a.expect('created', room);
  b.emit('join', room);
  await b.expect('joined', room);
  await a.expect('new_peer', room);
  b.emit('invite', { type: 'offer', sdp: 'v=0' });
  await a.expect('invite', { type: 'offer', sdp: 'v=0' });
  a.emit('bye', room);
  assertEqual(await b.expect('bye'), room, 'bye payload');
  a.close();
  b.close();
}

async function main() {
  const startSeed = seed;
  // 2 x 30 connections x ~60 frames + 2 x 8 sessions x ~60 requests, a few at a time.
  const jobs = [];
  for (let i = 0; i < 30; i++) {
    jobs.push(() => fuzzWebsocket(4, 40 + int(40)));
    jobs.push(() => fuzzWebsocket(3, 40 + int(40)));
  }
  for (let i = 0; i < 8; i++) {
    jobs.push(() => fuzzPolling(4, 40 + int(40)));
    jobs.push(() => fuzzPolling(3, 40 + int(40)));
  }
  const workers = Array.from({ length: 6 }, async () => {
    while (jobs.length) await jobs.shift()();
  });
  await Promise.all(workers);
  console.log(`seed ${startSeed} stats ${JSON.stringify(stats)}`);
  const health = await request('GET', '/healthz', undefined, 10000);
  assertEqual(health.status, 200, '/healthz after fuzzing');
  await normalCall();
  console.log('PASS fuzz_then_normal_call');
  process.exit(0);
}

main().catch((e) => { console.log(`FAIL fuzz_then_normal_call: ${e && e.stack}`); process.exit(1); });
