// The page's decisions (web/call_state.js), without a browser: every event in every phase, as
// the doorbell's call flow is tested (crates/agent/tests/call_flow.rs).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  initial,
  next,
  view,
  rtcConfiguration,
  roomFromSearch,
  liveFromSearch,
  FINAL,
  ICE_SERVERS_WAIT_MS,
  JOIN_TIMEOUT_MS,
  ICE_DISCONNECTED_GRACE_MS,
} from '../../web/call_state.js';

const ROOM = 'RingRoom1';

function ringing() {
  return initial({ room: ROOM, webrtc: true }).state;
}

// A ringing page whose early peer could not be made: the tap takes the path a retry takes.
function unprepared() {
  return run(ringing(), 'prepare_failed').state;
}

// Feeds events (attempt-bound ones get the state's attempt) and returns the last result with
// every effect seen on the way.
function run(state, ...events) {
  let effects = [];
  for (const e of events) {
    const event = typeof e === 'string' ? { type: e } : e;
    const bound = ['answer', 'retry', 'mute', 'hangup'].includes(event.type)
      ? event
      : { attempt: state.attempt, ...event };
    const r = next(state, bound);
    state = r.state;
    effects = effects.concat(r.effects);
  }
  return { state, effects };
}

const types = (effects) => effects.map((e) => e.type);

// The way a real call walks to each phase.
const WALK = {
  'no-room': () => initial({ room: null, webrtc: true }).state,
  'no-webrtc': () => initial({ room: ROOM, webrtc: false }).state,
  ringing,
  'ringing-asked': () => run(ringing(), 'warm_connected').state,
  'ringing-prepared': () => run(ringing(), 'warm_connected', EVENTS.prepared).state,
  // The early peer sends its offer behind the join; its servers come after `joined`.
  'connecting-prepared': () => run(ringing(), 'answer', 'signaling_up').state,
  'connecting-prepared-joined': () => run(ringing(), 'answer', 'signaling_up', 'joined').state,
  connecting: () => run(unprepared(), 'answer').state,
  'connecting-joined': () => run(unprepared(), 'answer', 'signaling_up', 'joined').state,
  'connecting-peer': () =>
    run(unprepared(), 'answer', 'signaling_up', 'joined', { type: 'ice_servers', payload: { iceServers: [] } }).state,
  'in-call': () =>
    run(ringing(), 'answer', 'signaling_up', 'joined', 'ice_servers_timeout', { type: 'transport', state: 'connected' })
      .state,
  'ended-local': () => run(WALK['in-call'](), 'hangup').state,
  'ended-remote': () => run(WALK['in-call'](), 'bye').state,
  full: () => run(WALK.connecting(), 'signaling_up', 'full').state,
  'no-such-room': () => run(WALK.connecting(), 'signaling_up', 'created').state,
  lost: () => run(WALK.connecting(), 'signaling_error').state,
  error: () => run(WALK['connecting-peer'](), { type: 'peer_failed', why: 'x' }).state,
};

const EVENTS = {
  answer: { type: 'answer' },
  retry: { type: 'retry' },
  mute: { type: 'mute' },
  hangup: { type: 'hangup' },
  signaling_up: { type: 'signaling_up' },
  signaling_error: { type: 'signaling_error' },
  no_signaling_client: { type: 'no_signaling_client' },
  signaling_lost: { type: 'signaling_lost' },
  join_timeout: { type: 'join_timeout' },
  joined: { type: 'joined' },
  ice_servers: { type: 'ice_servers', payload: { iceServers: [{ urls: 'stun:s.test' }] } },
  ice_servers_timeout: { type: 'ice_servers_timeout' },
  created: { type: 'created' },
  full: { type: 'full' },
  peer_failed: { type: 'peer_failed', why: 'boom' },
  offer_sent: { type: 'offer_sent' },
  answer_received: { type: 'answer_received', payload: { type: 'answer', sdp: 'v=0' } },
  bad_answer: { type: 'answer_received', payload: { type: 'offer' } },
  answer_refused: { type: 'answer_refused', why: 'bad sdp' },
  remote_candidate: { type: 'remote_candidate', payload: null },
  bye: { type: 'bye' },
  no_such_room: { type: 'server_error', payload: { code: 'no_such_room', message: 'gone' } },
  server_error: { type: 'server_error', payload: { code: 'rate_limited', message: 'slow down' } },
  transport_connected: { type: 'transport', state: 'connected' },
  transport_disconnected: { type: 'transport', state: 'disconnected' },
  transport_failed: { type: 'transport', state: 'failed' },
  grace_over: { type: 'grace_over' },
  mic_granted: { type: 'mic_granted' },
  mic_refused: { type: 'mic_refused', why: 'No microphone was found.' },
  answered_elsewhere: { type: 'answered_elsewhere', by: "Ben's tablet" },
  warm_connected: { type: 'warm_connected' },
  prepared: { type: 'prepared', payload: { iceServers: [] } },
  prepare_full: { type: 'prepare_refused', code: 'full' },
  prepare_over: { type: 'prepare_refused', code: 'no_such_room' },
  prepare_refused: { type: 'prepare_refused', code: 'rate_limited' },
};

// Per phase, the events that change the phase, and to what. Everything else keeps the phase.
const MOVES = {
  'no-room': {},
  'no-webrtc': {},
  ringing: { answer: 'connecting', answered_elsewhere: 'full' },
  // Asked to ready the offer: the answer may say the ring is already over or answered.
  'ringing-asked': { answer: 'connecting', answered_elsewhere: 'full', prepare_full: 'full', prepare_over: 'no-such-room' },
  connecting: {
    hangup: 'ended-local',
    signaling_error: 'lost',
    no_signaling_client: 'error',
    signaling_lost: 'lost',
    join_timeout: 'lost',
    created: 'no-such-room',
    full: 'full',
    peer_failed: 'error',
    answer_refused: 'error',
    bye: 'ended-remote',
    no_such_room: 'no-such-room',
    server_error: 'error',
    transport_connected: 'in-call',
    transport_failed: 'lost',
  },
  'in-call': {
    hangup: 'ended-local',
    signaling_error: 'lost',
    no_signaling_client: 'error',
    created: 'no-such-room',
    full: 'full',
    peer_failed: 'error',
    bad_answer: 'error',
    answer_refused: 'error',
    bye: 'ended-remote',
    no_such_room: 'no-such-room',
    transport_failed: 'lost',
  },
  'ended-local': {},
  'ended-remote': {},
  full: {},
  'no-such-room': {},
  lost: { retry: 'connecting' },
  error: { retry: 'connecting' },
};
MOVES['ringing-prepared'] = MOVES['ringing-asked'];
MOVES['connecting-prepared'] = { ...MOVES.connecting, bad_answer: 'error' };
// Joined: the server took the page in, so a late join timeout or a refused event is no end.
MOVES['connecting-joined'] = { ...MOVES.connecting, join_timeout: undefined, server_error: undefined };
// With the peer started: a bad answer is the end; a late join timeout or a refused event is not.
MOVES['connecting-peer'] = { ...MOVES.connecting, bad_answer: 'error', join_timeout: undefined, server_error: undefined };
MOVES['connecting-prepared-joined'] = MOVES['connecting-peer'];

test('every event in every phase moves the page exactly as the table says', () => {
  for (const [start, walk] of Object.entries(WALK)) {
    const moves = MOVES[start];
    for (const [name, event] of Object.entries(EVENTS)) {
      const before = walk();
      const bound = ['answer', 'retry', 'mute', 'hangup', 'answered_elsewhere'].includes(event.type)
        ? event
        : { attempt: before.attempt, ...event };
      const { state } = next(before, bound);
      const expected = moves[name] || before.phase;
      assert.equal(state.phase, expected, `${start} + ${name}`);
    }
  }
});

test('events of an earlier attempt change nothing', () => {
  const first = run(WALK.lost(), 'retry').state;
  assert.equal(first.attempt, 2);
  for (const [name, event] of Object.entries(EVENTS)) {
    if (['answer', 'retry', 'mute', 'hangup', 'answered_elsewhere'].includes(event.type)) continue;
    const r = next(first, { ...event, attempt: 1 });
    assert.deepEqual(r, { state: first, effects: [] }, name);
  }
});

test('loading: no room, no WebRTC, or ringing with the connection warmed up and the peer made', () => {
  assert.equal(initial({ room: null, webrtc: true }).state.phase, 'no-room');
  const unsupported = initial({ room: ROOM, webrtc: false }).state;
  assert.equal(unsupported.status, 'This browser cannot make calls');
  assert.deepEqual(view(unsupported).buttons, [], 'nothing to retry without WebRTC');
  const r = initial({ room: ROOM, webrtc: true });
  assert.equal(r.state.phase, 'ringing');
  assert.deepEqual(types(r.effects), ['warm_up', 'prepare_peer']);
  assert.deepEqual(view(r.state).buttons, ['answer']);
});

test('answer unlocks audio, asks for the microphone and uses the warm connection', () => {
  const r = run(ringing(), 'answer');
  assert.deepEqual(types(r.effects), ['unlock_audio', 'open_mic', 'connect']);
  assert.equal(r.effects[2].warm, true);
  assert.equal(r.state.detail, 'Asking for your microphone');
  assert.deepEqual(view(r.state).buttons, ['hangup']);
});

test('while it rings the warm connection asks once for the servers, which set the peer made at load', () => {
  const asked = run(ringing(), 'warm_connected');
  assert.deepEqual(asked.effects, [{ type: 'prepare' }]);
  assert.deepEqual(run(asked.state, 'warm_connected').effects, [], 'asked once');
  const payload = { iceServers: [{ urls: ['turn:t.test:3478'], username: 'u', credential: 'c' }] };
  const ready = run(asked.state, { type: 'prepared', payload });
  assert.deepEqual(ready.effects, [{ type: 'configure_peer', iceConfig: rtcConfiguration(payload) }]);
  assert.deepEqual(run(ready.state, { type: 'prepared', payload }).effects, [], 'configured once');
  assert.equal(ready.state.phase, 'ringing', 'nothing shows: the owner has not tapped');
  assert.deepEqual(run(unprepared(), 'warm_connected').effects, [], 'no peer, nothing to prepare');
});

test('the tap sends the configured offer right behind the join, and starts no second peer', () => {
  const ready = run(ringing(), 'warm_connected', EVENTS.prepared).state;
  const up = run(ready, 'answer', 'signaling_up');
  assert.deepEqual(types(up.effects), ['unlock_audio', 'open_mic', 'connect', 'join', 'start_timer', 'use_prepared_peer']);
  const rest = run(up.state, 'joined', EVENTS.ice_servers, 'ice_servers_timeout');
  assert.deepEqual(rest.effects, [{ type: 'cancel_timer', name: 'join' }]);
  assert.equal(run(rest.state, 'join_timeout').state.phase, 'connecting', 'joined: no join timeout');
});

test('a tap before the servers came: the early peer is configured by the servers after joined', () => {
  const up = run(ringing(), 'answer', 'signaling_up');
  assert.deepEqual(types(up.effects).slice(-1), ['use_prepared_peer']);
  const joined = run(up.state, 'joined');
  assert.deepEqual(joined.effects, [
    { type: 'cancel_timer', name: 'join' },
    { type: 'start_timer', name: 'ice_servers', ms: ICE_SERVERS_WAIT_MS, fire: 'ice_servers_timeout' },
  ]);
  const payload = { iceServers: [{ urls: ['stun:s.test'] }] };
  const served = run(joined.state, { type: 'ice_servers', payload });
  assert.deepEqual(served.effects, [
    { type: 'configure_peer', iceConfig: rtcConfiguration(payload) },
    { type: 'cancel_timer', name: 'ice_servers' },
  ]);
  assert.deepEqual(run(served.state, 'ice_servers_timeout', EVENTS.ice_servers).effects, [], 'configured once');
  // The lab's server sends none: the peer goes on without servers after the wait.
  assert.deepEqual(run(joined.state, 'ice_servers_timeout').effects[0], { type: 'configure_peer', iceConfig: null });
  assert.ok(!types(served.effects).includes('start_peer'));
});

test('a ring over or answered before the tap says so at once; other refusals change nothing', () => {
  const asked = run(ringing(), 'warm_connected').state;
  const over = run(asked, EVENTS.prepare_over);
  assert.equal(over.state.status, 'This call has ended');
  assert.deepEqual(types(over.effects), ['teardown'], 'the early peer is closed');
  assert.equal(run(asked, EVENTS.prepare_full).state.status, 'Someone else already answered');
  const refused = run(asked, EVENTS.prepare_refused);
  assert.deepEqual(refused, { state: asked, effects: [] });
});

test('a server that ignores prepare (the lab\'s), or a late answer to it, leaves the servers to joined', () => {
  const lab = run(ringing(), 'warm_connected', 'answer', 'signaling_up', EVENTS.prepared, 'joined', 'ice_servers_timeout');
  assert.ok(!types(lab.effects).includes('start_peer'), 'the early peer is used');
  assert.deepEqual(lab.effects.filter((e) => e.type === 'configure_peer'), [{ type: 'configure_peer', iceConfig: null }]);
});

test('a retry makes its own peer: the early one went with the first attempt', () => {
  const first = run(ringing(), 'warm_connected', EVENTS.prepared, 'answer', 'signaling_up', 'signaling_lost');
  assert.equal(first.state.phase, 'lost');
  const again = run(first.state, 'retry', 'signaling_up', 'joined', 'ice_servers_timeout');
  assert.ok(!types(again.effects).includes('use_prepared_peer'));
  assert.ok(types(again.effects).includes('start_peer'));
  // Not used at all (the first attempt never reached the server): not used by a retry either.
  const unused = run(ringing(), 'warm_connected', EVENTS.prepared, 'answer', 'signaling_error', 'retry', 'signaling_up');
  assert.ok(!types(unused.effects).includes('use_prepared_peer'));
});

test('connected: join with a bounded wait for the answer', () => {
  const r = run(WALK.connecting(), 'signaling_up');
  assert.deepEqual(r.effects, [
    { type: 'join' },
    { type: 'start_timer', name: 'join', ms: JOIN_TIMEOUT_MS, fire: 'join_timeout' },
  ]);
  assert.equal(r.state.detail, 'Reaching the doorbell');
});

test('joined then ice_servers: the peer starts with the servers, not before', () => {
  const joined = run(WALK.connecting(), 'signaling_up', 'joined');
  assert.deepEqual(joined.effects.slice(-2), [
    { type: 'cancel_timer', name: 'join' },
    { type: 'start_timer', name: 'ice_servers', ms: ICE_SERVERS_WAIT_MS, fire: 'ice_servers_timeout' },
  ]);
  assert.ok(!types(joined.effects).includes('start_peer'));
  const payload = { iceServers: [{ urls: ['turn:t.test:3478'], username: 'u', credential: 'c' }], iceTransportPolicy: 'relay' };
  const r = run(joined.state, { type: 'ice_servers', payload });
  assert.deepEqual(r.effects[0], {
    type: 'start_peer',
    iceConfig: { iceServers: [{ urls: ['turn:t.test:3478'], username: 'u', credential: 'c' }], iceTransportPolicy: 'relay' },
  });
  // A late timer or a second copy starts nothing more.
  assert.deepEqual(run(r.state, 'ice_servers_timeout').effects, []);
  assert.deepEqual(run(r.state, { type: 'ice_servers', payload }).effects, []);
});

test('ice_servers before joined is kept; a lab server that sends none starts after the wait', () => {
  const early = run(WALK.connecting(), 'signaling_up', { type: 'ice_servers', payload: { iceServers: [] } }, 'joined');
  assert.ok(types(early.effects).includes('start_peer'));
  const lab = run(WALK.connecting(), 'signaling_up', 'joined', 'ice_servers_timeout');
  assert.deepEqual(lab.effects.find((e) => e.type === 'start_peer'), { type: 'start_peer', iceConfig: null });
});

test('the join timeout only matters before the peer exists', () => {
  assert.equal(run(WALK.connecting(), 'signaling_up', 'join_timeout').state.detail, 'The doorbell server did not answer.');
  assert.equal(run(WALK['connecting-peer'](), 'join_timeout').state.phase, 'connecting');
});

test('the in-call detail says whether the owner can be heard', () => {
  const connect = { type: 'transport', state: 'connected' };
  assert.equal(run(WALK['connecting-peer'](), connect).state.detail, 'Waiting for your microphone.');
  assert.equal(run(WALK['connecting-peer'](), 'mic_granted', connect).state.detail, 'You are talking to the visitor.');
  const refused = run(WALK['connecting-peer'](), { type: 'mic_refused', why: 'The microphone was not allowed.' }, connect).state;
  assert.equal(refused.detail, 'Listening only.');
  assert.equal(refused.note, 'The microphone was not allowed. You can see and hear the visitor, but they cannot hear you.');
  assert.deepEqual(view(refused).buttons, ['hangup'], 'no mute without a microphone');
  assert.equal(run(WALK['in-call'](), 'mic_granted').state.detail, 'You are talking to the visitor.');
});

test('ICE disconnected restarts ICE within a grace period; reconnecting in it cancels it', () => {
  const d = run(WALK['in-call'](), { type: 'transport', state: 'disconnected' });
  assert.deepEqual(d.effects, [
    { type: 'start_timer', name: 'grace', ms: ICE_DISCONNECTED_GRACE_MS, fire: 'grace_over' },
    { type: 'restart_ice' },
  ]);
  assert.equal(d.state.detail, 'Connection is unstable…');
  assert.deepEqual(run(d.state, { type: 'transport', state: 'disconnected' }).effects, [], 'one timer, one restart');
  const healed = run(d.state, { type: 'transport', state: 'connected' });
  assert.deepEqual(healed.effects, [{ type: 'cancel_timer', name: 'grace' }]);
  assert.equal(healed.state.detail, 'Waiting for your microphone.', 'no longer "unstable"');
  assert.equal(run(healed.state, 'grace_over').state.phase, 'in-call', 'a stale timer does nothing');
  const dropped = run(d.state, 'grace_over').state;
  assert.equal(dropped.phase, 'lost');
  assert.equal(dropped.detail, 'The video connection dropped.');
  assert.deepEqual(view(dropped).buttons, ['retry']);
  // The doorbell's answer to the restart offer is applied like the first one.
  const answered = run(d.state, { type: 'answer_received', payload: { type: 'answer', sdp: 'v=0' } });
  assert.deepEqual(answered.effects, [{ type: 'set_remote_answer', sdp: 'v=0' }]);
  assert.equal(answered.state.phase, 'in-call');
});

test('losing the server keeps a call whose media flows, and says so', () => {
  const r = run(WALK['in-call'](), 'signaling_lost');
  assert.equal(r.state.phase, 'in-call');
  assert.equal(r.state.note, 'The doorbell server is unreachable; the call goes on directly.');
  assert.deepEqual(r.effects, []);
  const before = run(WALK['connecting-peer'](), 'signaling_lost').state;
  assert.equal(before.detail, 'The connection to the doorbell server dropped.');
});

test('hang up sends bye and keeps the socket a moment for it; the far end hanging up does not', () => {
  const mine = run(WALK['in-call'](), 'hangup');
  assert.deepEqual(mine.effects, [{ type: 'send_bye' }, { type: 'teardown', flushBye: true }]);
  assert.equal(mine.state.detail, 'You hung up.');
  const theirs = run(WALK['in-call'](), 'bye');
  assert.deepEqual(theirs.effects, [{ type: 'teardown', flushBye: false }]);
  assert.equal(theirs.state.status, "The visitor's side hung up");
});

test('created means the doorbell left: leave the room again', () => {
  const r = run(WALK.connecting(), 'signaling_up', 'created');
  assert.deepEqual(r.effects.slice(-2), [{ type: 'send_bye' }, { type: 'teardown', flushBye: true }]);
  assert.equal(r.state.status, 'This call has ended');
});

test('a refused event during a call is a note; before it, the end', () => {
  const during = run(WALK['in-call'](), EVENTS.server_error).state;
  assert.equal(during.phase, 'in-call');
  assert.equal(during.note, 'The server said: slow down');
  const before = run(WALK.connecting(), 'signaling_up', EVENTS.server_error).state;
  assert.equal(before.status, 'The call could not start');
  assert.equal(before.detail, 'slow down');
});

test('mute toggles the microphone and the button', () => {
  const on = run(WALK['in-call'](), 'mic_granted').state;
  const muted = run(on, 'mute');
  assert.deepEqual(muted.effects, [{ type: 'set_mic_enabled', enabled: false }]);
  assert.deepEqual(view(muted.state), { ...view(muted.state), muteLabel: 'Unmute', muted: true });
  const unmuted = run(muted.state, 'mute');
  assert.deepEqual(unmuted.effects, [{ type: 'set_mic_enabled', enabled: true }]);
  assert.equal(view(unmuted.state).muteLabel, 'Mute');
  assert.deepEqual(run(WALK['in-call'](), 'mute').effects, [], 'no microphone yet: nothing to mute');
});

test('retry starts a new attempt on a fresh connection', () => {
  const r = run(WALK.lost(), 'retry');
  assert.equal(r.state.attempt, 2);
  assert.deepEqual(types(r.effects), ['open_mic', 'connect']);
  assert.equal(r.effects[1].warm, false);
  assert.equal(r.state.note, '');
});

test('final phases offer only what is left to do', () => {
  for (const phase of FINAL) {
    const buttons = view(WALK[phase]().phase === phase ? WALK[phase]() : { ...ringing(), phase }).buttons;
    assert.deepEqual(buttons, phase === 'lost' || phase === 'error' ? ['retry'] : [], phase);
  }
});

test('ice_servers payloads are sanitised into an RTCConfiguration', () => {
  assert.deepEqual(rtcConfiguration(null), { iceServers: [] });
  assert.deepEqual(
    rtcConfiguration({
      iceServers: [
        { urls: 'stun:s.test' },
        { urls: ['http://evil', 5] },
        'junk',
        { urls: ['turns:t.test'], username: 'u', credential: 7 },
      ],
      iceTransportPolicy: 'nope',
    }),
    { iceServers: [{ urls: ['stun:s.test'] }, { urls: ['turns:t.test'], username: 'u' }] }
  );
});

test('room ids come only from a valid ?room=', () => {
  assert.equal(roomFromSearch('?room=abc_DEF-1'), 'abc_DEF-1');
  assert.equal(roomFromSearch('?room=bad%20room'), null);
  assert.equal(roomFromSearch('?room=' + 'x'.repeat(65)), null);
  assert.equal(roomFromSearch(''), null);
});

test('a ringing page of a paired device says who answered on another device', () => {
  const ringing = WALK.ringing();
  const { state } = next(ringing, { type: 'answered_elsewhere', by: "Ben's tablet" });
  assert.equal(state.phase, 'full');
  assert.equal(state.status, "Answered by Ben's tablet");
  assert.deepEqual(view(state).buttons, [], 'nothing to answer any more');
});

function liveView() {
  return initial({ room: ROOM, webrtc: true, live: true });
}

test('a live view connects at once, without a warm-up or the microphone', () => {
  const { state, effects } = liveView();
  assert.equal(state.phase, 'connecting');
  assert.equal(state.status, 'Live view');
  assert.equal(state.live, true);
  assert.equal(state.mic, 'held');
  assert.deepEqual(types(effects), ['connect'], 'no open_mic: the door cannot hear the owner');
  const inCall = run(state, 'signaling_up', 'joined', 'ice_servers_timeout', { type: 'transport', state: 'connected' }).state;
  assert.equal(inCall.phase, 'in-call');
  assert.equal(inCall.status, 'Live view');
  assert.match(inCall.detail, /cannot hear you/);
  assert.deepEqual(view(inCall).buttons, ['mute', 'hangup']);
  assert.equal(view(inCall).muteLabel, 'Unmute');
});

test('the first Unmute of a live view asks for the microphone, and only then', () => {
  const inCall = run(liveView().state, 'signaling_up', 'joined', 'ice_servers_timeout', {
    type: 'transport',
    state: 'connected',
  }).state;
  const unmuted = run(inCall, 'mute');
  assert.deepEqual(types(unmuted.effects), ['open_mic']);
  assert.equal(unmuted.state.mic, 'unknown');
  assert.equal(view(unmuted.state).muteLabel, 'Mute');
  const talking = run(unmuted.state, 'mic_granted').state;
  assert.equal(talking.mic, 'on');
  // From then on Mute and Unmute toggle the track, as in a call.
  const muted = run(talking, 'mute');
  assert.deepEqual(muted.effects, [{ type: 'set_mic_enabled', enabled: false }]);
});

test('the doorbell ending a live view hands over to the home view, which opens the ring', () => {
  const inCall = run(liveView().state, 'signaling_up', 'joined', 'ice_servers_timeout', {
    type: 'transport',
    state: 'connected',
  }).state;
  const { state, effects } = run(inCall, 'bye');
  assert.equal(state.phase, 'ended-remote');
  assert.deepEqual(effects.at(-1), { type: 'go_home', handover: true });
  // The owner hanging up stays on the page.
  const hung = run(inCall, 'hangup');
  assert.ok(!types(hung.effects).includes('go_home'));
  // A ring's call ending is no hand-over.
  assert.ok(!types(run(WALK['in-call'](), 'bye').effects).includes('go_home'));
});

test('retry of a lost live view asks the doorbell for a new one', () => {
  const lostLive = run(liveView().state, 'signaling_error').state;
  assert.equal(lostLive.phase, 'lost');
  assert.deepEqual(run(lostLive, 'retry').effects, [{ type: 'request_live' }]);
});

test('live views come only from live=1', () => {
  assert.equal(liveFromSearch('?room=R&live=1'), true);
  assert.equal(liveFromSearch('?room=R&live=true'), false);
  assert.equal(liveFromSearch('?room=R'), false);
});
