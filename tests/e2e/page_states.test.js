// The call page's states, driven in headless Chromium against a real signaling server
// (the real `doorbell server`, or the command in DOORBELL_SERVER_CMD) with a socket.io-client
// 4.x peer playing the doorbell. Run: node --test tests/e2e/
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, DoorbellPeer, newRoom, runBrowser, heldBrowser, stopHeldBrowsers } = require('./harness');

let server;
const peers = [];

before(async () => {
  server = await startServer();
});

after(async () => {
  stopHeldBrowsers();
  peers.forEach((p) => p.close());
  if (server) await server.stop();
});

function doorbell(opts = { token: true }) {
  const peer = new DoorbellPeer(server.url, { token: opts.token ? server.token : undefined });
  peers.push(peer);
  return peer;
}

/** A doorbell that has created `room` and is waiting for the owner. */
async function ringingDoorbell(room) {
  const peer = doorbell();
  peer.emit('join', room);
  assert.equal(await peer.next('created'), room);
  return peer;
}

test('without ?room= the page asks for the link from the message', async () => {
  const { result } = await runBrowser([`${server.url}/`]);
  assert.equal(result.state, 'no-room');
  assert.match(result.status, /Open the link from your doorbell message/);
  assert.deepEqual(result.buttons, []);
  assert.deepEqual(result.page_errors, []);
});

test('a live link rings with an Answer button before anything is sent', async () => {
  const room = newRoom();
  const peer = await ringingDoorbell(room);
  const { result } = await runBrowser([`${server.url}/?room=${room}`]);
  assert.equal(result.state, 'ringing');
  assert.equal(result.status, 'Someone is at the door');
  assert.deepEqual(result.buttons, ['answer']);
  // Opening the link alone must not join: the doorbell sees no one yet.
  assert.equal(peer.all('new_peer').length, 0);
  assert.deepEqual(result.page_errors, []);
});

test('a link to a room that no longer exists says the call has ended before any tap', async () => {
  // The page asks how the room stands (`prepare`) while it loads: no Answer button to tap.
  const { result } = await runBrowser([`${server.url}/?room=${newRoom()}`, '--wait-state', 'no-such-room']);
  assert.equal(result.state, 'no-such-room');
  assert.equal(result.status, 'This call has ended');
  assert.deepEqual(result.timeouts, []);
  assert.deepEqual(result.buttons, []);
});

test('a second owner on a live link sees that someone else already answered, before any tap', async () => {
  const room = newRoom();
  const peer = await ringingDoorbell(room);
  const first = doorbell({ token: false });
  first.emit('join', room);
  assert.equal(await first.next('joined'), room);
  const { result } = await runBrowser([`${server.url}/?room=${room}`, '--wait-state', 'full']);
  assert.equal(peer.all('new_peer').length, 1, 'the doorbell heard only the first owner');
  assert.equal(result.state, 'full');
  assert.equal(result.status, 'Someone else already answered');
  assert.deepEqual(result.timeouts, []);
});

test('answering joins, offers video recvonly + audio sendrecv with its candidates in the offer or trickled, and shows the visitor hanging up', async () => {
  const room = newRoom();
  const peer = await ringingDoorbell(room);
  const hangUpAfterOffer = (async () => {
    assert.equal(await peer.next('new_peer'), room);
    const offer = await peer.next('invite');
    // Wait for the end-of-candidates marker so the trickle is checked too.
    await waitFor(() => peer.all('ice_candidate').some((c) => c === null));
    peer.emit('bye', room);
    return offer;
  })();
  const { result } = await runBrowser([`${server.url}/?room=${room}`, '--answer', '--wait-state-after', 'ended-remote']);
  const offer = await hangUpAfterOffer;

  assert.equal(offer.type, 'offer');
  const sections = mediaSections(offer.sdp);
  assert.deepEqual(
    sections.map((s) => [s.kind, s.direction]),
    [
      ['video', 'recvonly'],
      ['audio', 'sendrecv'],
    ]
  );
  // The candidates gathered before the tap are in the offer; each later one is trickled once,
  // as an RTCIceCandidateInit, and the last one is the null marker.
  const candidates = peer.all('ice_candidate');
  assert.equal(candidates[candidates.length - 1], null);
  const trickled = candidates.slice(0, -1);
  for (const c of trickled) {
    assert.match(c.candidate, /^candidate:/);
    assert.ok(typeof c.sdpMid === 'string' && Number.isInteger(c.sdpMLineIndex));
    assert.ok(!offer.sdp.includes(c.candidate), `sent twice: ${c.candidate}`);
  }
  const inOffer = offer.sdp.match(/^a=candidate:/gm) || [];
  assert.ok(inOffer.length + trickled.length > 0, 'no candidate at all');

  assert.equal(result.state, 'ended-remote');
  assert.equal(result.status, "The visitor's side hung up");
  // (Whether the microphone came before the hang-up is a race here; the Mute test checks it.)
  assert.equal(result.note, null);
  assert.deepEqual(result.timeouts, []);
  assert.deepEqual(result.page_errors, []);
});

test('a refused microphone still calls, listen-only, and says so', async () => {
  const room = newRoom();
  const peer = await ringingDoorbell(room);
  const offerSeen = peer.next('invite');
  const run = runBrowser([`${server.url}/?room=${room}`, '--deny-mic', '--answer', '--hold'], {
    onLine: async (line, child) => {
      if (line.event === 'holding') {
        await offerSeen;
        child.stdin.write('state\n');
      } else if (line.event === 'state') {
        // The call does not wait for the microphone's answer: ask again until it came.
        if (line.mic_available === false) child.stdin.end();
        else setTimeout(() => child.stdin.write('state\n'), 50);
      }
    },
  });
  const { result, lines } = await run;
  const offer = await offerSeen;
  // The call went ahead: the offer still carries audio (sendrecv with no track) and video.
  assert.deepEqual(
    mediaSections(offer.sdp).map((s) => s.kind),
    ['video', 'audio']
  );
  const during = lines.filter((l) => l.event === 'state').pop();
  assert.equal(during.state, 'connecting');
  assert.equal(during.mic_available, false);
  assert.match(during.note, /microphone was not allowed/i);
  assert.match(during.note, /cannot hear you/);
  assert.ok(!during.buttons.includes('mute'), 'no Mute button without a microphone');
  assert.ok(during.buttons.includes('hangup'));
  assert.equal(result.mic_available, false);
});

test('Hang up sends bye to the doorbell and shows the call ended', async () => {
  const room = newRoom();
  const peer = await ringingDoorbell(room);
  const { result } = await runBrowser([`${server.url}/?room=${room}`, '--answer', '--hold'], {
    onLine: async (line, child) => {
      if (line.event !== 'holding') return;
      await peer.next('invite');
      child.stdin.write('hangup\n');
    },
  });
  assert.equal(await peer.next('bye'), room);
  assert.equal(result.state, 'ended-local');
  assert.equal(result.status, 'Call ended');
  assert.deepEqual(result.buttons, []);
});

test("on a lab-style server (anyone may create rooms) a link to a missing room ends and leaves the room", async () => {
  const lab = await startServer({ lab: true });
  try {
    const room = newRoom();
    const page = heldBrowser([`${lab.url}/?room=${room}`, '--answer', '--wait-state-after', 'no-such-room']);
    const ended = await page.ready;
    assert.equal(ended.state, 'no-such-room');
    assert.equal(ended.status, 'This call has ended');
    // With the page still open, the room is empty again (the page left with bye and closed
    // its socket), so the next comer creates it rather than joining a stale page.
    const next = new DoorbellPeer(lab.url, {});
    peers.push(next);
    next.emit('join', room);
    assert.equal(await next.next('created'), room);
    assert.equal(next.all('joined').length, 0);
    await page.finish();
  } finally {
    await lab.stop();
  }
});

test('where WebSockets are refused the page long-polls with the vendored client and still reaches the room', async () => {
  const lab = await startServer({ lab: true, pollingOnly: true });
  try {
    const room = newRoom();
    // The lab's server answers nothing to `prepare`: the tap joins, over long-polling.
    const { result } = await runBrowser([`${lab.url}/?room=${room}`, '--answer', '--wait-state-after', 'no-such-room']);
    assert.equal(result.state, 'no-such-room', JSON.stringify(result));
    assert.equal(result.status, 'This call has ended');
    assert.deepEqual(result.timeouts, []);
  } finally {
    await lab.stop();
  }
});

function mediaSections(sdp) {
  return sdp
    .split(/\r?\n(?=m=)/)
    .slice(1)
    .map((section) => ({
      kind: /^m=(\w+)/.exec(section)[1],
      direction: (/\r?\na=(sendrecv|sendonly|recvonly|inactive)/.exec(section) || [])[1],
    }));
}

async function waitFor(predicate, timeoutMs = 20000) {
  const start = Date.now();
  while (!(await predicate())) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
