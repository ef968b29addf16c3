// The page's DOM: shows a view of the call state and reports taps. No inline script or style:
// the server's CSP forbids both, so every visual change goes through text, classes, `hidden`
// and data attributes.

const el = {
  body: document.body,
  status: document.getElementById('status'),
  detail: document.getElementById('detail'),
  note: document.getElementById('note'),
  remote: document.getElementById('remote'),
  answer: document.getElementById('answer'),
  mute: document.getElementById('mute'),
  hangup: document.getElementById('hangup'),
  retry: document.getElementById('retry'),
};

const BUTTON_IDS = ['answer', 'mute', 'hangup', 'retry'];

export function render(view) {
  el.body.setAttribute('data-state', view.dataState);
  el.status.textContent = view.status;
  el.detail.textContent = view.detail;
  el.note.textContent = view.note;
  el.note.hidden = !view.note;
  for (const name of BUTTON_IDS) el[name].hidden = !view.buttons.includes(name);
  el.mute.textContent = view.muteLabel;
  el.mute.setAttribute('aria-pressed', view.muted ? 'true' : 'false');
  el.body.classList.toggle('muted', view.muted);
}

// `on(name)` is called for each tap: answer, mute, hangup, retry.
export function bind(on) {
  for (const name of BUTTON_IDS) el[name].addEventListener('click', () => on(name));
}

// Start playback inside the tap: iOS Safari and Chrome only allow sound from a user gesture,
// and the element keeps that permission for the stream attached to it later.
export function unlockAudio() {
  el.remote.muted = false;
  play();
}

function play() {
  const playing = el.remote.play();
  if (playing && playing.catch) playing.catch(() => {});
}

// Shows the doorbell's stream (it is meant to send one; cope if it sends two).
export function showStream(stream, track) {
  const shown = el.remote.srcObject;
  if (!shown) {
    el.remote.srcObject = stream || new MediaStream([track]);
  } else if (shown !== stream && !shown.getTracks().includes(track)) {
    shown.addTrack(track);
  }
  play();
}

export function clearVideo() {
  el.remote.pause();
  el.remote.srcObject = null;
}

// Marks the first decoded frame of every stream shown (re-armed on Retry).
export function watchFirstFrame() {
  const video = el.remote;
  const seen = () => {
    if (performance.getEntriesByName('doorbell:first_frame').length === 0) {
      performance.mark('doorbell:first_frame');
    }
  };
  if (typeof video.requestVideoFrameCallback === 'function') {
    video.addEventListener('loadstart', () => video.requestVideoFrameCallback(seen));
    video.requestVideoFrameCallback(seen);
  } else {
    video.addEventListener('loadeddata', seen);
  }
}
