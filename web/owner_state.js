// The owner app's decisions, pure: the history list as ring updates arrive, what the home
// view shows, and the pairing page's answers. Tested by tests/e2e/owner_state.test.mjs.

// The history after `update` (an entry from GET /api/rings or a `ring_update`): the entry
// replaced or added, newest first, at most `limit` kept.
export function withEntry(entries, update, limit = 100) {
  const rest = entries.filter((e) => e.id !== update.id);
  return [update, ...rest].sort((a, b) => b.id - a.id).slice(0, limit);
}

const OUTCOMES = { ringing: 'Ringing now', answered: 'Answered', missed: 'Missed' };

// One history line as shown: its label, details and what tapping it does.
export function describe(entry, now = Date.now()) {
  const at = new Date(entry.at);
  let label = OUTCOMES[entry.outcome] || entry.outcome;
  if (entry.outcome === 'answered' && entry.answered_by) label = `Answered by ${entry.answered_by}`;
  if (entry.outcome === 'answered' && !entry.answered_by) label = 'Answered from a link';
  const details = [ago(at.getTime(), now)];
  if (entry.duration_s != null) details.push(duration(entry.duration_s));
  if (typeof entry.replied === 'string') details.push(`Replied: ${entry.replied}`);
  return {
    id: entry.id,
    label,
    details: details.join(' · '),
    thumbnail: entry.snapshot || null,
    // A ringing bell is answered by tapping it: the call page of its room.
    href: entry.outcome === 'ringing' ? `/?room=${encodeURIComponent(entry.room)}` : null,
    ringing: entry.outcome === 'ringing',
    // The visitor's video message, played in the list.
    message:
      typeof entry.message === 'string' && entry.message.startsWith('/api/')
        ? { url: entry.message, label: entry.message_s ? `Video message (${entry.message_s} s)` : 'Video message' }
        : null,
  };
}

function ago(then, now) {
  const s = Math.max(0, Math.round((now - then) / 1000));
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(then).toLocaleString();
}

function duration(seconds) {
  return seconds < 60 ? `${seconds} s` : `${Math.floor(seconds / 60)} min ${seconds % 60} s`;
}

// The pairing page's answer to POST /api/pair, as text for the owner.
export function pairingOutcome(status, body) {
  if (status === 200) return { paired: true, text: `This device is paired as ${body.name}.` };
  const why = body && body.error ? body.error : `The server answered ${status}.`;
  return { paired: false, text: why };
}

// A ring update that tells a ringing call page someone else answered: the name, else null.
export function answeredElsewhere(update, room) {
  if (!update || update.room !== room || update.outcome !== 'answered') return null;
  return update.answered_by || 'another owner';
}

// How long after a live view ended the home view still opens a ring on its own: the ring
// that made the live view end arrives within a second or two.
export const HANDOVER_MS = 10000;

// The room to open at once when a live view was handed over to a ring: the newest entry if
// it rings and the hand-over is still fresh; else null.
export function handoverRoom(entries, handoverUntil, now = Date.now()) {
  if (!handoverUntil || now > handoverUntil || entries.length === 0) return null;
  const newest = entries[0];
  return newest.outcome === 'ringing' ? newest.room : null;
}

// The answer to POST /api/live, as where to go or what to say.
export function liveOutcome(status, body) {
  if (status === 200 && body && typeof body.room === 'string') {
    return { href: `/?room=${encodeURIComponent(body.room)}&live=1` };
  }
  const why = body && body.error ? body.error : `The server answered ${status}.`;
  return { error: `No live view: ${why}` };
}

// The VAPID key as the Push API takes it (`applicationServerKey`): base64url → bytes.
export function keyBytes(base64url) {
  const base64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const padded = base64 + '='.repeat((4 - (base64.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

// What the "Notify this device" button says and does, from what the browser can do and
// whether this device is subscribed.
export function pushButton({ supported, permission, subscribed }) {
  if (!supported) return { label: 'No notifications in this browser', enabled: false, state: 'unsupported' };
  if (permission === 'denied') return { label: 'Notifications are blocked for this site', enabled: false, state: 'blocked' };
  if (subscribed) return { label: 'Notifications on (tap to stop)', enabled: true, state: 'on' };
  return { label: 'Notify this device', enabled: true, state: 'off' };
}

// The longest quick reply, in seconds (the server keeps at most 10.5 s).
export const MAX_REPLY_S = 10;

// A 16-bit mono PCM WAV of `samples` (floats in [-1, 1]) at `rate`: what the doorbell's
// speaker plays as is, so it needs no decoder.
export function wavBytes(samples, rate) {
  const data = samples.length * 2;
  const out = new DataView(new ArrayBuffer(44 + data));
  const text = (at, s) => [...s].forEach((c, i) => out.setUint8(at + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  out.setUint32(4, 36 + data, true);
  text(8, 'WAVEfmt ');
  out.setUint32(16, 16, true);
  out.setUint16(20, 1, true); // PCM
  out.setUint16(22, 1, true); // mono
  out.setUint32(24, rate, true);
  out.setUint32(28, rate * 2, true);
  out.setUint16(32, 2, true);
  out.setUint16(34, 16, true);
  text(36, 'data');
  out.setUint32(40, data, true);
  for (let i = 0; i < samples.length; i++) {
    const v = Math.max(-1, Math.min(1, samples[i]));
    out.setInt16(44 + i * 2, Math.round(v < 0 ? v * 0x8000 : v * 0x7fff), true);
  }
  return new Uint8Array(out.buffer);
}

// What a history line says of the reply that answered it.
export function repliedLabel(entry) {
  return entry && typeof entry.replied === 'string' ? `Replied: ${entry.replied}` : null;
}
