// The installed web app's service worker. It caches nothing: every page and answer of the
// server is `no-store` (a call link holds a secret room id), and an offline doorbell page has
// nothing to show. Its job is to make the page installable (home screen on Android and iOS
// 16.4+); Web Push will be received here.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
