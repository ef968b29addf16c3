#!/usr/bin/env python3
"""A Flask-SocketIO signaling server speaking DESIGN.md §3, serving web/ like `doorbell server`.

A test fixture for the call page (tests/e2e/page_states.test.js), not a product: it shows the
page works on a Flask-SocketIO server (the lab's stack) and lets the page tests run without the
Rust server. Rules as in DESIGN.md §3: two members per room, relay to the other member only,
`bye` removes the sender before relaying, a disconnect counts as `bye`, empty rooms vanish.
Like our server, creating a room needs the doorbell token (Socket.IO auth {"token": ...});
a tokenless join of a missing room gets error `no_such_room`. With --lab, it behaves like the
lab's server instead: anyone may create rooms (the page then receives `created`).

Prints one JSON line {"port": N} on stdout once listening on 127.0.0.1:N (port 0 = ephemeral).
"""

import argparse
import json
import os
import sys
import threading

from flask import Flask, request, send_from_directory
from flask_socketio import SocketIO, emit, join_room, leave_room
from werkzeug.serving import make_server

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web")
# The CSP the Rust server sends: nothing from other origins, no inline script or style.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'; object-src 'none'"
)


def build(token, lab):
    app = Flask(__name__, static_folder=None)
    # async_handlers=False: one client's events are handled in the order sent (an
    # ice_candidate must not overtake the invite it belongs to).
    socketio = SocketIO(app, async_mode="threading", cors_allowed_origins=[], async_handlers=False)
    lock = threading.Lock()
    members = {}  # room -> [sid]
    room_of = {}  # sid -> room
    creators = set()  # sids that presented the token

    @app.after_request
    def headers(resp):
        resp.headers["Content-Security-Policy"] = CSP
        resp.headers["X-Content-Type-Options"] = "nosniff"
        resp.headers["Cache-Control"] = "no-store"
        return resp

    @app.route("/")
    def index():
        return send_from_directory(WEB_DIR, "index.html")

    @app.route("/<path:name>")
    def asset(name):
        return send_from_directory(WEB_DIR, name)

    def error(code, message):
        emit("error", {"code": code, "message": message})

    def leave(sid):
        """Removes sid from its room; returns the member left behind, if any."""
        room = room_of.pop(sid, None)
        if room is None:
            return None, None
        rest = [m for m in members.get(room, []) if m != sid]
        if rest:
            members[room] = rest
        else:
            members.pop(room, None)
        leave_room(room, sid=sid)
        return room, (rest[0] if rest else None)

    @socketio.on("connect")
    def on_connect(auth):
        if isinstance(auth, dict) and auth.get("token") == token:
            creators.add(request.sid)

    @socketio.on("disconnect")
    def on_disconnect(*_args):
        with lock:
            creators.discard(request.sid)
            room, other = leave(request.sid)
        if other is not None:
            emit("bye", room, to=other)

    def on_join(room):
        if not isinstance(room, str) or not room or len(room) > 64:
            return error("bad_room_name", "room name must be 1-64 URL-safe characters")
        sid = request.sid
        with lock:
            if sid in room_of:
                return error("already_in_room", "you are already in a room; send bye first")
            present = members.get(room, [])
            if not present and not lab and sid not in creators:
                return error("no_such_room", "this call has ended")
            if len(present) >= 2:
                emit("full", room)
                return None
            members[room] = present + [sid]
            room_of[sid] = room
            join_room(room)
            other = present[0] if present else None
        if other is None:
            emit("created", room)
        else:
            emit("joined", room)
            emit("new_peer", room, to=other)
        return None

    socketio.on_event("join", on_join)
    socketio.on_event("create", on_join)

    def relay(name):
        def handler(payload=None):
            with lock:
                room = room_of.get(request.sid)
                others = [m for m in members.get(room, []) if m != request.sid]
            if room is None:
                return error("not_in_room", "join a room first")
            for other in others:
                # A 1-tuple sends exactly one argument, even when it is None (the
                # end-of-candidates marker); a bare None would send no argument at all.
                emit(name, (payload,), to=other)
            return None

        return handler

    for name in ("invite", "ok", "ice_candidate"):
        socketio.on_event(name, relay(name))

    @socketio.on("bye")
    def on_bye(_payload=None):
        with lock:
            room, other = leave(request.sid)
        if room is None:
            return error("not_in_room", "join a room first")
        if other is not None:
            emit("bye", room, to=other)
        return None

    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--token", default=os.environ.get("DOORBELL_TOKEN", "test-token"))
    parser.add_argument("--lab", action="store_true", help="anyone may create rooms")
    args = parser.parse_args()
    app = build(args.token, args.lab)
    server = make_server("127.0.0.1", args.port, app, threaded=True)
    print(json.dumps({"port": server.server_port}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
