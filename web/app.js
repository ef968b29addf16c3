// The owner's call page: wiring only. Every decision is in call_state.js (`next`); this shell
// keeps the handles of the current attempt (socket, peer, microphone, timers), turns their
// callbacks into events and the state's effects into calls. Benchmarks read the steps of a
// call as `performance` marks named `doorbell:*` (BENCHMARKS.md "Call"); nothing else is
// exposed to scripts.

import { initial, next, view, roomFromSearch, liveFromSearch } from './call_state.js';
import * as signaling from './signaling.js';
import { startPeer, preparePeer, openMicrophone, stopStream } from './peer.js';
import * as ui from './ui.js';
import { answeredElsewhere } from './owner_state.js';

// The owner app (pairing, history, live view, quick replies) is not on a ring's critical path:
// it loads after the call page is up, so the tap → first frame path waits for fewer files.
let ownerModule = null;
const owner = () => (ownerModule ??= import('./owner.js'));

const BYE_FLUSH_MS = 300;
// When a ringing page asks whether this device has quick replies to offer.
const REPLIES_AFTER_MS = 1000;

let state;
// The handles of the current attempt; replaced on Retry.
let handles = emptyHandles(0);
let warm = null;
// The peer and offer readied while it rings, until the tap uses it (or the ring ends).
let prepared = null;

function emptyHandles(attempt) {
  return { attempt, socket: null, peer: null, mic: null, timers: {} };
}

// Events of the current attempt carry its number, so a late callback of an earlier one is
// dropped by `next`.
function emitFor(attempt) {
  return (event) => dispatch({ ...event, attempt });
}

// Events raised while effects run (a warm socket that is already connected reports so at
// once) wait their turn, so each event sees the handles of the ones before it.
const queue = [];
let dispatching = false;

function dispatch(event) {
  queue.push(event);
  if (dispatching) return;
  dispatching = true;
  try {
    while (queue.length > 0) {
      const result = next(state, queue.shift());
      state = result.state;
      for (const effect of result.effects) run(effect);
    }
  } finally {
    dispatching = false;
  }
  ui.render(view(state));
  if (state.phase !== 'ringing' && ownerModule) owner().then((o) => o.withdrawReplies());
}

function run(effect) {
  const h = handles;
  switch (effect.type) {
    case 'warm_up':
      if (signaling.available()) {
        warm = signaling.warmUp(dispatch, (update) => {
          const by = answeredElsewhere(update, state.room);
          if (by) dispatch({ type: 'answered_elsewhere', by });
        });
      }
      break;
    case 'prepare':
      if (warm && warm.usable) warm.prepare(state.room);
      break;
    case 'prepare_peer':
      try {
        prepared = preparePeer({ onStream: ui.showStream });
      } catch (err) {
        prepared = null;
        dispatch({ type: 'prepare_failed' });
      }
      break;
    case 'configure_peer': {
      const peer = h.peer || prepared;
      if (peer) peer.configure(effect.iceConfig);
      break;
    }
    case 'use_prepared_peer': {
      if (!prepared) {
        emitFor(h.attempt)({ type: 'peer_failed', why: 'the prepared call was lost' });
        break;
      }
      h.peer = prepared.start(linkOf(h));
      prepared = null;
      if (h.mic) h.peer.attachMicrophone(h.mic.track);
      break;
    }
    case 'unlock_audio':
      ui.unlockAudio();
      break;
    case 'open_mic': {
      const emit = emitFor(effect.attempt);
      openMicrophone().then(
        (mic) => {
          if (handles.attempt !== effect.attempt) return stopStream(mic.stream);
          performance.mark('doorbell:microphone');
          handles.mic = mic;
          if (handles.peer) handles.peer.attachMicrophone(mic.track);
          emit({ type: 'mic_granted' });
        },
        (err) => emit({ type: 'mic_refused', why: err.message })
      );
      break;
    }
    case 'connect': {
      teardown(handles, false);
      handles = emptyHandles(effect.attempt);
      if (!signaling.available()) {
        // The vendored client did not load: nothing can work until a reload.
        emitFor(effect.attempt)({ type: 'no_signaling_client' });
        break;
      }
      const fresh = effect.warm ? warm : null;
      if (!effect.warm && warm) warm.usable = false;
      handles.socket = signaling.connect(fresh, emitFor(effect.attempt));
      break;
    }
    case 'join':
      h.socket.send('join', state.room);
      break;
    case 'start_peer': {
      const emit = emitFor(h.attempt);
      try {
        h.peer = startPeer({ iceConfig: effect.iceConfig, onStream: ui.showStream, ...linkOf(h) });
        if (h.mic) h.peer.attachMicrophone(h.mic.track);
      } catch (err) {
        emit({ type: 'peer_failed', why: err && err.message ? err.message : String(err) });
      }
      break;
    }
    case 'set_remote_answer':
      if (h.peer) h.peer.setRemoteAnswer(effect.sdp);
      break;
    case 'restart_ice':
      if (h.peer) h.peer.restartIce();
      break;
    case 'add_remote_candidate':
      if (h.peer) h.peer.addRemoteCandidate(effect.candidate);
      break;
    case 'set_mic_enabled':
      if (h.mic) h.mic.track.enabled = effect.enabled;
      break;
    case 'start_timer': {
      clearTimeout(h.timers[effect.name]);
      const emit = emitFor(h.attempt);
      h.timers[effect.name] = setTimeout(() => emit({ type: effect.fire }), effect.ms);
      break;
    }
    case 'cancel_timer':
      clearTimeout(h.timers[effect.name]);
      break;
    case 'send_bye':
      if (h.socket && h.socket.connected()) h.socket.send('bye', state.room);
      break;
    case 'teardown':
      teardown(h, effect.flushBye);
      if (prepared) prepared.close();
      prepared = null;
      break;
    case 'request_live':
      owner().then((o) => o.openLiveView((why) => ui.render({ ...view(state), note: why })));
      break;
    case 'go_home':
      // After the bye has gone: the home view opens the ring that took over, if one did.
      setTimeout(() => window.location.replace(effect.handover ? '/?handover=1' : '/'), BYE_FLUSH_MS);
      break;
    default:
      console.warn('doorbell: unknown effect', effect.type);
  }
}

// What an attempt's peer talks through: its socket, and its events (with the moment media
// first connects marked for the benchmarks).
function linkOf(h) {
  const emit = emitFor(h.attempt);
  return {
    send: (name, payload) => h.socket.send(name, payload),
    emit: (event) => {
      if (event.type === 'transport' && event.state === 'connected' &&
          performance.getEntriesByName('doorbell:media_connected').length === 0) {
        performance.mark('doorbell:media_connected');
      }
      emit(event);
    },
  };
}

// Closes everything of an attempt. After a `bye` the socket stays open a moment so it leaves;
// otherwise it closes at once: a Retry must not find our old connection still in the room, or
// the server would count it and answer `full`.
function teardown(h, flushBye) {
  for (const t of Object.values(h.timers)) clearTimeout(t);
  h.timers = {};
  if (h.peer) h.peer.close();
  h.peer = null;
  if (h.mic) stopStream(h.mic.stream);
  h.mic = null;
  if (h.socket) h.socket.close(flushBye ? BYE_FLUSH_MS : 0);
  h.socket = null;
  ui.clearVideo();
}

ui.bind((tap) => {
  if (tap === 'answer') performance.mark('doorbell:answer');
  if (tap === 'retry') {
    // A new attempt: its steps are marked afresh.
    for (const m of performance.getEntriesByType('mark')) {
      if (m.name.startsWith('doorbell:') && m.name !== 'doorbell:ringing') performance.clearMarks(m.name);
    }
  }
  dispatch({ type: tap });
});
ui.watchFirstFrame();

// Installable as an app (home screen); the worker caches nothing (sw.js).
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js').catch(() => {});
}

const pairingCode = window.location.pathname === '/pair'
  ? new URLSearchParams(window.location.search).get('code')
  : null;
if (pairingCode) {
  owner().then((o) => o.startPairing(pairingCode));
} else {
  const start = initial({
    room: roomFromSearch(window.location.search),
    webrtc: typeof RTCPeerConnection === 'function',
    live: liveFromSearch(window.location.search),
  });
  state = start.state;
  if (state.phase === 'ringing') {
    performance.mark('doorbell:ringing');
    // A paired device may answer with a quick reply instead (nothing shows for others). Asked
    // a moment later: its files and requests would compete with the call's on the way in.
    setTimeout(() => {
      if (state.phase === 'ringing') owner().then((o) => o.offerReplies(state.room, () => state.phase === 'ringing'));
    }, REPLIES_AFTER_MS);
  }
  for (const effect of start.effects) run(effect);
  ui.render(view(state));
  // Without a room: a paired device sees its ring history instead.
  if (state.phase === 'no-room') owner().then((o) => o.startHome());
}
