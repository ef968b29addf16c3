// The call page in a real call: headless Chromium answering a stand-in doorbell that runs in a
// second headless Chromium (browser_doorbell.js: canvas video stamped for glass-to-glass, a tone,
// the doorbell token). Checks the in-call path of the page and of browser.js's measurements;
// the call with the real Rust agent is the lead's e2e test. Run: node --test tests/e2e/
'use strict';

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { startServer, newRoom, runBrowser, heldBrowser, stopHeldBrowsers } = require('./harness');
const { BrowserDoorbell } = require('./browser_doorbell');

let server;
const bells = [];

before(async () => {
  server = await startServer();
});

after(async () => {
  stopHeldBrowsers();
  for (const bell of bells) await bell.close().catch(() => {});
  if (server) await server.stop();
});

async function ringing() {
  const room = newRoom();
  const bell = await BrowserDoorbell.start(server.url, room, server.token);
  bells.push(bell);
  assert.equal(bell.joinReply.name, 'created');
  return { room, bell, url: `${server.url}/?room=${room}` };
}

test('answer shows the visitor video, browser.js measures frames and glass-to-glass stamps, hang up ends', async () => {
  const { room, bell, url } = await ringing();
  const { result } = await runBrowser([url, '--answer', '--wait-state-after', 'in-call', '--measure-seconds', '2', '--hangup']);

  assert.deepEqual(result.timeouts, []);
  assert.equal(result.video_width, 640);
  assert.equal(result.video_height, 480);
  assert.ok(result.frames_decoded > 0, `frames decoded: ${result.frames_decoded}`);
  assert.ok(result.fps > 0);
  assert.ok(result.load_to_first_frame_ms > 0);
  assert.ok(result.answer_to_first_frame_ms > 0);
  // Every presented frame carried a stamp that decoded to a plausible capture time.
  assert.ok(result.latency_ms && result.latency_ms.count > 0, 'no stamp decoded');
  assert.equal(result.unstamped_frames, 0);
  for (const sample of result.latency_samples_ms) assert.ok(sample >= 0, `negative latency ${sample}`);

  assert.equal(result.state, 'ended-local');
  await bell.waitEvent('bye');
  const events = (await bell.events()).map((e) => e.name);
  assert.ok(events.includes('ok_sent'));
  assert.equal(room.length, 22);
  assert.deepEqual(result.page_errors, []);
});

test('in call: Mute disables the microphone track and toggles its label; the visitor hears the owner before', async () => {
  const { bell, url } = await ringing();
  const page = heldBrowser([url, '--answer', '--wait-state-after', 'in-call']);
  const holding = await page.ready;
  assert.equal(holding.state, 'in-call');
  assert.deepEqual(holding.buttons, ['mute', 'hangup']);
  // The call does not wait for the microphone; it joins the call once granted.
  const withMic = await page.send('wait-mic');
  assert.equal(withMic.attached, true);
  assert.equal(withMic.mic_track_enabled, true);
  assert.equal(withMic.detail, 'You are talking to the visitor.');

  // The owner's (fake) microphone reaches the doorbell.
  await bell.page.waitForFunction(
    async () => {
      const a = await window.peer.inboundAudio();
      return a && a.packetsReceived > 0;
    },
    null,
    { timeout: 20000, polling: 100 }
  );

  const muted = await page.send('click mute');
  assert.equal(muted.mute_label, 'Unmute');
  assert.equal(muted.muted, true);
  assert.equal(muted.mic_track_enabled, false);
  const unmuted = await page.send('click mute');
  assert.equal(unmuted.mute_label, 'Mute');
  assert.equal(unmuted.mic_track_enabled, true);

  const { result } = await page.finish('hangup');
  assert.equal(result.state, 'ended-local');
});

test('the Answer tap uses the connection the page opened while it rang', async () => {
  const { bell, url } = await ringing();
  const page = heldBrowser([url]);
  assert.equal((await page.ready).state, 'ringing');
  // Opening the link connects but does not join: the doorbell sees no one yet.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await bell.events()).filter((e) => e.name === 'new_peer').length, 0);
  await page.send('click answer');
  const inCall = await page.send('wait-state in-call');
  assert.equal(inCall.reached, true);
  // The call's connection was up before the tap (a fresh one would connect after it).
  const m = inCall.marks;
  assert.ok(m.connected < m.answer, JSON.stringify(m));
  const { result } = await page.finish('hangup');
  assert.equal(result.state, 'ended-local');
});

test("the visitor's side hanging up during the call ends it on the page", async () => {
  const { room, bell, url } = await ringing();
  const page = heldBrowser([url, '--answer', '--wait-state-after', 'in-call']);
  assert.equal((await page.ready).state, 'in-call');
  await bell.bye(room);
  const ended = await page.send('wait-state ended-remote');
  assert.equal(ended.reached, true);
  assert.equal(ended.status, "The visitor's side hung up");
  assert.deepEqual(ended.buttons, []);
  const { result } = await page.finish();
  assert.equal(result.state, 'ended-remote');
});

test('media lost without a bye shows Connection lost with Retry, and Retry calls again', async () => {
  const { bell, url } = await ringing();
  const page = heldBrowser([url, '--answer', '--wait-state-after', 'in-call', '--timeout-ms', '40000']);
  assert.equal((await page.ready).state, 'in-call');
  await bell.dropMedia();
  const lost = await page.send('wait-state lost');
  assert.equal(lost.reached, true);
  assert.equal(lost.status, 'Connection lost');
  assert.deepEqual(lost.buttons, ['retry']);

  // The doorbell is still in its room, so Retry joins again and a new call comes up.
  await page.send('click retry');
  const again = await page.send('wait-state in-call');
  assert.equal(again.reached, true);
  const invites = (await bell.events()).filter((e) => e.name === 'invite');
  assert.equal(invites.length, 2);
  const { result } = await page.finish('hangup');
  assert.equal(result.state, 'ended-local');
});

test('closing the page without hanging up reaches the doorbell as bye (server: disconnect = bye)', async () => {
  const { bell, url } = await ringing();
  const { result } = await runBrowser([url, '--answer', '--wait-state-after', 'in-call', '--close-without-hangup']);
  assert.equal(result.before_end.state, 'in-call');
  await bell.waitEvent('bye');
});
