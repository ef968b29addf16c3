#!/usr/bin/env python3
"""Benchmark video messages and quick replies (not a test), with the real release binaries.

    cargo build --release -p doorbell
    python3 scripts/bench_messages.py [--rounds 5] [--size 640x480] [--fps 30] [--length 10]

Per round: a ring nobody answers, then the agent records a --length s message (test pattern
and tone, as the call benchmarks use); it prints the agent's CPU (share of one core) and RSS
while recording, and the clip's size per second. Then a quick reply (a 2 s WAV kept on the
server, cached by the agent) answers each of --rounds rings: the time from the owner's
request (POST /api/rooms/ROOM/reply, as the page's tap sends it) to the agent's
`reply_playing` (its first sound handed to the speaker), on the same clock. Prints the
median and spread of each figure and the machine's load.
"""

import argparse
import json
import os
import queue
import socket
import ssl
import statistics
import struct
import subprocess
import tempfile
import threading
import time
import urllib.request

from benchproc import free_port, status_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DOORBELL_BIN", os.path.join(ROOT, "target", "release", "doorbell"))
TOKEN = "bench-token-0123456789abcdefgh"
CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def rss_kib(pid):
    return status_kib(pid, "VmRSS") or 0


def proc_cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def request(method, url, body=None, headers=None):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    with urllib.request.urlopen(req, context=CTX, timeout=10) as r:
        return r.status, r.headers, r.read()


def pair(data_dir, url):
    out = subprocess.run([BIN, "owners", "pair", "--name", "Bench", "--data-dir", data_dir,
                          "--public-url", url], capture_output=True, text=True, check=True).stdout
    code = next(l for l in out.splitlines() if "/pair?code=" in l).split("code=", 1)[1].strip()
    _, headers, _ = request("POST", f"{url}/api/pair", json.dumps({"code": code}).encode(),
                            {"Content-Type": "application/json"})
    return headers["Set-Cookie"].split(";")[0]


def wav(seconds):
    n = int(48000 * seconds)
    import math
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / 48000)))
                   for i in range(n))
    return (b"RIFF" + struct.pack("<I", 36 + len(pcm)) + b"WAVEfmt " +
            struct.pack("<IHHIIHH", 16, 1, 1, 48000, 96000, 2, 16) + b"data" +
            struct.pack("<I", len(pcm)) + pcm)


class Agent:
    def __init__(self, args):
        self.proc = subprocess.Popen([BIN, "agent", "--trigger", "stdin", "--events", "json"] + args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True,
                                     env={**os.environ, "DOORBELL_TOKEN": TOKEN, "RUST_LOG": "warn"})
        self.events = queue.Queue()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        for line in self.proc.stdout:
            try:
                self.events.put(json.loads(line))
            except ValueError:
                pass

    def wait(self, name, within=60):
        deadline = time.time() + within
        while True:
            e = self.events.get(timeout=max(0.1, deadline - time.time()))
            if e["event"] == name:
                return e

    def press(self):
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()


def spread(values, unit=""):
    values = sorted(values)
    return f"median {statistics.median(values):.1f}{unit} (min {values[0]:.1f}, max {values[-1]:.1f})"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--size", default="640x480")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--length", type=int, default=10)
    a = p.parse_args()
    data = tempfile.mkdtemp(prefix="bench-msg-")
    spool = tempfile.mkdtemp(prefix="bench-spool-")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    server = subprocess.Popen([BIN, "server", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "DOORBELL_TOKEN": TOKEN, "RUST_LOG": "warn"})
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    cookie = pair(data, url)
    agent = Agent(["--server", url, "--ca-cert", os.path.join(data, "cert.pem"),
                   "--ice-host", "127.0.0.1", "--video-size", a.size, "--fps", str(a.fps),
                   "--audio-in", "tone", "--audio-out", "null", "--ring-timeout", "1s",
                   "--message-length", f"{a.length}s", "--message-dir", spool])
    agent.wait("connected")
    hz = os.sysconf("SC_CLK_TCK")
    cpu, rss, rate = [], [], []
    for _ in range(a.rounds):
        agent.press()
        agent.wait("message_recording")
        t0, c0 = time.time(), proc_cpu_ticks(agent.proc.pid)
        peak = 0
        while True:
            try:
                e = agent.events.get(timeout=0.2)
            except queue.Empty:
                peak = max(peak, rss_kib(agent.proc.pid))
                continue
            if e["event"] == "message_recorded":
                break
        t1, c1 = time.time(), proc_cpu_ticks(agent.proc.pid)
        cpu.append(100 * (c1 - c0) / hz / (t1 - t0))
        rss.append(peak / 1024)
        rate.append(e["bytes"] / (e["duration_ms"] / 1000) / 1024)
        agent.wait("message_uploaded")
        time.sleep(1)
    # Quick replies: one 2 s reply, then rings answered with it.
    _, _, body = request("POST", f"{url}/api/replies?name=Bench", wav(2.0),
                         {"Cookie": cookie, "Content-Type": "audio/wav"})
    reply_id = json.loads(body)["id"]
    time.sleep(1)  # the agent refreshes its copies on replies_changed
    latency = []
    for _ in range(a.rounds):
        agent.press()
        room = agent.wait("created")["room"]
        time.sleep(0.3)
        t0 = time.time()
        request("POST", f"{url}/api/rooms/{room}/reply", json.dumps({"id": reply_id, "end": True}).encode(),
                {"Cookie": cookie, "Content-Type": "application/json"})
        playing = agent.wait("reply_playing")
        latency.append((playing["ts"] - t0) * 1000)
        time.sleep(2.5)
    load = os.getloadavg()
    print(f"recording {a.size}@{a.fps}, {a.length} s, {a.rounds} rounds; load {load[0]:.2f} {load[1]:.2f}")
    print(f"  agent CPU while recording (one core): {spread(cpu, ' %')}")
    print(f"  agent peak RSS while recording:       {spread(rss, ' MiB')}; by round: "
          + ", ".join(f"{r:.1f}" for r in rss))
    print(f"  clip size per second:                 {spread(rate, ' KiB/s')}")
    print(f"  quick reply, request -> first sound:  {spread(latency, ' ms')}")
    agent.proc.terminate()
    server.terminate()


if __name__ == "__main__":
    main()
