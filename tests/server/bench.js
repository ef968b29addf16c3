// Server benchmarks (not a test). Speaks Engine.IO 4 / Socket.IO 5 over raw websockets so the
// client side stays light. Start examples/bench_server first (see BENCHMARKS.md).
//   node bench.js memory  PORT PID CA_FILE COUNT...    RSS per idle websocket connection
//   node bench.js hold    PORT PID CA_FILE COUNT       opens COUNT idle connections, prints
//                                                      RSS per connection, holds them until killed
//   node bench.js latency PORT CA_FILE ROOMS SECONDS   invite -> other peer, p50/p99
//   node bench.js latency PORT CA_FILE ROOMS SECONDS PORT2 CA_FILE2
//                                                      the visitors on a second node (--redis)
'use strict';
const fs = require('fs');
const path = require('path');
const WebSocket = require(path.join(__dirname, '..', 'node_modules', 'ws'));

const [mode, ...args] = process.argv.slice(2);

function rssKiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One Socket.IO connection on the default namespace; answers pings; calls onEvent(name, arg).
function open(port, ca, onEvent) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, { ca, perMessageDeflate: false });
    ws.on('error', reject);
    ws.on('message', (data) => {
      const text = data.toString();
      if (text === '2') { ws.send('3'); return; }
      if (text[0] === '0') { ws.send('40'); return; }
      if (text.startsWith('40')) { resolve(ws); return; }
      if (text.startsWith('42') && onEvent) {
        const [name, arg] = JSON.parse(text.slice(2));
        onEvent(name, arg);
      }
    });
  });
}

async function openMany(port, ca, n, onEvent, parallel = 50) {
  const sockets = [];
  let next = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < n) {
      next++;
      sockets.push(await open(port, ca, onEvent));
    }
  }));
  return sockets;
}

async function memory(port, pid, caFile, counts) {
  const ca = fs.readFileSync(caFile, 'utf8');
  // Warm up allocator and TLS state with a few connections, then measure from there.
  const warm = await openMany(port, ca, 50);
  warm.forEach((s) => s.close());
  await sleep(2000);
  const base = rssKiB(pid);
  const held = [];
  for (const count of counts.map(Number)) {
    held.push(...await openMany(port, ca, count - held.length));
    await sleep(3000); // let the server settle before reading RSS
    const rss = rssKiB(pid);
    console.log(JSON.stringify({ connections: held.length, base_rss_kib: base, rss_kib: rss,
      per_connection_kib: +((rss - base) / held.length).toFixed(2) }));
  }
  held.forEach((s) => s.close());
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function latency(port, caFile, rooms, seconds, port2 = port, caFile2 = caFile) {
  const ca = fs.readFileSync(caFile, 'utf8');
  const ca2 = fs.readFileSync(caFile2, 'utf8');
  const samples = [];
  const pairs = [];
  for (let i = 0; i < rooms; i++) {
    const room = `bench-${i}`;
    let ready;
    const joined = new Promise((r) => { ready = r; });
    const door = await open(port, ca, (name, arg) => {
      if (name === 'new_peer') ready();
      if (name === 'invite') samples.push(Number(process.hrtime.bigint() - BigInt(arg.sdp)) / 1e6);
    });
    door.send(`42${JSON.stringify(['join', room])}`);
    const visitor = await open(port2, ca2, () => {});
    visitor.send(`42${JSON.stringify(['join', room])}`);
    await joined;
    pairs.push({ door, visitor });
    if (i % 100 === 99) console.error(`${i + 1} rooms`);
  }
  console.error(`${rooms} rooms ready`);
  // Every visitor sends one invite per second, spread evenly over the second.
  const end = Date.now() + seconds * 1000;
  const interval = 1000 / rooms;
  let i = 0;
  while (Date.now() < end) {
    const tickStart = Date.now();
    const { visitor } = pairs[i % rooms];
    visitor.send(`42${JSON.stringify(['invite', { type: 'offer', sdp: String(process.hrtime.bigint()) }])}`);
    i++;
    if (i % 10 === 0) await sleep(Math.max(0, interval * 10 - (Date.now() - tickStart)));
  }
  await sleep(1000);
  samples.sort((a, b) => a - b);
  console.log(JSON.stringify({ rooms, sent: i, received: samples.length,
    p50_ms: +percentile(samples, 50).toFixed(3), p99_ms: +percentile(samples, 99).toFixed(3),
    max_ms: +samples[samples.length - 1].toFixed(3) }));
  pairs.forEach(({ door, visitor }) => { door.close(); visitor.close(); });
}

async function hold(port, pid, caFile, count) {
  const ca = fs.readFileSync(caFile, 'utf8');
  const warm = await openMany(port, ca, 50);
  warm.forEach((s) => s.close());
  await sleep(2000);
  const base = rssKiB(pid);
  const held = await openMany(port, ca, Number(count));
  await sleep(3000);
  const rss = rssKiB(pid);
  console.log(JSON.stringify({ connections: held.length, base_rss_kib: base, rss_kib: rss,
    per_connection_kib: +((rss - base) / held.length).toFixed(2) }));
  await new Promise(() => {}); // held until the process is killed
}

(async () => {
  if (mode === 'memory') await memory(args[0], args[1], args[2], args.slice(3));
  else if (mode === 'hold') await hold(args[0], args[1], args[2], args[3]);
  else if (mode === 'latency') {
    await latency(args[0], args[1], Number(args[2]), Number(args[3]), args[4] || args[0], args[5] || args[1]);
  }
  else throw new Error('mode: memory | hold | latency');
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
