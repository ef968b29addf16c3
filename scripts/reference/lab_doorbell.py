#!/usr/bin/env python3
"""The reference doorbell: the lab's aiortc client (seed LAB.md), for benchmarks only.

    pip install -r scripts/reference/requirements.txt
    python3 scripts/reference/lab_doorbell.py --server http://127.0.0.1:PORT [--size 640x480] [--fps 30]

It follows the lab's 'Overall structure of the WebRTC client' step by step, with the lab's
Flask-SocketIO room protocol (tests/fixtures/lab_server.py):

  loop: wait for a press (one line on stdin) -> connect to the signaling server -> `join` a random
  room -> `created` (else give up) -> print the link -> wait for `new_peer`, then `invite` ->
  create the RTCPeerConnection with the camera (a 640x480@30 test pattern) and microphone (a tone)
  -> setRemoteDescription(offer) -> createAnswer -> setLocalDescription -> send `ok` with
  pc.localDescription (aiortc has no trickle ICE: the description holds every candidate) ->
  wait for `bye` -> send `bye`, close everything, disconnect.

The owner's audio is consumed by a MediaBlackhole (the lab plays it on ALSA; a benchmark machine
has no sound card). Each step is one JSON line on stdout, `{"event": NAME, "ts": unix seconds,
...}`, the same shape as `doorbell agent --events json`, so a harness can time both the same way.
Logs go to stderr. End of stdin ends the program.

Two deliberate departures from a student's copy, both to give the reference its fair best on one
machine and to keep it off the network:
  - no STUN server: aiortc's default is stun.l.google.com, which a loopback benchmark must not
    reach (and which would only add a server-reflexive candidate nobody needs here);
  - --ice-host (default 127.0.0.1): aioice skips 127.0.0.1 when it lists host addresses, so the
    candidates would be the machine's other addresses; offering only the loopback address matches
    what our agent is given (`--ice-host 127.0.0.1`) and gives ICE one pair to check.
"""

import argparse
import asyncio
import fractions
import json
import logging
import secrets
import sys
import time

import aioice.ice
import av
import numpy as np
import socketio
from aiortc import (RTCConfiguration, RTCPeerConnection, RTCSessionDescription,
                    AudioStreamTrack, VideoStreamTrack)
from aiortc.contrib.media import MediaBlackhole

log = logging.getLogger("lab_doorbell")


def event(name, **fields):
    """One JSON line on stdout: what the benchmark reads instead of logs."""
    print(json.dumps({"event": name, "ts": time.time(), **fields}), flush=True)


class TestPatternTrack(VideoStreamTrack):
    """A moving test pattern, cheap to make: eight vertical colour bars in I420 built once with
    numpy, shifted by a few pixels each frame (a moving picture, so the encoder does real work
    every frame, as with our agent's test pattern). Frames are I420 already, so aiortc's
    encoders need no colour conversion."""

    def __init__(self, width, height, fps):
        super().__init__()
        self.width, self.height = width, height
        # VideoStreamTrack.next_timestamp paces at 30 fps; a different rate paces itself below.
        self.fps = fps
        bars_y = np.array([235, 210, 170, 145, 106, 81, 41, 16], dtype=np.uint8)
        bars_u = np.array([128, 16, 166, 54, 202, 90, 240, 128], dtype=np.uint8)
        bars_v = np.array([128, 146, 16, 34, 222, 240, 110, 128], dtype=np.uint8)
        cols = np.arange(width) * 8 // width
        self.y_row = bars_y[cols]
        self.u_row = bars_u[cols[::2]]
        self.v_row = bars_v[cols[::2]]
        self.count = 0

    async def next_timestamp(self):
        if self.fps == 30:
            return await super().next_timestamp()
        # Same pacing as aiortc's, at another rate.
        if hasattr(self, "_timestamp"):
            self._timestamp += int(90000 / self.fps)
            wait = self._start + self._timestamp / 90000 - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        else:
            self._start = time.time()
            self._timestamp = 0
        return self._timestamp, fractions.Fraction(1, 90000)

    async def recv(self):
        pts, time_base = await self.next_timestamp()
        shift = (self.count * 4) % self.width
        self.count += 1
        w, h = self.width, self.height
        # I420 as one (h * 3/2, w) plane: Y rows, then U and V rows of half width packed two
        # per row (the layout av.VideoFrame.from_ndarray expects for yuv420p).
        y = np.broadcast_to(np.roll(self.y_row, shift), (h, w))
        u = np.broadcast_to(np.roll(self.u_row, shift // 2), (h // 2, w // 2)).reshape(h // 4, w)
        v = np.broadcast_to(np.roll(self.v_row, shift // 2), (h // 2, w // 2)).reshape(h // 4, w)
        frame = av.VideoFrame.from_ndarray(np.concatenate([y, u, v]), format="yuv420p")
        frame.pts = pts
        frame.time_base = time_base
        return frame


class ToneTrack(AudioStreamTrack):
    """A 440 Hz tone, 48 kHz mono, 20 ms frames: one second of it computed once (440 whole
    periods, so it loops without a click) and sliced, paced like aiortc's AudioStreamTrack."""

    RATE = 48000
    SAMPLES = 960  # 20 ms

    def __init__(self):
        super().__init__()
        t = np.arange(self.RATE) / self.RATE
        self.second = (0.2 * 32767 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)

    async def recv(self):
        if hasattr(self, "_timestamp"):
            self._timestamp += self.SAMPLES
            wait = self._start + self._timestamp / self.RATE - time.time()
            if wait > 0:
                await asyncio.sleep(wait)
        else:
            self._start = time.time()
            self._timestamp = 0
        at = self._timestamp % self.RATE
        samples = np.take(self.second, range(at, at + self.SAMPLES), mode="wrap")
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = self.RATE
        frame.pts = self._timestamp
        frame.time_base = fractions.Fraction(1, self.RATE)
        return frame


class Signaling:
    """The lab's answer to 'SocketIO is callback oriented': every event the client cares about
    lands on one asyncio Queue as (name, payload); the call flow waits on the queue (with
    asyncio.wait_for for timeouts)."""

    EVENTS = ("created", "joined", "full", "new_peer", "invite", "bye", "error", "ice_candidate")

    def __init__(self):
        self.sio = socketio.AsyncClient(ssl_verify=False, reconnection=False)
        self.queue = asyncio.Queue()
        for name in self.EVENTS:
            self.sio.on(name, self._handler(name))

    def _handler(self, name):
        async def handler(payload=None):
            await self.queue.put((name, payload))
        return handler

    async def wait(self, names, timeout):
        """The next event among `names` (others are dropped: e.g. trickled candidates, which the
        lab's client ignores); raises asyncio.TimeoutError."""
        end = time.monotonic() + timeout
        while True:
            name, payload = await asyncio.wait_for(self.queue.get(), max(0.0, end - time.monotonic()))
            if name in names:
                return name, payload
            log.debug("ignored %s", name)


async def call_once(args, room_base_url):
    """One press: steps 2-13 of the lab's structure."""
    signaling = Signaling()
    pc = None
    blackhole = None
    reason = "bye"
    try:
        # 2. Connect to the signaling server.
        await signaling.sio.connect(args.server, transports=["websocket"])
        event("connected")
        # 3-4. Join a room with a random name; only `created` goes on.
        room = secrets.token_urlsafe(16)
        await signaling.sio.emit("join", room)
        name, _ = await signaling.wait({"created", "joined", "full", "error"}, args.timeout)
        if name != "created":
            reason = name
            return
        event("created", room=room)
        # 5. Tell the owner: print the link.
        event("notified", room=room, url=f"{room_base_url}/?room={room}")
        # 6-7. A browser arrives, then its offer.
        try:
            await signaling.wait({"new_peer"}, args.ring_timeout)
            event("new_peer")
            _, offer = await signaling.wait({"invite"}, args.timeout)
            event("invite")
        except asyncio.TimeoutError:
            reason = "timeout"
            await signaling.sio.emit("bye", room)
            return
        # 8-9. Media and the peer connection (no STUN: see the module docstring).
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        connected = asyncio.Event()

        # `connected` once ICE and DTLS are both up (the moment media can flow), as our agent's
        # media_connected; ICE alone comes earlier.
        @pc.on("connectionstatechange")
        def on_state():
            if pc.connectionState == "connected" and not connected.is_set():
                connected.set()
                event("media_connected")

        blackhole = MediaBlackhole()

        @pc.on("track")
        def on_track(track):
            if track.kind == "audio":
                blackhole.addTrack(track)

        pc.addTrack(ToneTrack())
        pc.addTrack(TestPatternTrack(args.width, args.height, args.fps))
        # 10-11. The offer in, the answer out with every candidate in it.
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type=offer["type"]))
        answer = await pc.createAnswer()
        await pc.setLocalDescription(answer)
        await signaling.sio.emit("ok", {"type": pc.localDescription.type, "sdp": pc.localDescription.sdp})
        event("ok_sent")
        await blackhole.start()
        # 12. Wait for the owner to hang up.
        try:
            await signaling.wait({"bye"}, args.max_call)
            event("bye_received")
        except asyncio.TimeoutError:
            reason = "max_call"
        # 13. bye back (the server has already removed the sender; this leaves the room).
        await signaling.sio.emit("bye", room)
    except (asyncio.TimeoutError, socketio.exceptions.ConnectionError) as err:
        reason = f"error: {err!r}"
        event("error", message=repr(err))
    finally:
        if blackhole is not None:
            await blackhole.stop()
        if pc is not None:
            await pc.close()
        if signaling.sio.connected:
            await signaling.sio.disconnect()
        event("call_end", reason=reason)


async def main_async(args):
    loop = asyncio.get_running_loop()
    base = args.public_url or args.server
    event("ready", pid=__import__("os").getpid())
    while True:
        # 1. Wait for a press: one line on stdin (the lab's keypress before the GPIO button).
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        event("trigger")
        await call_once(args, base.rstrip("/"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="the lab's signaling server, e.g. http://127.0.0.1:8080")
    parser.add_argument("--public-url", help="base of the owner's link (default --server)")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--ice-host", default="127.0.0.1",
                        help="the only host address offered as an ICE candidate; 'all' for aioice's own list")
    parser.add_argument("--timeout", type=float, default=30, help="join and offer waits (s)")
    parser.add_argument("--ring-timeout", type=float, default=120, help="wait for the browser (s)")
    parser.add_argument("--max-call", type=float, default=600, help="longest call (s)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    args.width, args.height = (int(x) for x in args.size.split("x"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, stream=sys.stderr)
    if args.ice_host != "all":
        # aioice looks this function up at gathering time; see the module docstring for why.
        aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: [args.ice_host]
    try:
        asyncio.run(main_async(args))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
