// Safari's rules, checked against MDN's browser-compat-data rather than remembered: every web
// platform API the page (web/*.js, web/index.html) uses must be in Safari and iOS Safari since
// the oldest version we support (iOS 16.4, the first with installable web apps' push), unless
// the page tests for it before use. The list must name every such API the page uses: each
// entry is also looked up in the page's source, so a removed use fails here too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const bcd = require('@mdn/browser-compat-data');
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const page = ['app.js', 'call_state.js', 'peer.js', 'signaling.js', 'ui.js', 'owner.js', 'owner_state.js', 'index.html']
  .map((f) => fs.readFileSync(path.join(root, 'web', f), 'utf8'))
  .join('\n');

const OLDEST = { safari: '16.4', safari_ios: '16.4' };

// [compat path, a regular expression that finds its use in the page, guarded?]
const USED = [
  ['api.RTCPeerConnection.RTCPeerConnection', /new RTCPeerConnection\(/],
  ['api.RTCPeerConnection.addTransceiver', /\.addTransceiver\(/],
  ['api.RTCPeerConnection.createOffer', /\.createOffer\(/],
  ['api.RTCPeerConnection.setLocalDescription', /\.setLocalDescription\(/],
  ['api.RTCPeerConnection.setRemoteDescription', /\.setRemoteDescription\(/],
  ['api.RTCPeerConnection.addIceCandidate', /\.addIceCandidate\(/],
  ['api.RTCPeerConnection.restartIce', /\.restartIce\(/],
  ['api.RTCPeerConnection.getStats', /\.getStats\(/],
  ['api.RTCPeerConnection.connectionState', /connectionState/],
  ['api.RTCPeerConnection.track_event', /\.ontrack\b/],
  ['api.RTCPeerConnection.icecandidate_event', /\.onicecandidate\b/],
  ['api.RTCIceCandidate.toJSON', /\.toJSON\(/],
  ['api.RTCRtpSender.replaceTrack', /\.replaceTrack\(/],
  ['api.MediaDevices.getUserMedia', /\.getUserMedia\(/],
  ['api.MediaStream.MediaStream', /new MediaStream\(/],
  ['api.MediaStream.addTrack', /\.addTrack\(/],
  ['api.MediaStream.getTracks', /\.getTracks\(/],
  ['api.HTMLMediaElement.srcObject', /\.srcObject\b/],
  ['api.HTMLMediaElement.play', /\.play\(/],
  ['api.Performance.mark', /performance\.mark\(/],
  ['api.Performance.getEntriesByName', /performance\.getEntriesByName\(/],
  ['api.URLSearchParams', /new URLSearchParams\(/],
  ['api.WebSocket', /WebSocket|socket\.io/],
  ['html.elements.video.playsinline', /playsinline/],
  ['javascript.statements.import', /^\s*import\s/m],
  ['api.ServiceWorkerContainer.register', /serviceWorker\.register\(/],
  ['api.Response.json', /\.json\(\)/],
  ['api.fetch', /\bfetch\(/],
  // Guarded: the page checks for it and falls back to `loadeddata`.
  ['api.HTMLVideoElement.requestVideoFrameCallback', /requestVideoFrameCallback/, 'guarded'],
];

function lookup(compatPath) {
  let node = bcd;
  for (const part of compatPath.split('.')) node = node && node[part];
  return node && node.__compat;
}

function since(support) {
  const entry = Array.isArray(support) ? support.find((s) => !s.flags && !s.partial_implementation) : support;
  return entry && typeof entry.version_added === 'string' ? entry.version_added.replace('≤', '') : null;
}

const older = (a, b) => {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) < (y[i] || 0);
  }
  return true; // equal
};

test('every API the page relies on is in Safari and iOS Safari 16.4', () => {
  const problems = [];
  for (const [compatPath, use, guarded] of USED) {
    const compat = lookup(compatPath);
    assert.ok(compat, `${compatPath} is not in browser-compat-data`);
    if (guarded) continue;
    for (const [browser, oldest] of Object.entries(OLDEST)) {
      const added = since(compat.support[browser]);
      if (!added || !older(added, oldest)) problems.push(`${compatPath}: ${browser} ${added || 'never'}`);
    }
  }
  assert.deepEqual(problems, []);
});

test('the list names APIs the page really uses', () => {
  const unused = USED.filter(([, use]) => !use.test(page)).map(([p]) => p);
  assert.deepEqual(unused, []);
});

test('an API Safari lacks is feature-tested before use', () => {
  for (const [compatPath, , guarded] of USED.filter(([, , g]) => g)) {
    const name = compatPath.split('.').pop();
    assert.match(page, new RegExp(`typeof [\\w.]+\\.${name} === 'function'`), `${name} is not feature-tested`);
  }
});
