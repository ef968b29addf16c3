#!/usr/bin/env node
// A push service stand-in for end-to-end tests: the two sides of Mozilla's push service on
// one loopback port, enough for a real Firefox (dom.push.serverURL) to subscribe and receive.
//   - the browser side: Firefox's WebSocket protocol (subprotocol "push-notification":
//     hello, register, unregister, notification, ack, ping);
//   - the application-server side: RFC 8030 — POST /push/CHANNEL with the encrypted body,
//     forwarded to the browser as a `notification`; 201 when handed on, 410 for a channel
//     that is unknown or was dropped (DELETE /push/CHANNEL, as a push service does when a
//     subscription expires).
// One JSON line per event on stdout: listening {port}, hello, register {channel}, push
// {channel, status, encoding, vapid}, ack, unregister {channel}.
'use strict';

const http = require('http');
const crypto = require('crypto');
const { WebSocketServer } = require('ws');

const emit = (event) => process.stdout.write(JSON.stringify(event) + '\n');
const channels = new Map(); // channelID → the browser's socket
let port = 0;

const server = http.createServer((req, res) => {
  const match = /^\/push\/([A-Za-z0-9-]+)$/.exec(req.url || '');
  if (!match) {
    res.writeHead(404).end();
    return;
  }
  const channel = match[1];
  if (req.method === 'DELETE') {
    channels.delete(channel);
    emit({ event: 'dropped', channel });
    res.writeHead(204).end();
    return;
  }
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const socket = channels.get(channel);
    const status = socket && socket.readyState === 1 ? 201 : 410;
    emit({
      event: 'push',
      channel,
      status,
      encoding: req.headers['content-encoding'] || null,
      vapid: /^vapid t=[^,]+, k=/.test(req.headers.authorization || ''),
      ttl: req.headers.ttl || null,
      urgency: req.headers.urgency || null,
      bytes: Buffer.concat(chunks).length,
    });
    if (status === 201) {
      socket.send(
        JSON.stringify({
          messageType: 'notification',
          channelID: channel,
          version: crypto.randomUUID(),
          data: Buffer.concat(chunks).toString('base64url'),
          headers: { encoding: req.headers['content-encoding'] },
        })
      );
    }
    res.writeHead(status).end();
  });
});

const wss = new WebSocketServer({
  server,
  handleProtocols: (protocols) => (protocols.has('push-notification') ? 'push-notification' : false),
});
wss.on('connection', (socket) => {
  socket.on('message', (raw) => {
    let m;
    try {
      m = JSON.parse(String(raw));
    } catch (err) {
      return;
    }
    switch (m.messageType) {
      case 'hello':
        emit({ event: 'hello' });
        socket.send(
          JSON.stringify({
            messageType: 'hello',
            status: 200,
            uaid: m.uaid || crypto.randomUUID().replace(/-/g, ''),
            use_webpush: true,
          })
        );
        // Channels this browser registered before a reconnect are its again.
        for (const [id, s] of channels) if (s.readyState !== 1) channels.set(id, socket);
        break;
      case 'register':
        channels.set(m.channelID, socket);
        emit({ event: 'register', channel: m.channelID });
        socket.send(
          JSON.stringify({
            messageType: 'register',
            channelID: m.channelID,
            status: 200,
            pushEndpoint: `http://127.0.0.1:${port}/push/${m.channelID}`,
          })
        );
        break;
      case 'unregister':
        channels.delete(m.channelID);
        emit({ event: 'unregister', channel: m.channelID });
        socket.send(JSON.stringify({ messageType: 'unregister', channelID: m.channelID, status: 200 }));
        break;
      case 'ack':
        emit({ event: 'ack', updates: (m.updates || []).map((u) => u.code) });
        break;
      default:
        // A ping is an empty object; answer in kind.
        socket.send('{}');
    }
  });
});

server.listen(0, '127.0.0.1', () => {
  port = server.address().port;
  emit({ event: 'listening', port });
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
