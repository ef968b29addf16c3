// The installed web app's service worker. It caches nothing: every page and answer of the
// server is `no-store` (a call link holds a secret room id), and an offline doorbell page has
// nothing to show. Its jobs: make the page installable (home screen on Android and iOS 16.4+)
// and show the rings that arrive by Web Push (the server's payload: crates/notify/src/
// web_push.rs `payload`). A classic script, not a module: not every browser still in use runs
// module service workers.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

self.addEventListener('push', (event) => {
  event.waitUntil(showRing(event.data));
});

// A push must show a notification (the browsers' rule for userVisibleOnly), even one we cannot
// read: then a plain "Someone is at the door".
async function showRing(data) {
  let ring = {};
  try {
    ring = data ? data.json() : {};
  } catch (err) {
    ring = {};
  }
  const url = typeof ring.url === 'string' && ring.url.startsWith('/') ? ring.url : '/';
  const photo = typeof ring.snapshot === 'string' && ring.snapshot.startsWith('/api/') ? await asDataUrl(ring.snapshot) : null;
  await self.registration.showNotification(ring.title || 'Someone is at the door', {
    body: ring.body || 'Tap to answer.',
    // One notification per ring; a repeat replaces it and rings again.
    tag: typeof ring.room === 'string' ? ring.room : 'ring',
    renotify: true,
    requireInteraction: true,
    icon: photo || '/icon-192.png',
    image: photo || undefined,
    data: { url },
    actions: [{ action: 'answer', title: 'Answer' }],
  });
}

// The visitor's photo as a data: URL: the worker fetches it with the device's cookie (the
// notification itself could not), and a service worker has no blob URLs.
async function asDataUrl(path) {
  try {
    const answer = await fetch(path, { credentials: 'same-origin' });
    if (!answer.ok) return null;
    const bytes = new Uint8Array(await answer.arrayBuffer());
    let binary = '';
    for (let i = 0; i < bytes.length; i += 0x8000) {
      binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
    }
    return `data:${answer.headers.get('content-type') || 'image/jpeg'};base64,${btoa(binary)}`;
  } catch (err) {
    return null;
  }
}

// "Answer" and a tap on the notification both open the ring's call page (a window already on
// it is focused instead).
self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const url = new URL((event.notification.data && event.notification.data.url) || '/', self.location.origin).href;
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const open = windows.find((w) => w.url === url);
      return open ? open.focus() : self.clients.openWindow(url);
    })
  );
});
