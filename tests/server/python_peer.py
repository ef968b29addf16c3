"""Issue #2 scenarios driven by python-socketio 5.x (Engine.IO 4) over TLS.

Usage: python3 python_peer.py URL CA_FILE TOKEN TRANSPORT
TRANSPORT is "websocket" or "polling". Prints "PASS <scenario>" per scenario; exits 1 on
the first failure. The server's certificate is trusted as the CA (no verification switched off).
"""

import asyncio
import json
import queue
import ssl
import threading
import random
import string
import sys
import traceback

import aiohttp
import socketio

URL, CA_FILE, TOKEN, TRANSPORT = sys.argv[1:5]
WAIT_S = 15  # hang guard only

OFFER = {"type": "offer", "sdp": "v=0\r\ns=-\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\ns=- answer\r\n"}
CANDIDATE = {"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0}


class Peer:
    """A python-socketio 5.x client (the asyncio one, on aiohttp: the threaded client reads
    and writes one TLS socket from two threads, which Python's ssl module does not support
    and which made its websocket transport drop now and then) behind blocking methods, so
    the scenarios read top to bottom."""

    def __init__(self, name, token=None):
        self.name = name
        self.events = queue.Queue()
        self.sio = _run(self._connect(token))

    async def _connect(self, token):
        context = ssl.create_default_context(cafile=CA_FILE)
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context))
        sio = socketio.AsyncClient(http_session=session, reconnection=False)

        async def on_any(event, data=None):
            self.events.put((event, data))

        sio.on("*", on_any)
        await sio.connect(
            URL,
            transports=[TRANSPORT],
            auth={"token": token} if token is not None else None,
            wait_timeout=WAIT_S,
        )
        self.session = session
        return sio

    def emit(self, event, data):
        _run(self.sio.emit(event, data))

    def expect(self, event, payload=None):
        try:
            got_event, got = self.events.get(timeout=WAIT_S)
        except queue.Empty:
            raise AssertionError(
                f"{self.name}: no {event} within {WAIT_S} s (connected: {self.sio.connected})"
            ) from None
        if got_event != event:
            raise AssertionError(f"{self.name}: expected {event}, got {got_event} {got}")
        if payload is not None and got != payload:
            raise AssertionError(f"{self.name}: {event} payload {got!r} != {payload!r}")
        return got

    def expect_ice_servers(self):
        """Our server follows created/joined with this member's ICE servers."""
        got = self.expect("ice_servers")
        if not isinstance(got.get("iceServers"), list) or got.get("iceTransportPolicy") not in ("all", "relay"):
            raise AssertionError(f"{self.name}: malformed ice_servers {got!r}")
        return got

    def expect_error(self, code):
        got = self.expect("error")
        if got.get("code") != code or not got.get("message"):
            raise AssertionError(f"{self.name}: expected error {code}, got {got}")

    def flush(self):
        """Round trip: the server handles a connection's events in order."""
        self.emit("flush_marker", "x")
        self.expect_error("unknown_event")

    def assert_nothing_else(self):
        if not self.events.empty():
            raise AssertionError(f"{self.name}: unexpected {self.events.get()}")

    def close(self):
        async def close():
            await self.sio.disconnect()
            await self.session.close()

        _run(close())


# One event loop on a background thread runs every client's I/O.
LOOP = asyncio.new_event_loop()
threading.Thread(target=LOOP.run_forever, daemon=True).start()


def _run(coroutine):
    return asyncio.run_coroutine_threadsafe(coroutine, LOOP).result(timeout=WAIT_S * 2)


def room(label):
    return label + "-" + "".join(random.choices(string.ascii_letters, k=10))


peers = []


def peer(name, token=None):
    p = Peer(name, token)
    peers.append(p)
    return p


def settle(*ps):
    for p in ps:
        p.flush()
    for p in ps:
        p.flush()
    for p in ps:
        p.assert_nothing_else()


def pair(label):
    r = room(label)
    a = peer(label + "-door", TOKEN)
    b = peer(label + "-visitor")
    a.emit("join", r)
    a.expect("created", r)
    a.expect_ice_servers()
    b.emit("join", r)
    b.expect("joined", r)
    b.expect_ice_servers()
    a.expect("new_peer", r)
    return r, a, b


def created_joined_new_peer_full():
    r, a, b = pair("cjf")
    c = peer("c")
    c.emit("create", r)
    c.expect("full", r)
    settle(a, b, c)


def relay_to_the_other_member_only():
    r, a, b = pair("relay")
    _, a2, b2 = pair("relay2")
    b.emit("invite", OFFER)
    a.expect("invite", OFFER)
    a.emit("ok", ANSWER)
    b.expect("ok", ANSWER)
    b.emit("ice_candidate", CANDIDATE)
    a.expect("ice_candidate", CANDIDATE)
    # python-socketio sends no argument for data=None; a 1-tuple is one null argument.
    a.emit("ice_candidate", (None,))
    got = b.expect("ice_candidate")
    if got is not None:
        raise AssertionError(f"end of candidates relayed as {got!r}")
    settle(a, b, a2, b2)


def bye_has_no_ping_pong():
    r, a, b = pair("bye")
    b.emit("bye", r)
    a.expect("bye", r)
    a.emit("bye", r)
    settle(a, b)
    late = peer("late")
    late.emit("join", r)
    late.expect_error("no_such_room")


def disconnect_becomes_bye():
    r, a, b = pair("disc")
    b.close()
    a.expect("bye", r)
    settle(a)


def tokens():
    r = room("tok")
    none = peer("none")
    none.emit("join", r)
    none.expect_error("no_such_room")
    wrong = peer("wrong", TOKEN + "x")
    wrong.emit("join", r)
    wrong.expect_error("unauthorized")
    right = peer("right", TOKEN)
    right.emit("join", r)
    right.expect("created", r)
    right.expect_ice_servers()
    settle(none, wrong, right)


def invalid_payloads():
    r, a, b = pair("bad")
    cases = [
        (b, ("nonsense", "x"), "unknown_event"),
        (b, ("join", 7), "bad_payload"),
        (b, ("join", "no spaces"), "bad_room_name"),
        (b, ("join", room("other")), "already_in_room"),
        (b, ("invite", {"type": "offer"}), "bad_payload"),
        (b, ("invite", {"type": "offer", "sdp": "x" * (65 * 1024)}), "payload_too_large"),
        (a, ("ok", "answer"), "bad_payload"),
        (a, ("ice_candidate", {"candidate": "c" * 3000}), "payload_too_large"),
        (a, ("bye", [r]), "bad_payload"),
    ]
    for p, args, code in cases:
        p.emit(args[0], args[1])
        p.expect_error(code)
    b.emit("invite", OFFER)
    a.expect("invite", OFFER)
    settle(a, b)


def main():
    failed = False
    for scenario in [
        created_joined_new_peer_full,
        relay_to_the_other_member_only,
        bye_has_no_ping_pong,
        disconnect_becomes_bye,
        tokens,
        invalid_payloads,
    ]:
        try:
            scenario()
            print(f"PASS {scenario.__name__}", flush=True)
        except Exception:  # noqa: BLE001 - report every failure, then exit 1
            print(f"FAIL {scenario.__name__}: {traceback.format_exc()}", flush=True)
            failed = True
        finally:
            while peers:
                try:
                    peers.pop().close()
                except Exception:  # noqa: BLE001
                    pass
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
