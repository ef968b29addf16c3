// Quick replies, the owner app's I/O: record a short answer in the page (the microphone,
// MediaRecorder), convert it once to the WAV the doorbell's speaker plays as is (decoded and
// resampled to 48 kHz mono by the browser's own audio engine), keep it on the server, list and
// delete them, and send one to a ringing bell. Decisions and the WAV itself: owner_state.js.

import { wavBytes, MAX_REPLY_S } from './owner_state.js';

const $ = (id) => document.getElementById(id);
let replies = [];
const listeners = [];

// The replies now, and a way to hear when they change (the history's buttons follow them).
export const current = () => replies;
export const onChange = (f) => listeners.push(f);

async function load() {
  replies = await fetch('/api/replies').then((r) => (r.ok ? r.json() : []), () => []);
  render();
  for (const f of listeners) f(replies);
}

function render() {
  $('reply-list').replaceChildren(
    ...replies.map((reply) => {
      const item = document.createElement('li');
      item.className = 'reply';
      item.dataset.id = String(reply.id);
      const label = document.createElement('span');
      label.textContent = `${reply.name} (${reply.duration_s} s)`;
      const listen = document.createElement('audio');
      listen.controls = true;
      listen.preload = 'none';
      listen.src = `/api/replies/${reply.id}/audio`;
      const remove = document.createElement('button');
      remove.type = 'button';
      remove.className = 'btn btn-small';
      remove.textContent = 'Delete';
      remove.addEventListener('click', async () => {
        await fetch(`/api/replies/${reply.id}`, { method: 'DELETE' }).catch(() => null);
        load();
      });
      item.append(label, listen, remove);
      return item;
    })
  );
  document.body.dataset.replies = String(replies.length);
}

// The recording as 48 kHz mono float samples.
async function toSamples(blob) {
  const decoded = await new AudioContext().decodeAudioData(await blob.arrayBuffer());
  const length = Math.ceil(Math.min(decoded.duration, MAX_REPLY_S) * 48000);
  const offline = new OfflineAudioContext(1, Math.max(length, 1), 48000);
  const source = offline.createBufferSource();
  source.buffer = decoded;
  source.connect(offline.destination);
  source.start();
  return (await offline.startRendering()).getChannelData(0);
}

function say(text) {
  $('reply-status').textContent = text;
}

export function startReplies() {
  $('quick-replies').hidden = false;
  const button = $('reply-record');
  let recorder = null;
  let stopTimer = null;
  button.addEventListener('click', async () => {
    if (recorder) {
      recorder.stop();
      return;
    }
    const name = $('reply-name').value.trim();
    if (!name) {
      say('Give the reply a name first.');
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      say(`No microphone: ${err.message}`);
      return;
    }
    const chunks = [];
    recorder = new MediaRecorder(stream);
    recorder.addEventListener('dataavailable', (e) => chunks.push(e.data));
    recorder.addEventListener('stop', async () => {
      clearTimeout(stopTimer);
      for (const track of stream.getTracks()) track.stop();
      recorder = null;
      button.textContent = 'Record a reply';
      say('Saving…');
      try {
        const samples = await toSamples(new Blob(chunks, { type: chunks[0] ? chunks[0].type : '' }));
        const kept = await fetch(`/api/replies?name=${encodeURIComponent(name)}`, {
          method: 'POST',
          headers: { 'Content-Type': 'audio/wav' },
          body: wavBytes(samples, 48000),
        });
        const answer = await kept.json().catch(() => null);
        say(kept.ok ? `Saved "${answer.name}".` : `Not saved: ${answer && answer.error ? answer.error : kept.status}`);
        if (kept.ok) $('reply-name').value = '';
      } catch (err) {
        say(`Not saved: ${err.message}`);
      }
      load();
    });
    recorder.start();
    button.textContent = `Stop (at most ${MAX_REPLY_S} s)`;
    say('Recording…');
    stopTimer = setTimeout(() => recorder && recorder.stop(), MAX_REPLY_S * 1000);
  });
  load();
}

// Sends reply `id` to the bell ringing in `room`; `end`: it stops ringing.
export async function sendReply(room, id, end) {
  const answer = await fetch(`/api/rooms/${encodeURIComponent(room)}/reply`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ id, end }),
  }).catch(() => null);
  if (!answer) return 'The server cannot be reached.';
  if (answer.ok) return null;
  const why = await answer.json().catch(() => null);
  return why && why.error ? why.error : `The server answered ${answer.status}.`;
}
