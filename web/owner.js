// The owner app's I/O: the pairing page (/pair?code=…) and the home view (the ring history of
// a paired device, live). Decisions are in owner_state.js.

import {
  withEntry,
  describe,
  pairingOutcome,
  handoverRoom,
  liveOutcome,
  HANDOVER_MS,
  keyBytes,
  pushButton,
} from './owner_state.js';

import * as replies from './replies.js';
import { vendoredSocket } from './signaling.js';

const $ = (id) => document.getElementById(id);

// Shows the pairing page for `code`.
export function startPairing(code) {
  document.body.setAttribute('data-state', 'pairing');
  $('stage').hidden = true;
  $('status').textContent = 'Pair this device';
  $('detail').textContent = 'It will see the ring history and can answer the door.';
  $('pairing').hidden = false;
  $('pair-confirm').addEventListener('click', async () => {
    $('pair-confirm').disabled = true;
    let outcome;
    try {
      const answer = await fetch('/api/pair', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ code, name: $('pair-name').value }),
      });
      outcome = pairingOutcome(answer.status, await answer.json().catch(() => null));
    } catch (err) {
      outcome = { paired: false, text: 'The server cannot be reached.' };
    }
    $('detail').textContent = outcome.text;
    if (outcome.paired) {
      document.body.setAttribute('data-state', 'paired');
      $('status').textContent = 'Paired';
      $('pairing').hidden = true;
      $('home-link').hidden = false;
    } else {
      document.body.setAttribute('data-state', 'pairing-refused');
      $('pair-confirm').disabled = false;
    }
  });
}

// Asks the doorbell for a live view and opens it; `onError(text)` when it cannot start.
export async function openLiveView(onError) {
  let outcome;
  try {
    const answer = await fetch('/api/live', { method: 'POST' });
    outcome = liveOutcome(answer.status, await answer.json().catch(() => null));
  } catch (err) {
    outcome = { error: 'No live view: the server cannot be reached.' };
  }
  if (outcome.href) window.location.assign(outcome.href);
  else onError(outcome.error);
}

// Shows the home view if this browser is a paired device; false when it is not.
export async function startHome() {
  const answer = await fetch('/api/me').then((r) => (r.ok ? r.json() : null), () => null);
  const me = answer && answer.paired ? answer : null;
  // Said on the page, for tests and for styling: whether this browser is a paired device.
  document.body.dataset.owner = me ? 'paired' : 'unpaired';
  if (!me) return false;
  document.body.setAttribute('data-state', 'home');
  $('stage').hidden = true;
  $('status').textContent = 'Doorbell';
  $('detail').textContent = `This device: ${me.name}`;
  $('home').hidden = false;
  let entries = [];
  replies.onChange(() => render(entries));
  replies.startReplies();
  $('live').addEventListener('click', () => {
    $('live').disabled = true;
    $('detail').textContent = 'Opening the door camera…';
    openLiveView((why) => {
      $('detail').textContent = why;
      $('live').disabled = false;
    });
  });
  setUpPush();
  // Arrived here because a ring ended this device's live view: that ring opens by itself.
  const handoverUntil = new URLSearchParams(window.location.search).get('handover') === '1'
    ? Date.now() + HANDOVER_MS
    : null;
  const takeOver = () => {
    const room = handoverRoom(entries, handoverUntil);
    if (room) window.location.replace(`/?room=${encodeURIComponent(room)}&live=1`);
  };
  const list = await fetch('/api/rings?limit=50').then((r) => (r.ok ? r.json() : []), () => []);
  for (const entry of list) entries = withEntry(entries, entry);
  render(entries);
  takeOver();
  vendoredSocket({ transports: ['websocket', 'polling'], reconnect: true }).then(
    (socket) =>
      socket.on('ring_update', (update) => {
        entries = withEntry(entries, update);
        render(entries);
        takeOver();
      }),
    () => {}
  );
  return true;
}

function render(entries) {
  const list = $('history');
  list.replaceChildren(
    ...entries.map((entry) => {
      const shown = describe(entry);
      const item = document.createElement('li');
      item.className = shown.ringing ? 'ring ringing' : 'ring';
      item.dataset.id = String(shown.id);
      item.dataset.outcome = entry.outcome;
      const body = document.createElement(shown.href ? 'a' : 'div');
      if (shown.href) body.href = shown.href;
      body.className = 'ring-body';
      if (shown.thumbnail) {
        const img = document.createElement('img');
        img.src = shown.thumbnail;
        img.alt = 'The visitor';
        img.className = 'thumb';
        body.append(img);
      }
      const text = document.createElement('span');
      const label = document.createElement('strong');
      label.textContent = shown.label;
      const details = document.createElement('small');
      details.textContent = shown.details;
      text.append(label, details);
      body.append(text);
      item.append(body);
      // A ringing bell can be answered with a recorded reply instead of a call.
      if (shown.ringing && replies.current().length > 0) {
        const row = document.createElement('div');
        row.className = 'reply-buttons';
        for (const reply of replies.current()) {
          row.append(replyButton(entry.room, reply, () => $('reply-ends').checked, () => {}));
        }
        item.append(row);
      }
      if (shown.message) {
        const clip = document.createElement('video');
        clip.className = 'message';
        clip.controls = true;
        clip.preload = 'metadata';
        clip.playsInline = true;
        clip.src = shown.message.url;
        clip.setAttribute('aria-label', shown.message.label);
        const caption = document.createElement('small');
        caption.className = 'message-label';
        caption.textContent = shown.message.label;
        item.append(caption, clip);
      }
      return item;
    })
  );
  $('history-empty').hidden = entries.length > 0;
}

// "Notify this device": Web Push through the browser's push service. The subscription goes to
// the server (POST /api/push), which pushes every ring to it; the service worker shows it.
async function setUpPush() {
  const button = $('notify');
  const supported = 'serviceWorker' in navigator && 'PushManager' in window && 'Notification' in window;
  let registration = null;
  let subscription = null;
  if (supported) {
    // The worker may never become ready (a browser that refuses it on this origin).
    const late = new Promise((resolve) => setTimeout(() => resolve(null), 5000));
    registration = await Promise.race([navigator.serviceWorker.ready, late]);
    if (registration) subscription = await registration.pushManager.getSubscription().catch(() => null);
  }
  const show = () => {
    const shown = pushButton({ supported: supported && !!registration, permission: supported ? Notification.permission : 'default', subscribed: !!subscription });
    button.textContent = shown.label;
    button.disabled = !shown.enabled;
    document.body.dataset.push = shown.state;
  };
  show();
  button.hidden = false;
  button.addEventListener('click', async () => {
    button.disabled = true;
    try {
      if (subscription) {
        await fetch('/api/push', { method: 'DELETE', body: JSON.stringify({ endpoint: subscription.endpoint }) });
        await subscription.unsubscribe();
        subscription = null;
      } else if ((await Notification.requestPermission()) === 'granted') {
        const key = await fetch('/api/push').then((r) => (r.ok ? r.json() : Promise.reject(new Error(`the server answered ${r.status}`))));
        const made = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(key.public_key) });
        const kept = await fetch('/api/push', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify(made.toJSON()),
        });
        if (!kept.ok) {
          const why = await kept.json().catch(() => null);
          await made.unsubscribe();
          throw new Error(why && why.error ? why.error : `the server answered ${kept.status}`);
        }
        subscription = made;
      }
    } catch (err) {
      $('detail').textContent = `Notifications could not be turned on: ${err.message}`;
    }
    show();
  });
}

// A button that answers the bell ringing in `room` with `reply`; `ends()`: whether the ring
// then stops; `played()` runs once the doorbell has it.
function replyButton(room, reply, ends, played) {
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'btn btn-small';
  button.dataset.replyId = String(reply.id);
  button.textContent = `Reply: ${reply.name}`;
  button.addEventListener('click', async () => {
    button.disabled = true;
    const why = await replies.sendReply(room, reply.id, ends());
    $('detail').textContent = why ? `Reply not played: ${why}` : `"${reply.name}" is playing at the door.`;
    button.disabled = false;
    if (!why) played();
  });
  return button;
}

// On a ringing call page of a paired device: the quick replies, to answer without a call.
// `stillRinging()`: whether the page still rings when the list arrives.
export async function offerReplies(room, stillRinging) {
  // Asked of /api/me first: an unpaired page gets no 401 in its console.
  const me = await fetch('/api/me').then((r) => (r.ok ? r.json() : null), () => null);
  if (!me || !me.paired) return;
  const list = await fetch('/api/replies').then((r) => (r.ok ? r.json() : []), () => []);
  const row = $('call-replies');
  if (!Array.isArray(list) || list.length === 0 || !stillRinging()) return;
  row.replaceChildren(
    ...list.map((reply) => replyButton(room, reply, () => true, () => (row.hidden = true)))
  );
  row.hidden = false;
}

// The call page left its ringing phase: no more replies.
export function withdrawReplies() {
  $('call-replies').hidden = true;
}
