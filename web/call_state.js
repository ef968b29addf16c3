// What the call page decides, as one pure function: `next(state, event) → { state, effects }`.
// No DOM, no sockets, no timers: the shell (app.js) turns effects into I/O and I/O into events,
// like the doorbell's own call flow (crates/agent/src/call_flow.rs). Tested for every event in
// every phase by tests/e2e/call_state.test.js.

// Which buttons each phase offers. Every phase not listed offers none.
export const BUTTONS = {
  ringing: ['answer'],
  connecting: ['hangup'],
  'in-call': ['mute', 'hangup'],
  lost: ['retry'],
  error: ['retry'],
};
// Phases after which nothing more happens on this call attempt.
export const FINAL = ['ended-remote', 'ended-local', 'full', 'no-such-room', 'lost', 'error'];

// How long to wait for the server to answer our `join` before calling the connection lost.
export const JOIN_TIMEOUT_MS = 15000;
// ICE "disconnected" often heals by itself (a Wi-Fi hand-over); only call it lost after this.
export const ICE_DISCONNECTED_GRACE_MS = 4000;
// How long to wait after `joined` for `ice_servers` (our server sends it at once; the lab's
// never does).
export const ICE_SERVERS_WAIT_MS = 300;

// Room names the server accepts (crates/protocol: MAX_ROOM_NAME_CHARS, URL-safe alphabet).
const ROOM_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export function roomFromSearch(search) {
  const value = new URLSearchParams(search).get('room');
  return value && ROOM_NAME.test(value) ? value : null;
}

// `live=1`: the page was opened for a live view (the owner app's Live view button, or a ring
// that took over a live view), not from a ring's link.
export function liveFromSearch(search) {
  return new URLSearchParams(search).get('live') === '1';
}

export function isFinal(state) {
  return FINAL.includes(state.phase);
}

// The page as it loads. `webrtc`: the browser has RTCPeerConnection. `live`: a live view,
// which connects at once with the owner's microphone held back until they tap Unmute.
export function initial({ room, webrtc, live = false }) {
  const base = {
    phase: 'loading',
    status: 'Loading…',
    detail: '',
    note: '',
    room,
    // Without RTCPeerConnection there is nothing to retry.
    canCall: webrtc,
    // One number per attempt at a call; events of an earlier attempt are ignored.
    attempt: 0,
    mic: 'unknown', // unknown (not asked / pending) | on | off | held (live view: not asked yet)
    muted: false,
    live: false,
    signaling: 'down', // down | up
    joined: false,
    iceConfig: null,
    peer: false, // this attempt's RTCPeerConnection exists
    // The peer has its ICE servers: its offer is set and goes out once joined. While it rings,
    // this says it of the peer made before the tap.
    peerConfigured: false,
    transport: 'new', // the peer's connection state
    graceRunning: false,
    // The peer and offer made while it rings, before the tap: no | ready (waiting for the tap;
    // its servers came if our server answered `prepare`, the lab's does not) | used.
    prepared: 'no',
    askedServers: false,
  };
  if (!room) {
    return {
      state: {
        ...base,
        phase: 'no-room',
        status: 'Open the link from your doorbell message',
        detail: 'This page needs the link that came with the ring.',
      },
      effects: [],
    };
  }
  if (!webrtc) {
    return {
      state: {
        ...base,
        phase: 'error',
        status: 'This browser cannot make calls',
        detail: 'Open the link in a current Chrome, Firefox or Safari.',
      },
      effects: [],
    };
  }
  if (live) {
    // Privacy: the door does not hear the owner until they choose to talk.
    const started = answer({ ...base, live: true }, false);
    return {
      state: { ...started.state, status: 'Live view', detail: 'Opening the door camera', mic: 'held', muted: true },
      effects: started.effects.filter((e) => e.type !== 'open_mic'),
    };
  }
  return {
    state: {
      ...base,
      phase: 'ringing',
      status: 'Someone is at the door',
      detail: 'Tap Answer to see and talk to them.',
      prepared: 'ready',
    },
    // While it rings: connect, so the tap does not wait for the handshakes, and make the peer
    // and its offer, set once the server tells the ICE servers (`prepare`, when connected). The
    // doorbell sees nobody until the tap joins.
    effects: [{ type: 'warm_up' }, { type: 'prepare_peer' }],
  };
}

function set(state, phase, status, detail) {
  return { ...state, phase, status, detail: detail || '' };
}

// Ends the attempt: the phase, and closing everything; `bye` first when asked.
function finish(state, phase, status, detail, { bye = false } = {}) {
  const effects = [];
  if (bye) effects.push({ type: 'send_bye' });
  effects.push({ type: 'teardown', flushBye: bye });
  return { state: { ...set(state, phase, status, detail), graceRunning: false }, effects };
}

function lost(state, why) {
  return finish(state, 'lost', 'Connection lost', why);
}

function fail(state, why) {
  return finish(state, 'error', 'Something went wrong', why);
}

function inCallDetail(state) {
  if (state.mic === 'held') return 'The door cannot hear you. Tap Unmute to talk.';
  if (state.mic === 'on' && state.live && state.muted) return 'Muted: the door cannot hear you.';
  if (state.mic === 'on') return 'You are talking to the visitor.';
  if (state.mic === 'unknown') return 'Waiting for your microphone.';
  return 'Listening only.';
}

function startPeer(state) {
  return {
    state: { ...state, peer: true, peerConfigured: true },
    effects: [{ type: 'start_peer', iceConfig: state.iceConfig }, { type: 'cancel_timer', name: 'ice_servers' }],
  };
}

// The peer made while it rang learns its ICE servers (none: `null`), and can set its offer.
function configurePeer(state, iceConfig) {
  return {
    state: { ...state, peerConfigured: true },
    effects: [{ type: 'configure_peer', iceConfig }, { type: 'cancel_timer', name: 'ice_servers' }],
  };
}

const same = (state) => ({ state, effects: [] });

// The attempt's events: everything but `answer`, `retry`, `mute` and `hangup` carries the
// attempt it belongs to.
// `answered_elsewhere` (another owner's device answered this ring) belongs to no attempt, nor do
// the events of the connection and peer made before the tap (`RINGING_EVENTS`).
const USER_EVENTS = ['answer', 'retry', 'mute', 'hangup', 'answered_elsewhere'];
const RINGING_EVENTS = ['warm_connected', 'prepared', 'prepare_refused', 'prepare_failed'];

export function next(state, event) {
  if (RINGING_EVENTS.includes(event.type)) return state.phase === 'ringing' ? whileRinging(state, event) : same(state);
  if (!USER_EVENTS.includes(event.type) && event.attempt !== state.attempt) return same(state);
  const final = isFinal(state);
  switch (event.type) {
    case 'answer':
      if (state.phase !== 'ringing') return same(state);
      return answer(state, true);
    case 'retry':
      if ((state.phase !== 'lost' && state.phase !== 'error') || !state.canCall) return same(state);
      // A live view's room is gone with it: ask the doorbell for a new one.
      if (state.live) return { state, effects: [{ type: 'request_live' }] };
      return answer(state, false);
    case 'mute':
      if (state.mic === 'held' && !final) {
        // The first Unmute of a live view: only now is the microphone asked for.
        return {
          state: { ...state, mic: 'unknown', muted: false, detail: 'Asking for your microphone' },
          effects: [{ type: 'open_mic', attempt: state.attempt }],
        };
      }
      if (state.mic !== 'on' || final) return same(state);
      return { state: { ...state, muted: !state.muted }, effects: [{ type: 'set_mic_enabled', enabled: state.muted }] };
    case 'hangup':
      if (final || (state.phase !== 'connecting' && state.phase !== 'in-call')) return same(state);
      return finish(state, 'ended-local', 'Call ended', 'You hung up.', { bye: state.signaling === 'up' });
    case 'answered_elsewhere':
      // Only while it rings: once this device has answered, its own answer is the news.
      if (state.phase !== 'ringing') return same(state);
      return finish(state, 'full', `Answered by ${event.by}`, 'Another owner is talking to the visitor.');
    default:
      break;
  }
  if (final || (state.phase !== 'connecting' && state.phase !== 'in-call')) return same(state);
  switch (event.type) {
    case 'signaling_up': {
      const up = { ...state, signaling: 'up', detail: 'Reaching the doorbell' };
      const join = [{ type: 'join' }, { type: 'start_timer', name: 'join', ms: JOIN_TIMEOUT_MS, fire: 'join_timeout' }];
      // The peer made while it rang sends its offer right behind the join (at once if its ICE
      // servers are set, else once they are): the server takes a connection's events in order,
      // so the doorbell hears `new_peer` and then the offer, and a refused join (full, over)
      // leaves the offer with nobody to go to.
      if (state.prepared === 'ready' && !state.peer) {
        return {
          state: { ...up, peer: true, prepared: 'used' },
          effects: [...join, { type: 'use_prepared_peer' }],
        };
      }
      return { state: up, effects: join };
    }
    case 'signaling_error':
      return lost(state, 'Could not reach the doorbell server.');
    case 'no_signaling_client':
      // The vendored Socket.IO client did not load: nothing works until a reload.
      return finish(state, 'error', 'Something went wrong', 'The page did not load completely. Reload it.');
    case 'signaling_lost':
      // Media is peer to peer: once it flows, losing the server does not end the call. Hang up
      // then closes the connection, which the doorbell notices by itself.
      if (state.phase === 'in-call' && state.transport === 'connected') {
        return {
          state: { ...state, signaling: 'down', note: 'The doorbell server is unreachable; the call goes on directly.' },
          effects: [],
        };
      }
      return lost({ ...state, signaling: 'down' }, 'The connection to the doorbell server dropped.');
    case 'join_timeout':
      return state.joined ? same(state) : lost(state, 'The doorbell server did not answer.');
    case 'joined': {
      if (state.joined) return same(state);
      const joined = { ...state, joined: true };
      const cancel = { type: 'cancel_timer', name: 'join' };
      if (joined.peer && joined.peerConfigured) return { state: joined, effects: [cancel] };
      if (joined.peer) {
        // The peer made while it rang still waits for its ICE servers: they follow `joined`
        // from our server; the lab's sends none.
        return { state: joined, effects: [cancel, { type: 'start_timer', name: 'ice_servers', ms: ICE_SERVERS_WAIT_MS, fire: 'ice_servers_timeout' }] };
      }
      if (joined.iceConfig) {
        const started = startPeer(joined);
        return { state: started.state, effects: [cancel, ...started.effects] };
      }
      return { state: joined, effects: [cancel, { type: 'start_timer', name: 'ice_servers', ms: ICE_SERVERS_WAIT_MS, fire: 'ice_servers_timeout' }] };
    }
    case 'ice_servers': {
      if (state.peer && !state.peerConfigured) return configurePeer(state, rtcConfiguration(event.payload));
      if (state.peer) return same(state);
      const known = { ...state, iceConfig: rtcConfiguration(event.payload) };
      return known.joined ? startPeer(known) : same(known);
    }
    case 'ice_servers_timeout':
      if (state.peer && !state.peerConfigured) return configurePeer(state, null);
      return state.joined && !state.peer ? startPeer(state) : same(state);
    case 'created':
      // We are alone in the room: the doorbell has already left, so this link is over. Leave
      // the room again, or a lab-style server would keep it open with only us inside.
      return finish(state, 'no-such-room', 'This call has ended', 'The doorbell is no longer ringing.', { bye: true });
    case 'full':
      return finish(state, 'full', 'Someone else already answered', 'Another person is talking to the visitor.');
    case 'peer_failed':
      return fail(state, 'Could not start the call: ' + event.why);
    case 'offer_sent':
      return { state: { ...state, detail: 'Waiting for the doorbell' }, effects: [] };
    case 'answer_received': {
      if (!state.peer) return same(state);
      const a = event.payload;
      if (!a || a.type !== 'answer' || typeof a.sdp !== 'string') {
        return fail(state, 'The doorbell sent an answer this page cannot read.');
      }
      return { state, effects: [{ type: 'set_remote_answer', sdp: a.sdp }] };
    }
    case 'answer_refused':
      return fail(state, 'The doorbell answer was refused: ' + event.why);
    case 'remote_candidate':
      return { state, effects: [{ type: 'add_remote_candidate', candidate: event.payload }] };
    case 'bye':
      if (state.live) {
        // The doorbell ended the live view, most often because someone rang: the home view
        // takes over and opens that ring.
        const ended = finish(state, 'ended-remote', 'Live view ended', 'The doorbell ended the live view.');
        return { state: ended.state, effects: [...ended.effects, { type: 'go_home', handover: true }] };
      }
      return finish(state, 'ended-remote', "The visitor's side hung up", 'The call has ended.');
    case 'server_error': {
      const p = event.payload;
      const code = p && typeof p === 'object' ? p.code : null;
      const message = p && typeof p === 'object' ? String(p.message || p.code || 'unknown error') : String(p);
      if (code === 'no_such_room') {
        return finish(state, 'no-such-room', 'This call has ended', 'The doorbell is no longer ringing.');
      }
      // Refused before the call started (the join): nothing will happen by waiting.
      if (!state.joined) return finish(state, 'error', 'The call could not start', message);
      // During a call a refused event (say one odd candidate) need not end it; say so.
      return { state: { ...state, note: 'The server said: ' + message }, effects: [] };
    }
    case 'transport':
      return onTransport(state, event.state);
    case 'grace_over':
      return state.graceRunning ? lost(state, 'The video connection dropped.') : same(state);
    case 'mic_granted': {
      if (state.mic === 'held') return same(state);
      const on = { ...state, mic: 'on' };
      return { state: state.phase === 'in-call' ? { ...on, detail: inCallDetail(on) } : on, effects: [] };
    }
    case 'mic_refused':
      return {
        state: {
          ...state,
          mic: 'off',
          note: event.why + ' You can see and hear the visitor, but they cannot hear you.',
        },
        effects: [],
      };
    default:
      return same(state);
  }
}

// Before the tap: the connection warmed up while it rings asks for the ICE servers, which set
// the peer made at load; or the answer says the ring is already over.
function whileRinging(state, event) {
  switch (event.type) {
    case 'warm_connected':
      if (state.askedServers || state.prepared !== 'ready') return same(state);
      return { state: { ...state, askedServers: true }, effects: [{ type: 'prepare' }] };
    case 'prepared':
      if (state.prepared !== 'ready' || state.peerConfigured || !state.askedServers) return same(state);
      return {
        state: { ...state, peerConfigured: true },
        effects: [{ type: 'configure_peer', iceConfig: rtcConfiguration(event.payload) }],
      };
    case 'prepare_failed':
      // No peer could be made: the tap makes one the usual way and reports what fails.
      return { state: { ...state, prepared: 'used' }, effects: [] };
    case 'prepare_refused':
      if (!state.askedServers) return same(state);
      if (event.code === 'full') {
        return finish(state, 'full', 'Someone else already answered', 'Another person is talking to the visitor.');
      }
      if (event.code === 'no_such_room') {
        return finish(state, 'no-such-room', 'This call has ended', 'The doorbell is no longer ringing.');
      }
      // Anything else (say, rate limited): the servers come after `joined` instead.
      return same(state);
    default:
      return same(state);
  }
}

function answer(state, first) {
  const attempt = state.attempt + 1;
  return {
    state: {
      ...set(state, 'connecting', 'Connecting…', 'Asking for your microphone'),
      attempt,
      note: '',
      mic: 'unknown',
      muted: false,
      signaling: 'down',
      joined: false,
      iceConfig: null,
      peer: false,
      // Only the first answer finds the peer made while it rang (configured or not); a retry
      // makes its own.
      peerConfigured: first && state.prepared === 'ready' && state.peerConfigured,
      transport: 'new',
      graceRunning: false,
      prepared: first ? state.prepared : 'used',
    },
    // The call does not wait for the microphone: the offer carries an audio sender with no
    // track, and the microphone is put on it when (if) it is granted. The first answer uses
    // the connection warmed up while ringing; a retry connects afresh.
    effects: [
      ...(first ? [{ type: 'unlock_audio' }] : []),
      { type: 'open_mic', attempt },
      { type: 'connect', attempt, warm: first },
    ],
  };
}

function onTransport(state, transport) {
  const s = { ...state, transport };
  if (transport === 'connected') {
    const effects = state.graceRunning ? [{ type: 'cancel_timer', name: 'grace' }] : [];
    const connected = { ...s, graceRunning: false };
    // Healed within the grace: say so again instead of "unstable".
    if (state.phase === 'in-call') return { state: { ...connected, detail: inCallDetail(connected) }, effects };
    const status = state.live ? 'Live view' : 'In call';
    return { state: set(connected, 'in-call', status, inCallDetail(connected)), effects };
  }
  if (transport === 'disconnected') {
    if (state.graceRunning) return same(s);
    // Look for a new path at once (an ICE restart), within the grace the call has left.
    return {
      state: { ...s, graceRunning: true, detail: 'Connection is unstable…' },
      effects: [
        { type: 'start_timer', name: 'grace', ms: ICE_DISCONNECTED_GRACE_MS, fire: 'grace_over' },
        ...(state.peer ? [{ type: 'restart_ice' }] : []),
      ],
    };
  }
  if (transport === 'failed') return lost(s, 'The video connection failed.');
  return same(s);
}

// The `ice_servers` payload as an RTCConfiguration; anything malformed is left out.
export function rtcConfiguration(payload) {
  const config = { iceServers: [] };
  if (!payload || typeof payload !== 'object') return config;
  if (Array.isArray(payload.iceServers)) {
    for (const s of payload.iceServers.slice(0, 8)) {
      if (!s || typeof s !== 'object') continue;
      const urls = (Array.isArray(s.urls) ? s.urls : [s.urls]).filter(
        (u) => typeof u === 'string' && /^(stun|stuns|turn|turns):/.test(u)
      );
      if (urls.length === 0) continue;
      const server = { urls };
      if (typeof s.username === 'string') server.username = s.username;
      if (typeof s.credential === 'string') server.credential = s.credential;
      config.iceServers.push(server);
    }
  }
  if (payload.iceTransportPolicy === 'relay') config.iceTransportPolicy = 'relay';
  return config;
}

// What the page shows for a state.
export function view(state) {
  const buttons = (BUTTONS[state.phase] || []).filter(
    (b) => (b !== 'mute' || state.mic !== 'off') && (b !== 'retry' || state.canCall)
  );
  return {
    dataState: state.phase,
    status: state.status,
    detail: state.detail,
    note: state.note,
    buttons,
    muteLabel: state.muted ? 'Unmute' : 'Mute',
    muted: state.muted,
  };
}
