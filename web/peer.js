// The page's side of the WebRTC call: one RTCPeerConnection that receives the doorbell's video
// and audio and sends the owner's microphone. It reports what happens as page events through
// `emit` and sends signaling through `send`; candidate ordering (ours wait for the offer to
// leave, the doorbell's for its answer to be applied) is kept here.

function describe(err) {
  return err && err.message ? err.message : String(err);
}

// Starts the call: builds the connection from the server's ICE servers, makes the offer and
// sends it as `invite`. `onStream` gets the doorbell's media stream.
export function startPeer({ iceConfig, send, emit, onStream }) {
  const peer = preparePeer({ iceConfig, onStream });
  peer.configure(null);
  return peer.start({ send, emit });
}

// Builds the connection and creates its offer without sending anything, so a ringing page has
// both before the tap. `configure(iceConfig)` gives the ICE servers once known (`null`: keep
// those it was built with) and sets the offer, which starts ICE gathering: the offer's SDP
// does not depend on the servers, the gathering does. `start({send, emit})` sends the offer
// (once set) and returns the call's controls; `close()` drops a peer never used.
export function preparePeer({ iceConfig, onStream }) {
  const pc = new RTCPeerConnection(iceConfig || { iceServers: [] });
  let link = null; // { send, emit } from start() on
  let offerReady = false;
  let offerSent = false;
  let failure = null;
  let remoteSet = false;
  const localQueue = [];
  const remoteQueue = [];
  const emit = (event) => link && link.emit(event);

  pc.addTransceiver('video', { direction: 'recvonly' });
  // Always sendrecv, with or without a microphone yet: the microphone is put on this sender
  // without a new negotiation, and listen-only looks the same to the doorbell.
  const audioSender = pc.addTransceiver('audio', { direction: 'sendrecv' }).sender;
  const created = pc.createOffer();

  pc.ontrack = (event) => onStream(event.streams && event.streams[0], event.track);
  pc.onicecandidate = (event) => {
    const payload = event.candidate && event.candidate.candidate ? event.candidate.toJSON() : null;
    if (offerSent) link.send('ice_candidate', payload);
    else localQueue.push(payload);
  };
  pc.onconnectionstatechange = () => emit({ type: 'transport', state: pc.connectionState });
  const stallWatch = watchForStalls(pc, emit);
  if (!('connectionState' in pc)) {
    pc.oniceconnectionstatechange = () => {
      const s = pc.iceConnectionState;
      emit({ type: 'transport', state: s === 'completed' ? 'connected' : s });
    };
  }

  function addCandidate(candidate) {
    const end = !candidate || !candidate.candidate;
    // Old browsers throw on the end-of-candidates marker; it is only a hint, so ignore that.
    const added = end ? pc.addIceCandidate() : pc.addIceCandidate(candidate);
    added.catch((err) => {
      if (!end) console.warn('doorbell: ignored a remote candidate:', describe(err));
    });
  }

  function sendOffer() {
    if (pc.signalingState === 'closed') return;
    // Candidates gathered before the tap are in the offer itself; only the others (and the
    // end-of-candidates marker) go out trickled.
    const sdp = pc.localDescription.sdp;
    link.send('invite', { type: 'offer', sdp });
    performance.mark('doorbell:offer_sent');
    offerSent = true;
    for (const c of localQueue.splice(0)) if (c === null || !sdp.includes(c.candidate)) link.send('ice_candidate', c);
    emit({ type: 'offer_sent' });
  }

  // Until configured, a rejected offer is only remembered (start() reports it).
  created.catch(() => {});
  let configured = false;
  function configure(config) {
    if (configured) return;
    configured = true;
    created
      .then((offer) => {
        if (config) pc.setConfiguration(config);
        return pc.setLocalDescription(offer);
      })
      .then(() => {
        offerReady = true;
        if (link) sendOffer();
      })
      .catch((err) => {
        failure = describe(err);
        emit({ type: 'peer_failed', why: failure });
      });
  }

  const calls = {
    configure,
    setRemoteAnswer(sdp) {
      performance.mark('doorbell:answer_received');
      pc.setRemoteDescription({ type: 'answer', sdp })
        .then(() => {
          remoteSet = true;
          for (const c of remoteQueue.splice(0)) addCandidate(c);
        })
        .catch((err) => emit({ type: 'answer_refused', why: describe(err) }));
    },
    addRemoteCandidate(candidate) {
      if (remoteSet) addCandidate(candidate);
      else remoteQueue.push(candidate);
    },
    // The path broke (a new network, a NAT that forgot the doorbell): a new offer with new ICE
    // credentials, sent like the first; the doorbell answers it on the same call.
    restartIce() {
      if (pc.signalingState !== 'stable') return;
      pc.createOffer({ iceRestart: true })
        .then((offer) => pc.setLocalDescription(offer))
        .then(() => {
          if (pc.signalingState === 'closed') return;
          link.send('invite', { type: 'offer', sdp: pc.localDescription.sdp });
        })
        .catch((err) => console.warn('doorbell: ICE restart failed:', describe(err)));
    },
    // Puts the microphone on the audio sender (no renegotiation).
    attachMicrophone(track) {
      audioSender.replaceTrack(track).catch((err) =>
        emit({ type: 'mic_refused', why: 'The microphone could not be used: ' + describe(err) + '.' })
      );
    },
    close() {
      clearInterval(stallWatch);
      pc.ontrack = null;
      pc.onicecandidate = null;
      pc.onconnectionstatechange = null;
      pc.oniceconnectionstatechange = null;
      pc.close();
    },
  };
  return {
    close: calls.close,
    configure,
    start(to) {
      link = to;
      if (failure) emit({ type: 'peer_failed', why: failure });
      else if (offerReady) sendOffer();
      return calls;
    },
  };
}

// The doorbell sends video and audio without pause, so nothing received for this long means the
// path is gone. Browsers take 5 s or more to say "disconnected" (consent checks are sparse);
// reporting it sooner starts the ICE restart sooner.
const STALL_POLL_MS = 500;
const STALL_POLLS = 3;

// Reports `disconnected` when no media has arrived for STALL_POLLS polls, and `connected` when
// it flows again (a browser that restarted ICE may never leave "connected" on its own).
function watchForStalls(pc, emit) {
  let last = -1;
  let still = 0;
  return setInterval(() => {
    if (pc.connectionState !== 'connected') return;
    pc.getStats()
      .then((report) => {
        let bytes = 0;
        report.forEach((s) => {
          if (s.type === 'inbound-rtp') bytes += s.bytesReceived || 0;
        });
        if (bytes !== last) {
          if (still >= STALL_POLLS) emit({ type: 'transport', state: 'connected' });
          still = 0;
        } else if (++still === STALL_POLLS) {
          emit({ type: 'transport', state: 'disconnected' });
        }
        last = bytes;
      })
      .catch(() => {});
  }, STALL_POLL_MS);
}

// Asks for the microphone; resolves with the track, or rejects with what to tell the owner.
export function openMicrophone() {
  const devices = navigator.mediaDevices;
  if (!devices || !devices.getUserMedia) {
    // Plain http on a non-local host has no getUserMedia at all.
    return Promise.reject(new Error('This page has no microphone access here (it needs https).'));
  }
  const constraints = {
    audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
    video: false,
  };
  return devices.getUserMedia(constraints).then(
    (stream) => {
      const track = stream.getAudioTracks()[0];
      if (!track) {
        stopStream(stream);
        throw new Error('No microphone was found.');
      }
      return { stream, track };
    },
    (err) => {
      throw new Error(
        err && err.name === 'NotAllowedError'
          ? 'The microphone was not allowed.'
          : 'The microphone could not be opened.'
      );
    }
  );
}

export function stopStream(stream) {
  if (stream) stream.getTracks().forEach((t) => t.stop());
}
