// The owner app's decisions (web/owner_state.js), without a browser.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  withEntry,
  describe,
  pairingOutcome,
  answeredElsewhere,
  handoverRoom,
  liveOutcome,
  HANDOVER_MS,
  keyBytes,
  pushButton,
  wavBytes,
  repliedLabel,
} from '../../web/owner_state.js';

const entry = (id, outcome, extra = {}) => ({
  id,
  room: `room${id}`,
  at: '2026-12-05T10:00:00.000Z',
  outcome,
  answered_by: null,
  duration_s: null,
  snapshot: null,
  message: null,
  ...extra,
});

test('updates replace their entry and the list stays newest first and bounded', () => {
  let list = [];
  for (const id of [1, 3, 2]) list = withEntry(list, entry(id, 'missed'));
  assert.deepEqual(list.map((e) => e.id), [3, 2, 1]);
  list = withEntry(list, entry(2, 'answered', { answered_by: 'Anna' }));
  assert.deepEqual(list.map((e) => [e.id, e.outcome]), [[3, 'missed'], [2, 'answered'], [1, 'missed']]);
  assert.equal(withEntry(list, entry(4, 'ringing'), 2).length, 2);
});

test('a ringing entry is a link to its call; others say who answered and how long', () => {
  const now = Date.parse('2026-12-05T10:05:00.000Z');
  const ringing = describe(entry(7, 'ringing', { snapshot: '/api/rings/7/snapshot' }), now);
  assert.equal(ringing.href, '/?room=room7');
  assert.equal(ringing.thumbnail, '/api/rings/7/snapshot');
  assert.equal(ringing.details, '5 min ago');
  const answered = describe(entry(8, 'answered', { answered_by: 'Anna', duration_s: 75 }), now);
  assert.equal(answered.label, 'Answered by Anna');
  assert.equal(answered.details, '5 min ago · 1 min 15 s');
  assert.equal(answered.href, null);
  assert.equal(describe(entry(9, 'missed'), now).label, 'Missed');
});

test('pairing answers become plain sentences', () => {
  assert.deepEqual(pairingOutcome(200, { name: 'Anna' }), { paired: true, text: 'This device is paired as Anna.' });
  assert.equal(pairingOutcome(410, { error: 'this pairing link was used already' }).text, 'this pairing link was used already');
  assert.equal(pairingOutcome(502, null).text, 'The server answered 502.');
});

test('only an answer to this ring counts as answered elsewhere', () => {
  assert.equal(answeredElsewhere(entry(1, 'answered', { answered_by: 'Ben' }), 'room1'), 'Ben');
  assert.equal(answeredElsewhere(entry(1, 'answered'), 'room1'), 'another owner');
  assert.equal(answeredElsewhere(entry(1, 'answered', { answered_by: 'Ben' }), 'room2'), null);
  assert.equal(answeredElsewhere(entry(1, 'missed'), 'room1'), null);
});

test('after a live view was handed over, the newest ringing entry opens, for a short while only', () => {
  const now = 1_000_000;
  const until = now + HANDOVER_MS;
  const ringing = [entry(5, 'ringing'), entry(4, 'missed')];
  assert.equal(handoverRoom(ringing, until, now), 'room5');
  assert.equal(handoverRoom(ringing, until, until + 1), null, 'too late: the owner decides');
  assert.equal(handoverRoom(ringing, null, now), null, 'no hand-over: a ring waits for a tap');
  assert.equal(handoverRoom([entry(5, 'answered', { answered_by: 'Ben' })], until, now), null);
  assert.equal(handoverRoom([entry(6, 'missed'), entry(5, 'ringing')], until, now), null, 'only the newest');
  assert.equal(handoverRoom([], until, now), null);
});

test('a live view answer is where to go, or a sentence why not', () => {
  assert.deepEqual(liveOutcome(200, { room: 'Ab_1' }), { href: '/?room=Ab_1&live=1' });
  assert.deepEqual(liveOutcome(409, { error: 'the doorbell is busy with a ring or a call' }), {
    error: 'No live view: the doorbell is busy with a ring or a call',
  });
  assert.deepEqual(liveOutcome(200, {}), { error: 'No live view: The server answered 200.' });
  assert.deepEqual(liveOutcome(502, null), { error: 'No live view: The server answered 502.' });
});

test('the VAPID key is handed to the Push API as its bytes', () => {
  // 0xfb 0xff: base64url's '-' and '_' and no padding.
  assert.deepEqual([...keyBytes('-_8')], [0xfb, 0xff]);
  assert.equal(keyBytes('BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4').length, 65);
});

test('the notify button says what the browser can do and whether this device is subscribed', () => {
  assert.equal(pushButton({ supported: false }).state, 'unsupported');
  assert.equal(pushButton({ supported: false }).enabled, false);
  assert.equal(pushButton({ supported: true, permission: 'denied', subscribed: false }).state, 'blocked');
  assert.deepEqual(pushButton({ supported: true, permission: 'granted', subscribed: true }), {
    label: 'Notifications on (tap to stop)',
    enabled: true,
    state: 'on',
  });
  assert.equal(pushButton({ supported: true, permission: 'default', subscribed: false }).label, 'Notify this device');
});

test('an entry with a video message plays it in the list, with its length', () => {
  const shown = describe(entry(3, 'missed', { message: '/api/rings/3/message', message_s: 12 }));
  assert.deepEqual(shown.message, { url: '/api/rings/3/message', label: 'Video message (12 s)' });
  assert.equal(describe(entry(4, 'missed')).message, null);
  assert.equal(describe(entry(5, 'missed', { message: 'https://elsewhere.test/x.mp4' })).message, null, 'only our own');
});

test('a recorded reply becomes a 48 kHz mono 16-bit WAV the doorbell plays as is', () => {
  const wav = wavBytes(new Float32Array([0, 1, -1, 0.5, 2]), 48000);
  const view = new DataView(wav.buffer);
  const text = (at, n) => String.fromCharCode(...wav.slice(at, at + n));
  assert.equal(text(0, 4), 'RIFF');
  assert.equal(text(8, 8), 'WAVEfmt ');
  assert.equal(view.getUint16(22, true), 1, 'mono');
  assert.equal(view.getUint32(24, true), 48000);
  assert.equal(view.getUint16(34, true), 16);
  assert.equal(view.getUint32(40, true), 10);
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((i) => view.getInt16(44 + i * 2, true)),
    [0, 32767, -32768, 16384, 32767],
    'clipped, not wrapped'
  );
});

test('a ring answered with a reply says which', () => {
  assert.equal(repliedLabel({ replied: 'Leave it at the door' }), 'Replied: Leave it at the door');
  assert.equal(repliedLabel({ replied: null }), null);
  assert.match(describe(entry(2, 'missed', { replied: 'Back soon' })).details, /Replied: Back soon/);
});
