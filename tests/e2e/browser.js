#!/usr/bin/env node
// Headless-Chromium driver for the owner's call page (web/). Rust e2e tests spawn it.
//
//   node tests/e2e/browser.js URL [steps...]
//
// Steps run in this order, each only if given:
//   --wait-state S | --expect-state S   wait until <body data-state> is S (before answering)
//   --answer                            click #answer
//   --wait-state-after S                wait until data-state is S (after answering)
//   --measure-seconds N                 wait for the first decoded frame, then measure N seconds:
//                                       fps, frames decoded, video size, glass-to-glass latency
//   --screenshot PATH                   PNG of the viewport
//   --hold                              keep the browser open and obey stdin lines (below)
//   --hangup | --close-without-hangup | --kill
//                                       end: click #hangup (then wait for ended-local) | close
//                                       the tab | SIGKILL the browser process
// Options:
//   --timeout-ms N (20000)   bound of every wait
//   --deny-mic               the page is refused the microphone (listen-only path)
//   --viewport WxH (390x844) phone portrait by default
//   --chromium PATH          default $DOORBELL_CHROMIUM or /usr/bin/chromium
//   --browser B              chromium (default, or $DOORBELL_BROWSER) through playwright-core,
//                            or firefox: Debian's firefox-esr through puppeteer-core over
//                            WebDriver BiDi, fake media by preference (no --deny-mic there)
//   --firefox PATH           default $DOORBELL_FIREFOX or /usr/bin/firefox-esr
//   --push-service WS-URL    Firefox only: its push service (tests/e2e/push_service.js)
//   --settle-ms N            after the last step, wait N ms before the final report
//   --send-tone HZ           the page's microphone is a tone warbling ±200 Hz around HZ five
//                            times a second (about -14 dBFS) instead of Chromium's fake beep
//                            (a pure steady sine cannot be told apart from its own echo at
//                            any delay, so no echo canceller can lock onto it; a voice can)
//   --timing                 add "timing" to the result: navigation and resource timing, and the
//                            times (page clock, ms) of the first tap, WebSocket, RTCPeerConnection
//                            steps and first video frame, recorded the same way on any page
//                            (scripts/bench_speed.py compares our page with the lab's)
//   --tap-when-ready         with --answer: the tap comes from inside the page the moment the Answer
//                            (or the lab's Call) button shows, as the fastest person would tap,
//                            instead of Playwright's click after the load event (which waits
//                            for the button to be stable: 100–800 ms here)
//   --warm-browser-ms N      open about:blank and wait N ms before the link: a phone's browser
//                            is running when the link is tapped, a fresh headless one is not
//   --tone-level HZ:SECONDS  after measuring, the level of the band HZ ± 250 Hz in the
//                            received audio over SECONDS (Web Audio analyser):
//                            "tone_level_db" in the result
//
// Output: JSON lines on stdout. Without --hold exactly one: {"event":"result",...}. With --hold,
// first {"event":"holding",...}, then one line per stdin command, then the result line.
// stdin commands in --hold: "measure N", "state", "wait-state S", "wait-mic", "click ID", "screenshot PATH",
// "hangup", "close", "kill" (the last three end the hold; so does end of input).
// Exit status is 0 whenever the harness worked; assertions belong to the caller. A wait that
// times out is reported in the result ("timeouts": [...]), not as a failure.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const readline = require('readline');
const { decodeStamp } = require('./stamp');

const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--use-fake-device-for-media-stream',
  '--ignore-certificate-errors',
  '--allow-loopback-in-peer-connection',
  '--hide-scrollbars',
  '--mute-audio',
  // Timers and rendering of a page nobody looks at must not be throttled: we measure fps.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
  '--autoplay-policy=no-user-gesture-required',
];

class UsageError extends Error {}

// Injected before the page loads: records each RTCPeerConnection (window.__e2ePeers) and
// gives a getStats summary of the latest (window.__e2eStats). Test-side only.
const OBSERVE_PEERS = `(() => {
  const Native = window.RTCPeerConnection;
  if (typeof Native !== 'function') return;
  const peers = [];
  window.__e2ePeers = peers;
  window.RTCPeerConnection = new Proxy(Native, {
    construct(target, args) {
      const pc = Reflect.construct(target, args);
      peers.push(pc);
      return pc;
    },
  });
  window.__e2ePeer = () => peers[peers.length - 1] || null;
  window.__e2eStats = async () => {
    const pc = window.__e2ePeer();
    if (!pc || pc.signalingState === 'closed') return null;
    const report = await pc.getStats();
    const out = { connectionState: pc.connectionState, iceConnectionState: pc.iceConnectionState,
                  video: null, audio: null, outboundAudio: null };
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        out.video = { framesDecoded: s.framesDecoded || 0, framesPerSecond: s.framesPerSecond || 0,
          frameWidth: s.frameWidth || 0, frameHeight: s.frameHeight || 0, bytesReceived: s.bytesReceived || 0,
          packetsLost: s.packetsLost || 0, pliCount: s.pliCount || 0,
          codec: (s.codecId && report.get(s.codecId) && report.get(s.codecId).mimeType) || null };
      } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
        out.audio = { packetsReceived: s.packetsReceived || 0, bytesReceived: s.bytesReceived || 0,
          totalAudioEnergy: s.totalAudioEnergy || 0 };
      } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
        out.outboundAudio = { packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0 };
      }
    });
    return out;
  };
  // The page's own step marks (performance.mark('doorbell:…')), first of each name.
  window.__e2eMarks = () => {
    const marks = {};
    for (const m of performance.getEntriesByType('mark')) {
      if (!m.name.startsWith('doorbell:')) continue;
      const name = m.name.slice('doorbell:'.length);
      if (marks[name] === undefined) marks[name] = m.startTime;
    }
    return marks;
  };
})();`;

// Injected before the page loads when --send-tone is given: getUserMedia's audio becomes a sine.
const sendTone = (hz) => `(() => {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia) return;
  const original = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints) => {
    const wantsVideo = constraints && constraints.video;
    const stream = wantsVideo ? await original({ video: constraints.video }) : new MediaStream();
    if (constraints && constraints.audio) {
      const ctx = new AudioContext({ sampleRate: 48000 });
      const oscillator = ctx.createOscillator();
      oscillator.frequency.value = ${Number(hz)};
      const warble = ctx.createOscillator();
      warble.frequency.value = 5;
      const depth = ctx.createGain();
      depth.gain.value = 200;
      warble.connect(depth).connect(oscillator.frequency);
      warble.start();
      const gain = ctx.createGain();
      gain.gain.value = 0.2;
      const out = ctx.createMediaStreamDestination();
      oscillator.connect(gain).connect(out);
      oscillator.start();
      await ctx.resume();
      for (const track of out.stream.getAudioTracks()) stream.addTrack(track);
    }
    return stream;
  };
})();`;

// Injected before the page loads when --timing is given: the page clock (performance.now())
// of each step of a call, observed from outside the page's code so that any page (ours, the
// lab's) is timed the same way. First occurrence of each name only.
const TIMING_INIT = `(() => {
  const t = {};
  window.__e2eTiming = t;
  const at = (name) => { if (t[name] === undefined) t[name] = performance.now(); };
  addEventListener('click', () => at('tap'), true);
  const NativeWs = window.WebSocket;
  if (typeof NativeWs === 'function') {
    window.WebSocket = new Proxy(NativeWs, {
      construct(target, args) {
        at('ws_created');
        const ws = Reflect.construct(target, args);
        ws.addEventListener('open', () => at('ws_open'));
        return ws;
      },
    });
  }
  const Pc = window.RTCPeerConnection;
  if (typeof Pc === 'function') {
    const setLocal = Pc.prototype.setLocalDescription;
    Pc.prototype.setLocalDescription = function (desc) {
      // No argument (or no type) in stable state is an implicit offer.
      const type = (desc && desc.type) || (this.signalingState === 'stable' ? 'offer' : 'answer');
      at('set_local_' + type);
      return setLocal.apply(this, arguments).then((v) => { at('set_local_' + type + '_done'); return v; });
    };
    const setRemote = Pc.prototype.setRemoteDescription;
    Pc.prototype.setRemoteDescription = function (desc) {
      const type = (desc && desc.type) || 'unknown';
      at('set_remote_' + type);
      return setRemote.apply(this, arguments).then((v) => { at('set_remote_' + type + '_done'); return v; });
    };
    window.RTCPeerConnection = new Proxy(window.RTCPeerConnection, {
      construct(target, args) {
        at('pc_created');
        const pc = Reflect.construct(target, args);
        pc.addEventListener('icegatheringstatechange', () => {
          if (pc.iceGatheringState === 'complete') at('ice_gathering_complete');
        });
        pc.addEventListener('iceconnectionstatechange', () => {
          if (pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed') at('ice_connected');
        });
        pc.addEventListener('connectionstatechange', () => {
          if (pc.connectionState === 'connected') at('pc_connected');
        });
        pc.addEventListener('track', (e) => at('track_' + e.track.kind));
        return pc;
      },
    });
  }
  // The first frame of any <video> given a stream: rVFC on the element, as both pages do.
  const desc = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'srcObject');
  if (desc && desc.set) {
    Object.defineProperty(HTMLMediaElement.prototype, 'srcObject', {
      ...desc,
      set(value) {
        desc.set.call(this, value);
        if (value && this instanceof HTMLVideoElement && this.requestVideoFrameCallback) {
          this.requestVideoFrameCallback(() => at('first_frame'));
        }
      },
    });
  }
})();`;

// Injected with --tap-when-ready: taps the page's Answer button (or the lab page's Call) in the
// first animation frame where it shows once the page's scripts have run (DOMContentLoaded) and,
// on the lab page, its socket.io client has loaded (its button shows before it can take the
// tap). The same on both pages otherwise.
const TAP_WHEN_READY = `(() => {
  const look = () => {
    const b = document.querySelector('#answer, #callButton');
    // The lab page's button shows before it can act: its click needs the socket.io client,
    // which the page loads by itself.
    const able = !b || b.id !== 'callButton' || typeof window.io === 'function';
    if (b && able && !b.hidden && b.offsetParent !== null && !b.disabled) {
      window.__e2eTapped = true;
      b.click();
      return;
    }
    requestAnimationFrame(look);
  };
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', () => requestAnimationFrame(look));
  } else {
    requestAnimationFrame(look);
  }
})();`;

// In the page, for --timing: navigation and resource timing (ms from navigation start) and
// the recorded steps, with the page's time origin (Unix ms) to place other clocks' events.
async function timingInPage() {
  const nav = performance.getEntriesByType('navigation')[0];
  const pick = (e, keys) => Object.fromEntries(keys.map((k) => [k, e ? e[k] : null]));
  let codec = null;
  const pc = window.__e2ePeer && window.__e2ePeer();
  if (pc && pc.signalingState !== 'closed') {
    const report = await pc.getStats();
    report.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video' && s.codecId && report.get(s.codecId)) {
        codec = report.get(s.codecId).mimeType;
      }
    });
  }
  return {
    time_origin: performance.timeOrigin,
    navigation: pick(nav, ['fetchStart', 'requestStart', 'responseStart', 'responseEnd', 'domInteractive',
      'domContentLoadedEventEnd', 'loadEventEnd', 'transferSize']),
    resources: performance.getEntriesByType('resource').map((r) => ({
      name: new URL(r.name).pathname,
      type: r.initiatorType,
      start: r.startTime,
      response_end: r.responseEnd,
      size: r.transferSize,
    })),
    steps: { ...(window.__e2eTiming || {}) },
    video_codec: codec,
  };
}

// In the page: the level (dB, analyser scale) of the band HZ ± 250 Hz in the received audio,
// the power mean over SECONDS.
async function toneLevelInPage({ hz, seconds }) {
  const pc = window.__e2ePeer();
  const receiver = pc && pc.getReceivers().find((r) => r.track && r.track.kind === 'audio');
  if (!receiver) return null;
  const ctx = new AudioContext({ sampleRate: 48000 });
  await ctx.resume();
  const source = ctx.createMediaStreamSource(new MediaStream([receiver.track]));
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  analyser.smoothingTimeConstant = 0;
  source.connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const binHz = ctx.sampleRate / analyser.fftSize;
  const [low, high] = [Math.round((hz - 250) / binHz), Math.round((hz + 250) / binHz)];
  let power = 0;
  let reads = 0;
  const end = performance.now() + seconds * 1000;
  while (performance.now() < end) {
    await new Promise((r) => setTimeout(r, 100));
    analyser.getFloatFrequencyData(bins);
    for (let b = low; b <= high; b++) power += Number.isFinite(bins[b]) ? Math.pow(10, bins[b] / 10) : 0;
    reads++;
  }
  await ctx.close();
  // Silence reads as -Infinity; report a floor JSON can carry.
  return reads && power > 0 ? 10 * Math.log10(power / reads) : -200;
}

function parseArgs(argv) {
  const opts = {
    url: null,
    waitState: null,
    answer: false,
    waitStateAfter: null,
    measureSeconds: 0,
    pushService: null,
    screenshot: null,
    hold: false,
    end: null,
    timeoutMs: 20000,
    denyMic: false,
    viewport: { width: 390, height: 844 },
    chromium: process.env.DOORBELL_CHROMIUM || '/usr/bin/chromium',
    browser: process.env.DOORBELL_BROWSER || 'chromium',
    firefox: process.env.DOORBELL_FIREFOX || '/usr/bin/firefox-esr',
    settleMs: 0,
    sendTone: null,
    toneLevel: null,
    timing: false,
    tapWhenReady: false,
    warmBrowserMs: 0,
  };
  const value = (i, name) => {
    if (i + 1 >= argv.length) throw new UsageError(`${name} needs a value`);
    return argv[i + 1];
  };
  const number = (text, name) => {
    const n = Number(text);
    if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name} needs a number >= 0, got ${text}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case '--answer': opts.answer = true; break;
      case '--wait-state':
      case '--expect-state': opts.waitState = value(i, a); i++; break;
      case '--wait-state-after': opts.waitStateAfter = value(i, a); i++; break;
      case '--measure-seconds': opts.measureSeconds = number(value(i, a), a); i++; break;
      case '--push-service': opts.pushService = value(i, a); i++; break;
      case '--screenshot': opts.screenshot = value(i, a); i++; break;
      case '--hold': opts.hold = true; break;
      case '--hangup': opts.end = 'hangup'; break;
      case '--close-without-hangup': opts.end = 'close'; break;
      case '--kill': opts.end = 'kill'; break;
      case '--timeout-ms': opts.timeoutMs = number(value(i, a), a); i++; break;
      case '--settle-ms': opts.settleMs = number(value(i, a), a); i++; break;
      case '--deny-mic': opts.denyMic = true; break;
      case '--timing': opts.timing = true; break;
      case '--tap-when-ready': opts.tapWhenReady = true; break;
      case '--warm-browser-ms': opts.warmBrowserMs = number(value(i, a), a); i++; break;
      case '--send-tone': opts.sendTone = number(value(i, a), a); i++; break;
      case '--tone-level': {
        const [hz, seconds] = value(i, a).split(':').map((t) => number(t, a));
        if (!(hz > 0 && seconds > 0)) throw new UsageError(`${a} needs HZ:SECONDS`);
        opts.toneLevel = { hz, seconds };
        i++;
        break;
      }
      case '--chromium': opts.chromium = value(i, a); i++; break;
      case '--firefox': opts.firefox = value(i, a); i++; break;
      case '--browser': {
        opts.browser = value(i, a);
        if (!['chromium', 'firefox'].includes(opts.browser)) throw new UsageError(`${a} is chromium or firefox`);
        i++;
        break;
      }
      case '--viewport': {
        const m = /^(\d+)x(\d+)$/.exec(value(i, a));
        if (!m) throw new UsageError('--viewport needs WIDTHxHEIGHT');
        opts.viewport = { width: Number(m[1]), height: Number(m[2]) };
        i++;
        break;
      }
      default:
        if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
        if (opts.url) throw new UsageError(`more than one URL: ${opts.url} and ${a}`);
        opts.url = a;
    }
  }
  if (!opts.url) throw new UsageError('usage: browser.js URL [--answer] [--measure-seconds N] ...');
  return opts;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Runs in the page: waits for N seconds of frames and reads the stamp on each one.
// Self-contained; `decode` is stamp.js's decodeStamp, shipped as source by inPage().
async function measureInPage({ seconds }, decode) {
  const video = document.getElementById('remote');
  const before = await window.__e2eStats();
  const t0 = performance.now();
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d', { willReadFrequently: true });
  const latencies = [];
  let callbacks = 0;
  let unstamped = 0;
  let firstPresented = null;
  let lastPresented = null;
  let lastSequence = null;
  let sequenceGaps = 0;
  await new Promise((resolve) => {
    const deadline = setTimeout(resolve, seconds * 1000 + 1000);
    function onFrame(_now, meta) {
      callbacks++;
      if (firstPresented === null) firstPresented = meta.presentedFrames;
      lastPresented = meta.presentedFrames;
      const w = video.videoWidth;
      if (w >= 32 && video.videoHeight >= 16) {
        if (canvas.width !== w) canvas.width = w;
        canvas.height = 16;
        ctx.drawImage(video, 0, 0, w, 16, 0, 0, w, 16);
        const stamp = decode(ctx.getImageData(0, 0, w, 16).data, w, 16);
        const now = Date.now();
        // A frame without the barcode decodes to garbage; keep only plausible capture times.
        if (stamp && stamp.captureMs > now - 60000 && stamp.captureMs <= now + 1000) {
          latencies.push(now - stamp.captureMs);
          if (lastSequence !== null && ((lastSequence + 1) & 0xffff) !== stamp.sequence) sequenceGaps++;
          lastSequence = stamp.sequence;
        } else {
          unstamped++;
        }
      }
      if (performance.now() - t0 >= seconds * 1000) {
        clearTimeout(deadline);
        resolve();
      } else {
        video.requestVideoFrameCallback(onFrame);
      }
    }
    video.requestVideoFrameCallback(onFrame);
  });
  const elapsed = (performance.now() - t0) / 1000;
  const after = await window.__e2eStats();
  // The candidate pair ICE selected, from the standard stats: which kinds of path carry the call.
  let selectedPair = null;
  const pc = window.__e2ePeer();
  if (pc) {
    const report = await pc.getStats();
    let pair = null;
    report.forEach((s) => {
      if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId);
    });
    if (pair) {
      const local = report.get(pair.localCandidateId) || {};
      const remote = report.get(pair.remoteCandidateId) || {};
      selectedPair = {
        local: local.candidateType || null,
        remote: remote.candidateType || null,
        protocol: local.protocol || null,
        relay_protocol: local.relayProtocol || null,
      };
    }
  }
  const decodedBefore = before && before.video ? before.video.framesDecoded : 0;
  const decodedAfter = after && after.video ? after.video.framesDecoded : 0;
  return {
    seconds: elapsed,
    video_width: video.videoWidth,
    video_height: video.videoHeight,
    frames_decoded: decodedAfter - decodedBefore,
    fps: (decodedAfter - decodedBefore) / elapsed,
    frames_presented: lastPresented === null ? 0 : lastPresented - firstPresented,
    frame_callbacks: callbacks,
    presented_fps: callbacks / elapsed,
    unstamped_frames: unstamped,
    sequence_gaps: sequenceGaps,
    latencies_ms: latencies,
    stats_after: after,
    selected_pair: selectedPair,
    video_packets_lost: after && after.video && before && before.video ? after.video.packetsLost - before.video.packetsLost : null,
    video_bytes: after && after.video && before && before.video ? after.video.bytesReceived - before.video.bytesReceived : null,
  };
}

// The page's CSP forbids eval/new Function, so helpers cannot be rebuilt from text inside the
// page; instead the whole call is one expression evaluated over the DevTools protocol, which
// the CSP does not govern.
function inPage(fn, args, ...helpers) {
  return `(${fn.toString()})(${JSON.stringify(args)}, ${helpers.map((h) => h.toString()).join(', ')})`;
}

function summarize(samples) {
  if (!samples.length) return null;
  const s = [...samples].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return {
    count: s.length,
    min: s[0],
    median: at(0.5),
    p95: at(0.95),
    max: s[s.length - 1],
    mean: s.reduce((x, y) => x + y, 0) / s.length,
  };
}

// A puppeteer page with the Playwright calls the driver uses.
class PuppeteerPage {
  constructor(page) {
    this.page = page;
  }
  goto(url, options) {
    return this.page.goto(url, { waitUntil: 'load', timeout: options.timeout });
  }
  waitForFunction(fn, arg, options) {
    const args = arg === null || arg === undefined ? [] : [arg];
    return this.page.waitForFunction(fn, { timeout: options.timeout, polling: options.polling || 100 }, ...args);
  }
  async click(selector, options) {
    const button = await this.page.waitForSelector(selector, { visible: true, timeout: options.timeout });
    await button.click();
  }
  evaluate(fn, arg) {
    return arg === undefined ? this.page.evaluate(fn) : this.page.evaluate(fn, arg);
  }
  screenshot(options) {
    return this.page.screenshot(options);
  }
  close() {
    return this.page.close({ runBeforeUnload: false });
  }
  on(event, listener) {
    this.page.on(event, listener);
  }
}

class Driver {
  constructor(opts) {
    this.opts = opts;
    this.context = null;
    this.page = null;
    this.userDataDir = null;
    this.timeouts = [];
    this.pageErrors = [];
    this.measurements = [];
    this.steps = [];
    this.closed = false;
  }

  async launch() {
    if (this.opts.browser === 'firefox') return this.launchFirefox();
    let chromium;
    try {
      ({ chromium } = require('playwright-core'));
    } catch (err) {
      throw new Error(`playwright-core is missing: run "npm ci --prefix tests" (${err.message})`);
    }
    if (!fs.existsSync(this.opts.chromium)) {
      // Never download a browser: the system package is the one under test.
      throw new Error(`no Chromium at ${this.opts.chromium}: install the Debian package "chromium"`);
    }
    this.userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorbell-chromium-'));
    const args = [...CHROMIUM_ARGS];
    // Granting: the fake UI says yes to every prompt. Denying: the fake UI says no.
    args.push(this.opts.denyMic ? '--use-fake-ui-for-media-stream=deny' : '--use-fake-ui-for-media-stream');
    this.context = await chromium.launchPersistentContext(this.userDataDir, {
      executablePath: this.opts.chromium,
      headless: false, // --headless=new is in args; Playwright's own flag would add old defaults
      args,
      viewport: this.opts.viewport,
      hasTouch: true,
      ignoreHTTPSErrors: true,
      permissions: this.opts.denyMic ? [] : ['microphone'],
      timeout: this.opts.timeoutMs,
    });
    // The page exposes nothing to scripts. To read getStats, the driver (not the page) wraps
    // RTCPeerConnection before any page script runs and keeps every connection made; over the
    // DevTools protocol, so the page's CSP does not apply.
    await this.context.addInitScript(OBSERVE_PEERS);
    if (this.opts.timing) await this.context.addInitScript(TIMING_INIT);
    if (this.opts.answer && this.opts.tapWhenReady) await this.context.addInitScript(TAP_WHEN_READY);
    if (this.opts.sendTone) await this.context.addInitScript(sendTone(this.opts.sendTone));
    this.page = this.context.pages()[0] || (await this.context.newPage());
    this.page.on('pageerror', (err) => this.pageErrors.push(String(err && err.message ? err.message : err)));
    this.page.on('console', (msg) => {
      if (msg.type() === 'error') this.pageErrors.push(msg.text());
    });
  }

  // Firefox ESR through puppeteer-core over WebDriver BiDi. The page object is wrapped so the
  // steps below drive both browsers with the same calls (Playwright's signatures).
  async launchFirefox() {
    if (this.opts.denyMic) throw new UsageError('--deny-mic is for Chromium only');
    let puppeteer;
    try {
      puppeteer = require('puppeteer-core');
    } catch (err) {
      throw new Error(`puppeteer-core is missing: run "npm ci --prefix tests" (${err.message})`);
    }
    if (!fs.existsSync(this.opts.firefox)) {
      throw new Error(`no Firefox at ${this.opts.firefox}: install the Debian package "firefox-esr"`);
    }
    this.userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'doorbell-firefox-'));
    this.firefox = await puppeteer.launch({
      browser: 'firefox',
      protocol: 'webDriverBiDi',
      executablePath: this.opts.firefox,
      headless: true,
      userDataDir: this.userDataDir,
      acceptInsecureCerts: true,
      timeout: this.opts.timeoutMs,
      extraPrefsFirefox: {
        // Fake camera and microphone, granted without a prompt.
        'media.navigator.streams.fake': true,
        'media.navigator.permission.disabled': true,
        // Without this Firefox gathers no loopback candidates and a call on one machine fails.
        'media.peerconnection.ice.loopback': true,
        'media.peerconnection.ice.obfuscate_host_addresses': false,
        // A page nobody looks at may play sound (the remote audio element) without a gesture.
        'media.autoplay.default': 0,
        'media.autoplay.block-webaudio': false,
        // Web Push against the test's own push service (tests/e2e/push_service.js), and the
        // service worker on our self-signed origin; notifications allowed without a prompt.
        ...(this.opts.pushService
          ? {
              'dom.push.serverURL': this.opts.pushService,
              'dom.push.testing.allowInsecureServerURL': true,
              'dom.push.connection.enabled': true,
              'dom.serviceWorkers.testing.enabled': true,
              'permissions.default.desktop-notification': 1,
              // Headless has no desktop notification daemon: Firefox's own alert windows.
              'alerts.useSystemBackend': false,
            }
          : {}),
      },
    });
    const page = (await this.firefox.pages())[0] || (await this.firefox.newPage());
    await page.setViewport(this.opts.viewport);
    await page.evaluateOnNewDocument(OBSERVE_PEERS);
    if (this.opts.timing) await page.evaluateOnNewDocument(TIMING_INIT);
    if (this.opts.answer && this.opts.tapWhenReady) await page.evaluateOnNewDocument(TAP_WHEN_READY);
    if (this.opts.sendTone) await page.evaluateOnNewDocument(sendTone(this.opts.sendTone));
    this.context = { close: () => this.firefox.close() };
    this.page = new PuppeteerPage(page);
    this.page.on('pageerror', (err) => this.pageErrors.push(String(err && err.message ? err.message : err)));
    this.page.on('console', (msg) => {
      if (msg.type() === 'error') this.pageErrors.push(msg.text());
    });
  }

  async open() {
    if (this.opts.warmBrowserMs > 0) {
      await this.page.goto('about:blank', { waitUntil: 'load', timeout: this.opts.timeoutMs });
      await new Promise((resolve) => setTimeout(resolve, this.opts.warmBrowserMs));
    }
    await this.page.goto(this.opts.url, { waitUntil: 'load', timeout: this.opts.timeoutMs });
    await this.page
      .waitForFunction(() => document.body && document.body.dataset.state !== 'loading', null, {
        timeout: this.opts.timeoutMs,
      })
      .catch(() => this.timeouts.push('page-ready'));
    this.steps.push('open');
  }

  async waitState(state) {
    try {
      await this.page.waitForFunction((s) => document.body.dataset.state === s, state, {
        timeout: this.opts.timeoutMs,
        polling: 50,
      });
      return true;
    } catch (err) {
      if (this.closed || !/Timeout/i.test(String(err))) throw err;
      this.timeouts.push(`state:${state}`);
      return false;
    }
  }

  async answer() {
    if (this.opts.tapWhenReady) {
      // The page tapped itself (TAP_WHEN_READY); wait until it has.
      await this.page
        .waitForFunction(() => window.__e2eTapped === true, null, { timeout: this.opts.timeoutMs, polling: 20 })
        .catch(() => this.timeouts.push('tap'));
      this.steps.push('answer');
      return;
    }
    // Our page's button, or the lab page's.
    await this.page.click('#answer, #callButton', { timeout: this.opts.timeoutMs });
    this.steps.push('answer');
  }

  async measure(seconds) {
    let firstFrame = true;
    try {
      await this.page.waitForFunction(() => performance.getEntriesByName('doorbell:first_frame').length > 0, null, {
        timeout: this.opts.timeoutMs,
        polling: 20,
      });
    } catch (err) {
      if (!/Timeout/i.test(String(err))) throw err;
      this.timeouts.push('first-frame');
      firstFrame = false;
    }
    if (!firstFrame) return null;
    const m = await this.page.evaluate(inPage(measureInPage, { seconds }, decodeStamp));
    m.latency_ms = summarize(m.latencies_ms);
    this.measurements.push(m);
    this.steps.push(`measure:${seconds}`);
    return m;
  }

  async toneLevel({ hz, seconds }) {
    this.toneLevelDb = await this.page.evaluate(toneLevelInPage, { hz, seconds });
    this.steps.push(`tone-level:${hz}`);
  }

  async screenshot(file) {
    await this.page.screenshot({ path: file });
    this.steps.push(`screenshot:${file}`);
  }

  async hangup() {
    await this.page.click('#hangup', { timeout: this.opts.timeoutMs });
    this.steps.push('hangup');
    await this.waitState('ended-local');
  }

  async closePage() {
    // Firefox keeps its last tab's page alive when asked to close it (the window stays);
    // a second tab makes the close real, as when the owner closes one tab of several.
    if (this.firefox) await this.firefox.newPage();
    await this.page.close({ runBeforeUnload: false });
    this.closed = true;
    this.steps.push('close');
  }

  kill() {
    // Our direct children are the browser processes Playwright started for us.
    const children = readChildPids(process.pid);
    for (const pid of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch (_) {
        // already gone
      }
    }
    this.closed = true;
    this.steps.push('kill');
  }

  // The page's state; retried while the page navigates (a live view and its hand-over move
  // the page by themselves, and an evaluate in a context being replaced fails).
  async snapshot() {
    for (let tries = 0; ; tries++) {
      try {
        return await this.snapshotOnce();
      } catch (err) {
        if (this.closed || tries >= 50 || !/context|navigat|detached|Target closed/i.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }

  async snapshotOnce() {
    if (this.closed) return { state: null, closed: true };
    return this.page.evaluate(async () => {
      const text = (id) => {
        const e = document.getElementById(id);
        return e && !e.hidden ? e.textContent : null;
      };
      const pc = window.__e2ePeer ? window.__e2ePeer() : null;
      const marks = window.__e2eMarks ? window.__e2eMarks() : {};
      const video = document.getElementById('remote');
      const note = text('note') || '';
      const micSender = pc && pc.getSenders().find((x) => x.track && x.track.kind === 'audio');
      return {
        state: document.body.dataset.state || null,
        url: location.pathname + location.search,
        status: text('status'),
        detail: text('detail'),
        note: text('note'),
        buttons: ['answer', 'mute', 'hangup', 'retry'].filter((id) => {
          const e = document.getElementById(id);
          return e && !e.hidden;
        }),
        mute_label: document.getElementById('mute') ? document.getElementById('mute').textContent : null,
        owner: document.body.dataset.owner || null,
        push: document.body.dataset.push || null,
        replies: document.body.dataset.replies == null ? null : Number(document.body.dataset.replies),
        // The owner app's ring history, as shown.
        history: [...document.querySelectorAll('#history li')].map((li) => {
          const img = li.querySelector('img');
          return {
            id: Number(li.dataset.id),
            outcome: li.dataset.outcome,
            text: li.textContent,
            thumbnail_loaded: !!img && img.complete && img.naturalWidth > 0,
            link: !!li.querySelector('a'),
          };
        }),
        muted: document.body.classList.contains('muted'),
        mic_track_enabled: micSender ? micSender.track.enabled : null,
        // What the owner is told: refused (the note says they cannot be heard), on the sender,
        // or not known yet.
        mic_available: note.includes('cannot hear you') ? false : micSender ? true : null,
        video_width: video ? video.videoWidth : 0,
        video_height: video ? video.videoHeight : 0,
        load_to_first_frame_ms: marks.first_frame === undefined ? null : marks.first_frame,
        answer_to_first_frame_ms:
          marks.first_frame != null && marks.answer != null ? marks.first_frame - marks.answer : null,
        marks,
        stats: window.__e2eStats ? await window.__e2eStats() : null,
      };
    });
  }

  async result(extra) {
    const snap = this.closed ? { state: null, closed: true } : await this.snapshot();
    const last = this.measurements[this.measurements.length - 1] || null;
    return {
      event: 'result',
      url_path: redactUrl(this.opts.url),
      ...snap,
      ...(this.toneLevelDb !== undefined ? { tone_level_db: this.toneLevelDb } : {}),
      ...(this.timing ? { timing: this.timing } : {}),
      ...(last
        ? {
            measured_seconds: last.seconds,
            frames_decoded: last.frames_decoded,
            fps: last.fps,
            presented_fps: last.presented_fps,
            video_width: last.video_width || snap.video_width,
            video_height: last.video_height || snap.video_height,
            latency_ms: last.latency_ms,
            latency_samples_ms: last.latencies_ms,
            unstamped_frames: last.unstamped_frames,
            sequence_gaps: last.sequence_gaps,
            selected_pair: last.selected_pair,
            video_packets_lost: last.video_packets_lost,
            video_bytes: last.video_bytes,
          }
        : {}),
      measurements: this.measurements.length > 1 ? this.measurements.map(compactMeasurement) : undefined,
      steps: this.steps,
      timeouts: this.timeouts,
      page_errors: this.pageErrors,
      ...extra,
    };
  }

  async shutdown() {
    try {
      if (this.context) await this.context.close();
    } catch (_) {
      // a killed browser cannot be closed politely
    }
    if (this.userDataDir) fs.rmSync(this.userDataDir, { recursive: true, force: true });
  }
}

function compactMeasurement(m) {
  const { latencies_ms, stats_after, ...rest } = m;
  return rest;
}

function redactUrl(url) {
  // A room id is a secret; keep its first four characters only.
  return url.replace(/([?&]room=)([^&#]{0,4})[^&#]*/, '$1$2…');
}

function readChildPids(pid) {
  const pids = [];
  const taskDir = `/proc/${pid}/task`;
  for (const tid of fs.readdirSync(taskDir)) {
    const text = fs.readFileSync(`${taskDir}/${tid}/children`, 'utf8').trim();
    if (text) pids.push(...text.split(/\s+/).map(Number));
  }
  return pids;
}

async function hold(driver) {
  emit({ event: 'holding', ...(await driver.snapshot()) });
  const lines = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const raw of lines) {
    const [cmd, ...rest] = raw.trim().split(/\s+/);
    const arg = rest.join(' ');
    if (!cmd) continue;
    if (cmd === 'hangup' || cmd === 'close' || cmd === 'kill') {
      lines.close();
      return cmd;
    } else if (cmd === 'measure') {
      const m = await driver.measure(Number(arg) || 1);
      emit({ event: 'measure', ...(m ? compactMeasurement({ ...m, latency_ms: m.latency_ms }) : { timeouts: driver.timeouts }) });
    } else if (cmd === 'state') {
      emit({ event: 'state', ...(await driver.snapshot()) });
    } else if (cmd === 'play-message') {
      // The newest video message in the history: its length, pictures decoded, sound present.
      const played = await driver.page.evaluate(async () => {
        const v = document.querySelector('#history video.message');
        if (!v) return { found: false };
        if (v.readyState < 1) await new Promise((r) => v.addEventListener('loadedmetadata', r, { once: true }));
        v.muted = true;
        await v.play();
        await new Promise((r) => setTimeout(r, 1500));
        const q = v.getVideoPlaybackQuality();
        return {
          found: true,
          duration: v.duration,
          frames: q.totalVideoFrames,
          width: v.videoWidth,
          audio_bytes: typeof v.webkitAudioDecodedByteCount === 'number' ? v.webkitAudioDecodedByteCount : null,
          moz_has_audio: typeof v.mozHasAudio === 'boolean' ? v.mozHasAudio : null,
          error: v.error ? v.error.message || String(v.error.code) : null,
        };
      });
      emit({ event: 'played', ...played });
    } else if (cmd === 'notifications') {
      // What the service worker shows (Web Push).
      const shown = await driver.page.evaluate(async () => {
        const registration = await navigator.serviceWorker.getRegistration();
        if (!registration) return [];
        return (await registration.getNotifications()).map((n) => ({
          title: n.title,
          body: n.body,
          tag: n.tag,
          url: n.data && n.data.url,
          photo: typeof n.icon === 'string' && n.icon.startsWith('data:image/'),
          actions: (n.actions || []).map((a) => a.action),
        }));
      });
      emit({ event: 'notifications', shown });
    } else if (cmd === 'wait-state') {
      const reached = await driver.waitState(arg);
      emit({ event: 'state', reached, ...(await driver.snapshot()) });
    } else if (cmd === 'wait-mic') {
      // The call does not wait for the microphone; this waits until it is on the audio sender.
      const attached = await driver.page
        .waitForFunction(
          () => {
            const pc = window.__e2ePeer && window.__e2ePeer();
            return !!pc && pc.getSenders().some((x) => x.track && x.track.kind === 'audio');
          },
          null,
          { timeout: driver.opts.timeoutMs, polling: 50 }
        )
        .then(() => true, () => false);
      emit({ event: 'state', attached, ...(await driver.snapshot()) });
    } else if (cmd === 'goto') {
      // Another page of the same server in the same browser (its cookies kept).
      await driver.page.goto(arg, { waitUntil: 'load', timeout: driver.opts.timeoutMs });
      driver.steps.push(`goto:${redactUrl(arg)}`);
      emit({ event: 'state', ...(await driver.snapshot()) });
    } else if (cmd === 'click-css') {
      await driver.page.click(arg, { timeout: driver.opts.timeoutMs });
      driver.steps.push('click-css');
      emit({ event: 'clicked', ...(await driver.snapshot()) });
    } else if (cmd === 'fill') {
      // fill ID TEXT: types into the page's field ID.
      const [id, ...words] = rest;
      await driver.page.fill(`#${id}`, words.join(' '));
      emit({ event: 'filled', id });
    } else if (cmd === 'click') {
      // Any of the page's buttons by id: answer, mute, hangup, retry.
      await driver.page.click(`#${arg}`, { timeout: driver.opts.timeoutMs });
      driver.steps.push(`click:${arg}`);
      emit({ event: 'clicked', id: arg, ...(await driver.snapshot()) });
    } else if (cmd === 'screenshot') {
      await driver.screenshot(arg);
      emit({ event: 'screenshot', path: arg });
    } else {
      emit({ event: 'unknown-command', command: cmd });
    }
  }
  return null; // end of input
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`browser.js: ${err.message}\n`);
    return 2;
  }
  const driver = new Driver(opts);
  // A test that gives up on us sends SIGTERM: close Chromium and remove its profile directory.
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, () => {
      const code = signal === 'SIGTERM' ? 143 : 130;
      // Playwright's own handler may have killed the browser already; never hang on the way out.
      setTimeout(() => process.exit(code), 5000).unref();
      driver.shutdown().finally(() => process.exit(code));
    });
  }
  try {
    await driver.launch();
    await driver.open();
    if (opts.waitState) await driver.waitState(opts.waitState);
    if (opts.answer) await driver.answer();
    if (opts.waitStateAfter) await driver.waitState(opts.waitStateAfter);
    if (opts.measureSeconds > 0) await driver.measure(opts.measureSeconds);
    if (opts.timing) driver.timing = await driver.page.evaluate(timingInPage);
    if (opts.toneLevel) await driver.toneLevel(opts.toneLevel);
    if (opts.screenshot) await driver.screenshot(opts.screenshot);
    let end = opts.end;
    if (opts.hold) {
      const fromStdin = await hold(driver);
      end = fromStdin || end;
    }
    if (opts.settleMs > 0) await new Promise((r) => setTimeout(r, opts.settleMs));
    let result;
    if (end === 'hangup') {
      await driver.hangup();
      result = await driver.result();
    } else if (end === 'close' || end === 'kill') {
      // Report the page as it was just before it vanished.
      const before = await driver.snapshot();
      if (end === 'close') await driver.closePage();
      else driver.kill();
      result = { ...(await driver.result()), before_end: before };
    } else {
      result = await driver.result();
    }
    emit(result);
    return 0;
  } catch (err) {
    process.stderr.write(`browser.js: ${err && err.stack ? err.stack : err}\n`);
    emit({ event: 'harness_error', message: String(err && err.message ? err.message : err), steps: driver.steps });
    return 1;
  } finally {
    await driver.shutdown();
  }
}

if (require.main === module) {
  main().then((code) => {
    process.exitCode = code;
  });
}

module.exports = { inPage, CHROMIUM_ARGS };
