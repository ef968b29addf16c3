// A stand-in doorbell that runs in its own headless Chromium, for testing the call page's
// in-call path before (and independently of) the Rust agent. It speaks the doorbell's side of
// DESIGN.md §3 with the doorbell token, answers the page's offer with a real RTCPeerConnection,
// and sends a 640x480 canvas video stamped with the glass-to-glass barcode (the media crate's
// test-pattern contract, see stamp.js) plus a tone, both in one stream.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { encodeStamp } = require('./stamp');
const { inPage } = require('./browser');

const ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--ignore-certificate-errors',
  '--allow-loopback-in-peer-connection',
  '--mute-audio',
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  '--autoplay-policy=no-user-gesture-required',
];

// Runs in the doorbell page (same origin as the server, with the vendored io() added to it).
function doorbellInPage({ room, token, width, height, fps }, encode) {
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  let sequence = 0;
  const stampRow = ctx.createImageData(width, 16);
  setInterval(() => {
    // Moving pattern so the encoder has real work, then the stamp on the top 16 rows.
    const t = sequence / fps;
    ctx.fillStyle = '#204060';
    ctx.fillRect(0, 0, width, height);
    ctx.fillStyle = '#e0a020';
    ctx.fillRect(((t * 120) % (width + 80)) - 80, height / 2 - 40, 80, 80);
    stampRow.data.set(encode(Date.now(), sequence, width));
    ctx.putImageData(stampRow, 0, 0);
    sequence = (sequence + 1) & 0xffff;
  }, 1000 / fps);
  const video = canvas.captureStream(fps).getVideoTracks()[0];
  const audioContext = new AudioContext({ sampleRate: 48000 });
  const tone = audioContext.createOscillator();
  tone.frequency.value = 440;
  const sink = audioContext.createMediaStreamDestination();
  tone.connect(sink);
  tone.start();
  const stream = new MediaStream([video, sink.stream.getAudioTracks()[0]]);

  const peer = { events: [], pcs: [], pc: null };
  window.peer = peer;
  const socket = window.io({ auth: { token }, transports: ['websocket'], reconnection: false });
  peer.socket = socket;
  const record = (name, payload) => peer.events.push({ name, payload, at: Date.now() });
  let pendingCandidates = [];

  socket.on('connect', () => socket.emit('join', room));
  ['created', 'joined', 'full', 'new_peer', 'error'].forEach((name) => socket.on(name, (p) => record(name, p)));
  // A new page joining starts a new call, even after the network was "dropped".
  socket.on('new_peer', () => {
    peer.dropped = false;
  });
  socket.on('invite', async (offer) => {
    // A doorbell without network hears nothing: the page's ICE restart offers go unanswered.
    if (peer.dropped) {
      record('invite_unheard', offer.type);
      return;
    }
    record('invite', offer.type);
    if (peer.pc) peer.pc.close();
    const pc = new RTCPeerConnection({ iceServers: [] });
    peer.pc = pc;
    peer.pcs.push(pc);
    stream.getTracks().forEach((track) => pc.addTrack(track, stream));
    pc.onicecandidate = (e) => socket.emit('ice_candidate', e.candidate ? e.candidate.toJSON() : null);
    pc.onconnectionstatechange = () => record('connection', pc.connectionState);
    await pc.setRemoteDescription(offer);
    for (const c of pendingCandidates) await pc.addIceCandidate(c).catch(() => {});
    pendingCandidates = [];
    await pc.setLocalDescription(await pc.createAnswer());
    socket.emit('ok', { type: 'answer', sdp: pc.localDescription.sdp });
    record('ok_sent');
  });
  socket.on('ice_candidate', (c) => {
    record('ice_candidate', c ? 'candidate' : null);
    if (!c || !c.candidate) return;
    if (peer.pc && peer.pc.remoteDescription) peer.pc.addIceCandidate(c).catch(() => {});
    else pendingCandidates.push(c);
  });
  socket.on('bye', () => {
    record('bye');
    if (peer.pc) peer.pc.close();
    peer.pc = null;
  });

  peer.inboundAudio = async () => {
    if (!peer.pc) return null;
    let out = null;
    (await peer.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out = { packetsReceived: s.packetsReceived || 0, totalAudioEnergy: s.totalAudioEnergy || 0 };
      }
    });
    return out;
  };
  socket.on('connect_error', (err) => record('connect_error', String(err && err.message)));
  socket.on('disconnect', (reason) => record('disconnect', reason));
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const check = setInterval(() => {
      const e = peer.events.find((x) => ['created', 'joined', 'full', 'error', 'connect_error'].includes(x.name));
      if (e) {
        clearInterval(check);
        resolve(e);
      } else if (Date.now() - started > 20000) {
        clearInterval(check);
        reject(new Error('no answer to join within 20 s; events: ' + JSON.stringify(peer.events)));
      }
    }, 20);
  });
}

class BrowserDoorbell {
  /** Starts the doorbell and joins `room` with `token`; resolves once the server answered. */
  static async start(serverUrl, room, token, { width = 640, height = 480, fps = 30 } = {}) {
    const { chromium } = require('playwright-core');
    const self = new BrowserDoorbell();
    self.userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorbell-peer-'));
    self.context = await chromium.launchPersistentContext(self.userDataDir, {
      executablePath: process.env.DOORBELL_CHROMIUM || '/usr/bin/chromium',
      headless: false, // --headless=new is in ARGS
      args: ARGS,
      ignoreHTTPSErrors: true,
    });
    self.page = self.context.pages()[0] || (await self.context.newPage());
    await self.page.goto(`${serverUrl}/`, { waitUntil: 'load' });
    // The page loads the vendored client only where it needs it; the stand-in always does.
    await self.page.addScriptTag({ url: '/vendor/socket.io.min.js' });
    self.joinReply = await self.page.evaluate(
      inPage(doorbellInPage, { room, token, width, height, fps }, encodeStamp)
    );
    return self;
  }

  events() {
    return this.page.evaluate(() => window.peer.events.map((e) => ({ name: e.name, payload: e.payload })));
  }

  /** Resolves once an event named `name` (optionally with `payload`) was recorded. */
  async waitEvent(name, payload, timeoutMs = 20000) {
    await this.page.waitForFunction(
      ([n, p]) => window.peer.events.some((e) => e.name === n && (p === undefined || e.payload === p)),
      [name, payload],
      { timeout: timeoutMs, polling: 50 }
    );
  }

  inboundAudio() {
    return this.page.evaluate(() => window.peer.inboundAudio());
  }

  /** Hangs up like the agent: `bye` with the room. */
  bye(room) {
    return this.page.evaluate((r) => {
      window.peer.socket.emit('bye', r);
      if (window.peer.pc) window.peer.pc.close();
      window.peer.pc = null;
    }, room);
  }

  /** Drops the media without telling anyone (a doorbell losing its network). */
  dropMedia() {
    return this.page.evaluate(() => {
      window.peer.dropped = true;
      if (window.peer.pc) window.peer.pc.close();
      window.peer.pc = null;
    });
  }

  async close() {
    try {
      await this.context.close();
    } finally {
      fs.rmSync(this.userDataDir, { recursive: true, force: true });
    }
  }
}

module.exports = { BrowserDoorbell };
