// The owner's call page. It speaks only the signaling protocol of DESIGN.md §3 (join, joined,
// full, invite, ok, ice_candidate, bye, error), so it works against our `doorbell server` and
// against the lab's Flask-SocketIO server alike. No inline script or style: the server's CSP
// forbids both, so every visual change goes through classes, `hidden` and data attributes.
'use strict';

(function () {
  // Room names the server accepts (crates/protocol: MAX_ROOM_NAME_CHARS, URL-safe alphabet).
  var ROOM_NAME = /^[A-Za-z0-9_-]{1,64}$/;
  // ICE "disconnected" often heals by itself (a Wi-Fi hand-over); only call it lost after this.
  var ICE_DISCONNECTED_GRACE_MS = 4000;
  // How long to wait for the server to answer our `join` before calling the connection lost.
  var JOIN_TIMEOUT_MS = 15000;
  // Lets the `bye` packet leave before the socket closes (the server reads a close as a `bye`
  // anyway, but an explicit one is faster and works with servers that treat it differently).
  var BYE_FLUSH_MS = 300;
  // How long to wait after `joined` for `ice_servers` (our server sends it at once; the lab's
  // never does).
  var ICE_SERVERS_WAIT_MS = 300;

  var el = {
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

  // Which buttons each state offers. Every state not listed offers none.
  var BUTTONS = {
    ringing: ['answer'],
    connecting: ['hangup'],
    'in-call': ['mute', 'hangup'],
    lost: ['retry'],
    error: ['retry'],
  };
  // States after which nothing more happens on this call.
  var FINAL = ['ended-remote', 'ended-local', 'full', 'no-such-room', 'lost', 'error'];

  var room = roomFromUrl();
  // Everything that belongs to one attempt at a call; replaced on Retry.
  var call = null;

  var api = {
    pc: null,
    state: 'loading',
    room: room ? room.slice(0, 4) : null,
    micAvailable: null,
    firstFrameAt: null, // performance.now() of the first decoded remote frame
    answeredAt: null, // performance.now() of the Answer tap
    // performance.now() of each step of the latest call, for benchmarks (BENCHMARKS.md "Call").
    marks: {},
    stats: stats,
  };
  window.doorbell = api;

  function mark(name) {
    api.marks[name] = performance.now();
  }

  function roomFromUrl() {
    var value = new URLSearchParams(window.location.search).get('room');
    return value && ROOM_NAME.test(value) ? value : null;
  }

  function setState(state, status, detail) {
    api.state = state;
    el.body.setAttribute('data-state', state);
    el.status.textContent = status;
    el.detail.textContent = detail || '';
    var shown = BUTTONS[state] || [];
    ['answer', 'mute', 'hangup', 'retry'].forEach(function (name) {
      el[name].hidden = shown.indexOf(name) < 0;
    });
    if (call && call.micTrack === null) el.mute.hidden = true;
  }

  function showNote(text) {
    el.note.textContent = text;
    el.note.hidden = !text;
  }

  function isFinal() {
    return FINAL.indexOf(api.state) >= 0;
  }

  // --- the call -----------------------------------------------------------------------------

  function answer() {
    api.answeredAt = performance.now();
    api.marks = { ringing: api.marks.ringing, answer: api.answeredAt };
    // Start playback inside the tap: iOS Safari and Chrome only allow sound from a user gesture,
    // and the element keeps that permission for the stream attached to it later.
    el.remote.muted = false;
    var unlock = el.remote.play();
    if (unlock && unlock.catch) unlock.catch(function () {});

    call = {
      socket: null,
      pc: null,
      micStream: null,
      micTrack: undefined, // undefined: not asked yet; null: refused or unavailable
      audioSender: null, // the audio transceiver's sender, once the offer is being made
      remoteDescriptionSet: false,
      offerSent: false,
      pendingRemoteCandidates: [],
      pendingLocalCandidates: [],
      iceTimer: null,
      joinTimer: null,
      iceConfig: null, // RTCConfiguration from the server's `ice_servers`
      iceServersTimer: null,
      startWhenIceKnown: null,
    };
    var thisCall = call;
    showNote('');
    setState('connecting', 'Connecting…', 'Asking for your microphone');
    // The call does not wait for the microphone: the offer carries an audio sender with no
    // track, and the microphone is put on it when (if) it is granted. The owner sees the
    // visitor while the permission prompt is still open, and a slow tap on it cannot run out
    // the doorbell's wait for our offer. (Waiting for it cost 100–230 ms with Chromium's
    // fake devices, measured, and seconds with a person at the prompt.)
    openMicrophone(thisCall);
    connectSignaling(thisCall);
  }

  function openMicrophone(thisCall) {
    var devices = navigator.mediaDevices;
    if (!devices || !devices.getUserMedia) {
      // Plain http on a non-local host has no getUserMedia at all.
      micRefused(thisCall, 'This page has no microphone access here (it needs https).');
      return Promise.resolve();
    }
    var constraints = {
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
      video: false,
    };
    return devices.getUserMedia(constraints).then(
      function (stream) {
        if (call !== thisCall) {
          stopStream(stream);
          return;
        }
        mark('microphone');
        thisCall.micStream = stream;
        thisCall.micTrack = stream.getAudioTracks()[0] || null;
        api.micAvailable = !!thisCall.micTrack;
        if (!thisCall.micTrack) {
          micRefused(thisCall, 'No microphone was found.');
          return;
        }
        attachMicrophone(thisCall);
      },
      function (err) {
        var why =
          err && err.name === 'NotAllowedError'
            ? 'The microphone was not allowed.'
            : 'The microphone could not be opened.';
        micRefused(thisCall, why);
      }
    );
  }

  // Puts the microphone on the call's audio sender once both exist (whichever comes last).
  function attachMicrophone(thisCall) {
    if (!thisCall.audioSender || !thisCall.micTrack) return;
    var track = thisCall.micTrack;
    thisCall.audioSender.replaceTrack(track).then(
      function () {
        if (call === thisCall && api.state === 'in-call') {
          el.detail.textContent = 'You are talking to the visitor.';
        }
      },
      function (err) {
        if (call === thisCall) micRefused(thisCall, 'The microphone could not be used: ' + describe(err) + '.');
      }
    );
  }

  function micRefused(thisCall, why) {
    thisCall.micTrack = null;
    api.micAvailable = false;
    showNote(why + ' You can see and hear the visitor, but they cannot hear you.');
    el.mute.hidden = true;
  }

  function openSocket() {
    // Same origin, default path /socket.io/. No automatic reconnection: the server treats a
    // dropped connection as a hang-up, so a silent reconnect could not resume the call anyway;
    // the owner gets a Retry button instead.
    // WebSocket first (one round trip less than polling then upgrading); long-polling if a
    // proxy refuses WebSockets.
    return window.io({
      path: '/socket.io/',
      transports: ['websocket', 'polling'],
      tryAllTransports: true,
      reconnection: false,
      forceNew: true,
      timeout: 10000,
    });
  }

  // A connection opened while the page rings, so the Answer tap does not wait for the TLS,
  // Engine.IO and Socket.IO handshakes (20–35 ms on loopback, measured; more on a phone
  // network). It only connects: the doorbell sees nothing until the tap joins the room. Used
  // by the first answer; a Retry connects afresh.
  var warm = null;

  function warmUp() {
    if (typeof window.io !== 'function') return;
    var w = { socket: openSocket(), usable: true, connectedAt: null };
    w.socket.on('connect', function () {
      w.connectedAt = performance.now();
    });
    w.socket.on('connect_error', function () {
      w.usable = false;
    });
    w.socket.on('disconnect', function () {
      w.usable = false;
    });
    warm = w;
  }

  function connectSignaling(thisCall) {
    if (typeof window.io !== 'function') {
      setState('error', 'Something went wrong', 'The page did not load completely. Reload it.');
      return;
    }
    var socket;
    var warmConnectedAt = null;
    if (warm && warm.usable) {
      socket = warm.socket;
      warmConnectedAt = warm.connectedAt;
    } else {
      if (warm) warm.socket.close();
      socket = openSocket();
    }
    warm = null;
    thisCall.socket = socket;

    function current() {
      return call === thisCall && !isFinal();
    }

    function onConnect() {
      // A warm connection counts from when it connected, before the tap.
      api.marks.connected = warmConnectedAt !== null ? warmConnectedAt : performance.now();
      join();
    }
    socket.on('connect', onConnect);
    function join() {
      if (!current() || !socket.connected) return;
      el.detail.textContent = 'Reaching the doorbell';
      socket.emit('join', room);
      thisCall.joinTimer = setTimeout(function () {
        if (current() && !thisCall.pc) lost('The doorbell server did not answer.');
      }, JOIN_TIMEOUT_MS);
    }
    socket.on('connect_error', function () {
      if (current()) lost('Could not reach the doorbell server.');
    });
    socket.on('disconnect', function () {
      if (!current()) return;
      // Media is peer to peer: once it flows, losing the server does not end the call. Hang up
      // then closes the connection, which the doorbell notices by itself.
      if (api.state === 'in-call' && thisCall.pc && thisCall.pc.connectionState === 'connected') {
        showNote('The doorbell server is unreachable; the call goes on directly.');
        return;
      }
      lost('The connection to the doorbell server dropped.');
    });

    // Our server follows `joined` with this call's STUN/TURN servers; a lab-style server sends
    // none, so wait for them only briefly.
    socket.on('ice_servers', function (payload) {
      if (!current() || thisCall.pc) return;
      thisCall.iceConfig = rtcConfiguration(payload);
      if (thisCall.startWhenIceKnown) thisCall.startWhenIceKnown();
    });
    socket.on('joined', function () {
      if (!current() || thisCall.pc || thisCall.startWhenIceKnown) return;
      mark('joined');
      clearTimeout(thisCall.joinTimer);
      thisCall.startWhenIceKnown = function () {
        if (!current() || thisCall.pc) return;
        clearTimeout(thisCall.iceServersTimer);
        startPeerConnection(thisCall).catch(function (err) {
          if (current()) fail('Could not start the call: ' + describe(err));
        });
      };
      if (thisCall.iceConfig) thisCall.startWhenIceKnown();
      else thisCall.iceServersTimer = setTimeout(thisCall.startWhenIceKnown, ICE_SERVERS_WAIT_MS);
    });
    socket.on('created', function () {
      // We are alone in the room: the doorbell has already left, so this link is over. Leave the
      // room again, or a lab-style server would keep it open with only us inside.
      if (!current()) return;
      socket.emit('bye', room);
      finish('no-such-room', 'This call has ended', 'The doorbell is no longer ringing.', { byeSent: true });
    });
    socket.on('full', function () {
      if (!current()) return;
      finish('full', 'Someone else already answered', 'Another person is talking to the visitor.');
    });
    socket.on('ok', function (answerDesc) {
      if (!current() || !thisCall.pc) return;
      mark('answer_received');
      if (!answerDesc || answerDesc.type !== 'answer' || typeof answerDesc.sdp !== 'string') {
        fail('The doorbell sent an answer this page cannot read.');
        return;
      }
      thisCall.pc
        .setRemoteDescription({ type: 'answer', sdp: answerDesc.sdp })
        .then(function () {
          thisCall.remoteDescriptionSet = true;
          var queued = thisCall.pendingRemoteCandidates;
          thisCall.pendingRemoteCandidates = [];
          queued.forEach(function (c) {
            addRemoteCandidate(thisCall, c);
          });
        })
        .catch(function (err) {
          if (current()) fail('The doorbell answer was refused: ' + describe(err));
        });
    });
    socket.on('ice_candidate', function (candidate) {
      if (!current()) return;
      if (thisCall.pc && thisCall.remoteDescriptionSet) addRemoteCandidate(thisCall, candidate);
      else thisCall.pendingRemoteCandidates.push(candidate);
    });
    socket.on('bye', function () {
      if (!current()) return;
      finish('ended-remote', "The visitor's side hung up", 'The call has ended.');
    });
    socket.on('error', function (payload) {
      if (!current()) return;
      var code = payload && typeof payload === 'object' ? payload.code : null;
      var message =
        payload && typeof payload === 'object'
          ? String(payload.message || payload.code || 'unknown error')
          : String(payload);
      if (code === 'no_such_room') {
        finish('no-such-room', 'This call has ended', 'The doorbell is no longer ringing.');
      } else if (!thisCall.pc) {
        // Refused before the call started: nothing will happen by waiting.
        finish('error', 'The call could not start', message);
      } else {
        // During a call a refused event (say one odd candidate) need not end it; say so.
        showNote('The server said: ' + message);
      }
    });
    // The warm connection may be up already: its 'connect' has been and gone. (Last, once
    // every handler is in place.)
    if (socket.connected) onConnect();
  }

  // The `ice_servers` payload as an RTCConfiguration; anything malformed is left out.
  function rtcConfiguration(payload) {
    var config = { iceServers: [] };
    if (!payload || typeof payload !== 'object') return config;
    if (Array.isArray(payload.iceServers)) {
      payload.iceServers.slice(0, 8).forEach(function (s) {
        if (!s || typeof s !== 'object') return;
        var urls = (Array.isArray(s.urls) ? s.urls : [s.urls]).filter(function (u) {
          return typeof u === 'string' && /^(stun|stuns|turn|turns):/.test(u);
        });
        if (urls.length === 0) return;
        var server = { urls: urls };
        if (typeof s.username === 'string') server.username = s.username;
        if (typeof s.credential === 'string') server.credential = s.credential;
        config.iceServers.push(server);
      });
    }
    if (payload.iceTransportPolicy === 'relay') config.iceTransportPolicy = 'relay';
    return config;
  }

  function startPeerConnection(thisCall) {
    var pc = new RTCPeerConnection(thisCall.iceConfig || { iceServers: [] });
    thisCall.pc = pc;
    api.pc = pc;

    pc.addTransceiver('video', { direction: 'recvonly' });
    // Always sendrecv, with or without a microphone yet: attachMicrophone puts the track on
    // this sender without a new negotiation, and listen-only looks the same to the doorbell.
    thisCall.audioSender = pc.addTransceiver('audio', { direction: 'sendrecv' }).sender;
    attachMicrophone(thisCall);

    pc.ontrack = function (event) {
      var stream = event.streams && event.streams[0];
      var shown = el.remote.srcObject;
      if (!shown) {
        el.remote.srcObject = stream || new MediaStream([event.track]);
      } else if (shown !== stream && shown.getTracks().indexOf(event.track) < 0) {
        // The doorbell is meant to send one stream; cope if it sends two.
        shown.addTrack(event.track);
      }
      var playing = el.remote.play();
      if (playing && playing.catch) playing.catch(function () {});
    };

    pc.onicecandidate = function (event) {
      var payload = event.candidate && event.candidate.candidate ? event.candidate.toJSON() : null;
      if (thisCall.offerSent) thisCall.socket.emit('ice_candidate', payload);
      else thisCall.pendingLocalCandidates.push(payload);
    };

    pc.onconnectionstatechange = function () {
      onTransportState(thisCall, pc.connectionState);
    };
    if (!('connectionState' in pc)) {
      pc.oniceconnectionstatechange = function () {
        var s = pc.iceConnectionState;
        onTransportState(thisCall, s === 'completed' ? 'connected' : s);
      };
    }

    return pc
      .createOffer()
      .then(function (offer) {
        return pc.setLocalDescription(offer);
      })
      .then(function () {
        if (call !== thisCall || isFinal()) return;
        thisCall.socket.emit('invite', { type: 'offer', sdp: pc.localDescription.sdp });
        mark('offer_sent');
        thisCall.offerSent = true;
        var queued = thisCall.pendingLocalCandidates;
        thisCall.pendingLocalCandidates = [];
        queued.forEach(function (c) {
          thisCall.socket.emit('ice_candidate', c);
        });
        el.detail.textContent = 'Waiting for the doorbell';
      });
  }

  function addRemoteCandidate(thisCall, candidate) {
    var end = !candidate || !candidate.candidate;
    // Old browsers throw on the end-of-candidates marker; it is only a hint, so ignore that.
    var added = end ? thisCall.pc.addIceCandidate() : thisCall.pc.addIceCandidate(candidate);
    added.catch(function (err) {
      if (!end) console.warn('doorbell: ignored a remote candidate:', describe(err));
    });
  }

  function onTransportState(thisCall, state) {
    if (call !== thisCall || isFinal()) return;
    if (state === 'connected') {
      if (api.marks.media_connected === undefined) mark('media_connected');
      clearTimeout(thisCall.iceTimer);
      thisCall.iceTimer = null;
      if (api.state !== 'in-call') {
        var detail = thisCall.micTrack
          ? 'You are talking to the visitor.'
          : thisCall.micTrack === undefined
            ? 'Waiting for your microphone.'
            : 'Listening only.';
        setState('in-call', 'In call', detail);
      }
    } else if (state === 'disconnected') {
      if (!thisCall.iceTimer) {
        el.detail.textContent = 'Connection is unstable…';
        thisCall.iceTimer = setTimeout(function () {
          lost('The video connection dropped.');
        }, ICE_DISCONNECTED_GRACE_MS);
      }
    } else if (state === 'failed') {
      lost('The video connection failed.');
    }
  }

  // --- ending -------------------------------------------------------------------------------

  function hangUp() {
    if (!call || isFinal()) return;
    if (call.socket && call.socket.connected) call.socket.emit('bye', room);
    finish('ended-local', 'Call ended', 'You hung up.', { byeSent: true });
  }

  function lost(why) {
    finish('lost', 'Connection lost', why);
  }

  function fail(why) {
    finish('error', 'Something went wrong', why);
  }

  function finish(state, status, detail, how) {
    setState(state, status, detail);
    teardown(call, how && how.byeSent);
  }

  // `byeSent`: a `bye` was just emitted; give it a moment to leave before closing the socket.
  // Otherwise close at once: a Retry must not find our old connection still in the room, or
  // the server would count it and answer `full`.
  function teardown(thisCall, byeSent) {
    if (!thisCall) return;
    clearTimeout(thisCall.iceTimer);
    clearTimeout(thisCall.joinTimer);
    if (thisCall.pc) {
      thisCall.pc.ontrack = null;
      thisCall.pc.onicecandidate = null;
      thisCall.pc.onconnectionstatechange = null;
      thisCall.pc.oniceconnectionstatechange = null;
      thisCall.pc.close();
    }
    stopStream(thisCall.micStream);
    var socket = thisCall.socket;
    if (socket && byeSent) setTimeout(function () { socket.disconnect(); }, BYE_FLUSH_MS);
    else if (socket) socket.disconnect();
    el.remote.pause();
    el.remote.srcObject = null;
  }

  function stopStream(stream) {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
  }

  function toggleMute() {
    if (!call || !call.micTrack) return;
    var track = call.micTrack;
    track.enabled = !track.enabled;
    el.mute.textContent = track.enabled ? 'Mute' : 'Unmute';
    el.mute.setAttribute('aria-pressed', track.enabled ? 'false' : 'true');
    el.body.classList.toggle('muted', !track.enabled);
  }

  function retry() {
    if (!isFinal()) return;
    teardown(call);
    call = null;
    api.pc = null;
    el.mute.textContent = 'Mute';
    el.mute.setAttribute('aria-pressed', 'false');
    el.body.classList.remove('muted');
    answer();
  }

  // --- for tests (harmless in production) ---------------------------------------------------

  // A summary of the call's inbound media from getStats(), for the e2e driver and for debugging.
  function stats() {
    var pc = api.pc;
    if (!pc) return Promise.resolve(null);
    return pc.getStats().then(function (report) {
      var out = {
        connectionState: pc.connectionState,
        iceConnectionState: pc.iceConnectionState,
        video: null,
        audio: null,
        outboundAudio: null,
      };
      report.forEach(function (s) {
        if (s.type === 'inbound-rtp' && s.kind === 'video') {
          out.video = {
            framesDecoded: s.framesDecoded || 0,
            framesPerSecond: s.framesPerSecond || 0,
            frameWidth: s.frameWidth || 0,
            frameHeight: s.frameHeight || 0,
            bytesReceived: s.bytesReceived || 0,
            packetsLost: s.packetsLost || 0,
            pliCount: s.pliCount || 0,
          };
        } else if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          out.audio = {
            packetsReceived: s.packetsReceived || 0,
            bytesReceived: s.bytesReceived || 0,
            totalAudioEnergy: s.totalAudioEnergy || 0,
          };
        } else if (s.type === 'outbound-rtp' && s.kind === 'audio') {
          out.outboundAudio = { packetsSent: s.packetsSent || 0, bytesSent: s.bytesSent || 0 };
        }
      });
      return out;
    });
  }

  function watchFirstFrame() {
    var video = el.remote;
    function seen() {
      if (api.firstFrameAt === null) {
        api.firstFrameAt = performance.now();
        mark('first_frame');
      }
    }
    if (typeof video.requestVideoFrameCallback === 'function') {
      // Re-armed on every new stream: srcObject changes on Retry.
      video.addEventListener('loadstart', function () {
        video.requestVideoFrameCallback(seen);
      });
      video.requestVideoFrameCallback(seen);
    } else {
      video.addEventListener('loadeddata', seen);
    }
  }

  // --- start ------------------------------------------------------------------------------

  el.answer.addEventListener('click', answer);
  el.hangup.addEventListener('click', hangUp);
  el.mute.addEventListener('click', toggleMute);
  el.retry.addEventListener('click', retry);
  watchFirstFrame();

  function describe(err) {
    return err && err.message ? err.message : String(err);
  }

  if (!room) {
    setState('no-room', 'Open the link from your doorbell message', 'This page needs the link that came with the ring.');
  } else if (typeof RTCPeerConnection !== 'function') {
    setState('error', 'This browser cannot make calls', 'Open the link in a current Chrome, Firefox or Safari.');
  } else {
    setState('ringing', 'Someone is at the door', 'Tap Answer to see and talk to them.');
    mark('ringing');
    warmUp();
  }
})();
