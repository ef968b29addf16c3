#!/usr/bin/env python3
"""Benchmark the owner app's server side (not a test): history API latency with a large
history, and the server's memory with many paired devices connected.

    cargo build --release -p doorbell
    cargo run --release -p doorbell-store --example fill_history -- /tmp/hist 100000
    python3 scripts/bench_history.py /tmp/hist [--requests 200] [--devices 50]

Prints, for GET /api/rings?limit=50 (newest page) and a page deep in the history, the median,
p95 and max of --requests sequential requests (curl's time_total, TLS connection each time),
and the server's RSS before and after --devices paired devices hold a Socket.IO connection.
"""

import argparse
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

from benchproc import free_port, status_kib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DOORBELL_BIN", os.path.join(ROOT, "target", "release", "doorbell"))
TOKEN = "bench-token-0123456789abcdefgh"


def rss_kib(pid):
    return status_kib(pid, "VmRSS") or 0


def pair(data_dir, url, name):
    out = subprocess.run([BIN, "owners", "pair", "--name", name, "--data-dir", data_dir,
                          "--public-url", url], capture_output=True, text=True, check=True).stdout
    link = next(l for l in out.splitlines() if "/pair?code=" in l)
    code = link.split("code=", 1)[1].strip()
    headers = subprocess.run(
        ["curl", "-sk", "-D", "-", "-o", "/dev/null", "-H", "Content-Type: application/json",
         "--data", json.dumps({"code": code}), f"{url}/api/pair"],
        capture_output=True, text=True, check=True).stdout
    cookie = next(l for l in headers.splitlines() if l.lower().startswith("set-cookie:"))
    return cookie.split(":", 1)[1].strip().split(";")[0]


def timings(url, cookie, n):
    out = []
    for _ in range(n):
        t = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{time_total}",
                            "-H", f"Cookie: {cookie}", url], capture_output=True, text=True, check=True)
        out.append(float(t.stdout) * 1000)
    out.sort()
    return statistics.median(out), out[int(0.95 * len(out)) - 1], out[-1]


CLIENTS = r"""
const { io } = require(process.argv[2]);
const [url, ...cookies] = process.argv.slice(3);
let up = 0;
for (const cookie of cookies) {
  const s = io(url, { transports: ['websocket'], rejectUnauthorized: false, extraHeaders: { Cookie: cookie } });
  s.on('connect', () => { if (++up === cookies.length) console.log('connected'); });
}
setInterval(() => {}, 1000);
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data_dir")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--devices", type=int, default=50)
    args = ap.parse_args()
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    env = dict(os.environ, DOORBELL_TOKEN=TOKEN, RUST_LOG="warn")
    server = subprocess.Popen([BIN, "server", "--listen", f"127.0.0.1:{port}", "--data-dir", args.data_dir,
                               "--history-days", "100000", "--history-max-mib", "1000000"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        cookie = pair(args.data_dir, url, f"bench-{port}")
        newest = json.loads(subprocess.run(["curl", "-sk", "-H", f"Cookie: {cookie}", f"{url}/api/rings?limit=1"],
                                           capture_output=True, text=True, check=True).stdout)
        top = newest[0]["id"] if newest else 0
        print(f"load average before: {open('/proc/loadavg').read().strip()}")
        for name, path in [("newest 50", "/api/rings?limit=50"),
                           ("50 before the 90,000th newest", f"/api/rings?limit=50&before={max(1, top - 90000)}")]:
            med, p95, mx = timings(url + path, cookie, args.requests)
            print(f"{name}: median {med:.2f} ms, p95 {p95:.2f} ms, max {mx:.2f} ms ({args.requests} requests)")
        before = rss_kib(server.pid)
        cookies = [pair(args.data_dir, url, f"device-{port}-{i}") for i in range(args.devices)]
        with tempfile.NamedTemporaryFile("w", suffix=".js", delete=False) as f:
            f.write(CLIENTS)
        client_lib = os.path.join(ROOT, "tests", "node_modules", "socket.io-client")
        clients = subprocess.Popen(["node", f.name, client_lib, url, *cookies], stdout=subprocess.PIPE, text=True)
        line = clients.stdout.readline().strip()
        time.sleep(1)
        after = rss_kib(server.pid)
        print(f"server RSS: {before / 1024:.1f} MiB with one pairing, {after / 1024:.1f} MiB with "
              f"{args.devices} paired devices connected ({line}); "
              f"{(after - before) / max(1, args.devices):.0f} KiB per device")
        clients.kill()
    finally:
        server.kill()


if __name__ == "__main__":
    main()
