#!/usr/bin/env python3
"""Page open -> first decoded frame, ours beside the reference build (issue 19). A benchmark,
not a test: it asserts nothing, it prints figures.

    cargo build --release -p doorbell
    pip install -r scripts/reference/requirements.txt
    python3 scripts/bench_speed.py [--rounds 5] [--seconds 10] [--only ours|reference]

The two sides, on loopback, 640x480 at 30 fps, each answered by a fresh headless Chromium
(tests/e2e/browser.js, a new profile per call, so nothing is cached between rounds):
  ours       `doorbell server` (HTTPS, self-signed) + `doorbell agent --trigger stdin
             --events json --ice-host 127.0.0.1` + our page (web/, served by the server);
  reference  tests/fixtures/lab_server.py (Flask-SocketIO, plain HTTP) serving the lab's page
             stand-in (tests/fixtures/lab_page/) + scripts/reference/lab_doorbell.py (aiortc).

Warm servers: each side's server and agent start once, and each side makes one warm-up call
that is not counted (the first call pays for Python imports, lazy initialisation, the agent's
first connection...). Then rounds alternate ours, reference, ours, ... so that a change of the
machine's load hits both sides alike.

One call: press (a line on the agent's stdin) -> the agent's `notified` event gives the link ->
browser.js (started fresh, then 1 s on about:blank: a running browser) opens it and taps Answer
(#answer) / Call (#callButton) from inside the page the moment the button shows, the same on both
pages (`--playwright-tap`: Playwright's click after the load event instead, which waits for the
button to be stable, 100–800 ms here), waits for the first decoded frame, measures S seconds, hangs up. From the agent: CPU
(utime+stime from /proc/PID/stat) between its `media_connected` and `bye_received` events,
VmRSS at `bye_received` and VmHWM (its peak since it started, warm-up call included).

Every time is in ms from the page's navigation start (performance.now()):
  - navigation timing of the document, resource timing (responseEnd) of each script/style;
  - the page's own marks (`mark:NAME`, performance.mark('doorbell:NAME'));
  - `--timing` steps recorded by browser.js from outside the page, the same on both pages: the
    tap, WebSocket created/open, RTCPeerConnection created, setLocalDescription(offer), ICE
    gathering complete, setRemoteDescription(answer), ICE connected, track, first frame
    (requestVideoFrameCallback on the <video> the stream is given to);
  - the agent's events (`agent:NAME`), its wall-clock `ts` placed on the page clock with the
    page's performance.timeOrigin (one machine, one clock).

Output on stdout: the load (uptime) before and after; per side a Markdown table of the call's
figures and one of every time above (median, min-max, n; sorted by median); the call's path as
consecutive spans (SPANS), side by side; the ratios ours/reference of the medians. On stderr:
each round's raw figures as one JSON line, then everything as one JSON object.
"""

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchproc import cpu_seconds, free_port, status_kib, uptime, wait_port

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DOORBELL_BIN", os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")),
                                                  "release", "doorbell"))
BROWSER_JS = os.path.join(ROOT, "tests", "e2e", "browser.js")
SIZE, FPS = "640x480", 30
# The browser is started fresh for each call (a new profile: nothing cached), then given this
# long on about:blank before the link, as a phone's browser is already running when the owner
# taps the notification. Without it, navigation start → first frame includes Chromium's own
# start-up work competing with the page (measured ~50 ms more on this 2-core machine).
WARM_BROWSER_MS = 1000
# The agent events placed on the page's clock in the breakdown.
AGENT_EVENTS = ("new_peer", "invite", "ok_sent", "media_connected")


class Side:
    """One side's long-lived server and agent, and its calls."""

    def __init__(self, name, playwright_tap=False):
        self.name = name
        self.playwright_tap = playwright_tap
        self.procs = []
        self.events = queue.Queue()
        self.agent = None

    def start(self):
        if self.name == "ours":
            self._start_ours()
        else:
            self._start_reference()

        def read():
            for line in self.agent.stdout:
                try:
                    self.events.put(json.loads(line))
                except ValueError:
                    pass  # not an event line
        threading.Thread(target=read, daemon=True).start()
        self.wait("ready" if self.name == "reference" else "connected")

    def _start_ours(self):
        if not os.path.exists(BIN):
            raise SystemExit(f"no {BIN}: cargo build --release -p doorbell (or set DOORBELL_BIN)")
        data = tempfile.mkdtemp(prefix="doorbell-bench-speed-")
        port = free_port()
        env = dict(os.environ, DOORBELL_TOKEN="bench-token-0123456789abcdef", RUST_LOG="warn")
        self.procs.append(subprocess.Popen(
            [BIN, "server", "--listen", f"127.0.0.1:{port}", "--data-dir", data],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(port)
        self.agent = subprocess.Popen(
            [BIN, "agent", "--server", f"https://127.0.0.1:{port}", "--ca-cert", os.path.join(data, "cert.pem"),
             "--trigger", "stdin", "--events", "json", "--ice-host", "127.0.0.1",
             "--video-size", SIZE, "--fps", str(FPS), "--message-length", "0",
             "--message-dir", os.path.join(data, "messages")],
            env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(self.agent)

    def _start_reference(self):
        port = free_port()
        # stdin=PIPE: the fixture exits when its stdin closes, so it cannot outlive us.
        server = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "tests", "fixtures", "lab_server.py"), "--port", str(port),
             "--static", os.path.join(ROOT, "tests", "fixtures", "lab_page")],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(server)
        wait_port(port)
        self.agent = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "scripts", "reference", "lab_doorbell.py"),
             "--server", f"http://127.0.0.1:{port}", "--size", SIZE, "--fps", str(FPS), "--ice-host", "127.0.0.1"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.procs.append(self.agent)

    def wait(self, name, within=60):
        end = time.time() + within
        while True:
            try:
                e = self.events.get(timeout=max(0.01, end - time.time()))
            except queue.Empty:
                raise SystemExit(f"{self.name}: no {name} event within {within} s") from None
            if e.get("event") == name:
                return e
            if e.get("event") == "call_end" and name != "call_end":
                raise SystemExit(f"{self.name}: the call ended ({e.get('reason')}) while waiting for {name}")

    def call(self, seconds):
        """One call; returns the raw figures."""
        while not self.events.empty():  # leftovers of the last call
            self.events.get_nowait()
        self.agent.stdin.write("\n")
        self.agent.stdin.flush()
        url = self.wait("notified")["url"]
        tap = ["--tap-when-ready", "--warm-browser-ms", str(WARM_BROWSER_MS)] if not self.playwright_tap else []
        browser = subprocess.Popen(
            ["node", BROWSER_JS, url, "--answer", "--measure-seconds", str(seconds), "--timing", "--hangup",
             "--timeout-ms", "60000", *tap],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        agent_events = {}
        for name in ("new_peer", "invite", "ok_sent", "media_connected"):
            agent_events[name] = self.wait(name)["ts"]
        cpu0, t0 = cpu_seconds(self.agent.pid), time.time()
        agent_events["bye_received"] = self.wait("bye_received", within=seconds + 90)["ts"]
        cpu1, t1 = cpu_seconds(self.agent.pid), time.time()
        rss, hwm = status_kib(self.agent.pid, "VmRSS"), status_kib(self.agent.pid, "VmHWM")
        self.wait("call_end")
        out, err = browser.communicate(timeout=90)
        lines = [l for l in out.splitlines() if l.startswith("{")]
        result = json.loads(lines[-1]) if lines else {}
        if result.get("event") != "result" or "timing" not in result:
            raise SystemExit(f"{self.name}: browser.js gave no timing: {out[-500:]} {err[-1000:]}")
        return figures(self.name, result, agent_events, cpu1 - cpu0, t1 - t0, rss, hwm)

    def stop(self):
        for p in reversed(self.procs):
            p.kill()
            p.wait()


def figures(side, result, agent_events, cpu_s, wall_s, rss_kib, hwm_kib):
    """One round's breakdown: every time in ms from navigation start, plus the call's figures."""
    timing = result["timing"]
    origin = timing["time_origin"]
    times = {}
    nav = timing["navigation"]
    for key, label in (("responseStart", "doc:response_start"), ("responseEnd", "doc:response_end"),
                       ("domInteractive", "doc:dom_interactive"),
                       ("domContentLoadedEventEnd", "doc:dom_content_loaded"), ("loadEventEnd", "doc:load")):
        if nav.get(key):
            times[label] = nav[key]
    for r in timing["resources"]:
        # Scripts and styles: what the page needs before it can act. (Socket.IO's polling and
        # images are not on that path.)
        if r["type"] in ("script", "link", "css"):
            times.setdefault(f"res:{r['name']}", r["response_end"])
    for name, t in (result.get("marks") or {}).items():
        times[f"mark:{name}"] = t
    for name, t in timing["steps"].items():
        times[f"step:{name}"] = t
    for name, ts in agent_events.items():
        if name in AGENT_EVENTS:
            times[f"agent:{name}"] = ts * 1000 - origin
    first = timing["steps"].get("first_frame")
    tap = timing["steps"].get("tap")
    # When the page could take the tap: our page says so (mark `ringing`); the lab's page can
    # once its socket.io client has loaded, which is its load event. browser.js taps one
    # animation frame or so after that (with --playwright-tap: after the load event and the
    # button's stability wait), the same on both sides; the figure without that wait is a floor,
    # since a page may use the wait (ours connects and sets its offer in it).
    marks = result.get("marks") or {}
    ready = marks.get("ringing", nav.get("loadEventEnd"))
    return {
        "side": side,
        "first_frame_ms": first,
        "tap_to_first_frame_ms": first - tap if first is not None and tap is not None else None,
        "page_ready_ms": ready,
        "first_frame_tapped_at_ready_ms":
            first - (tap - ready) if None not in (first, tap, ready) and tap > ready else first,
        "agent_cpu_pct": 100 * cpu_s / wall_s,
        "agent_rss_mib": rss_kib / 1024,
        "agent_hwm_mib": hwm_kib / 1024,
        "fps": result.get("fps"),
        "video": f"{result.get('video_width')}x{result.get('video_height')}",
        "codec": timing.get("video_codec"),
        "times_ms": times,
    }


# The call's path as consecutive spans (from, to), each measured per round then summarised, so
# that where the time goes is read directly. All page-side except the agent's three.
SPANS = (
    (None, "doc:response_start"),
    ("doc:response_start", "doc:load"),
    ("doc:load", "step:tap"),
    ("step:tap", "step:pc_created"),
    ("step:pc_created", "step:set_local_offer"),
    ("step:set_local_offer", "agent:invite"),
    ("agent:invite", "agent:ok_sent"),
    ("agent:ok_sent", "step:set_remote_answer"),
    ("step:set_remote_answer", "step:ice_connected"),
    ("step:ice_connected", "step:pc_connected"),
    ("step:pc_connected", "step:first_frame"),
)


def span_values(rounds, start, end):
    out = []
    for r in rounds:
        t = r["times_ms"]
        if end in t and (start is None or start in t):
            out.append(t[end] - (t[start] if start else 0))
    return out


def spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def fmt(s, unit="ms", digits=0):
    if s is None:
        return "–", "–"
    return (f"{s['median']:.{digits}f} {unit}", f"{s['min']:.{digits}f}–{s['max']:.{digits}f}")


def report(side, rounds):
    print(f"\n### {side} ({len(rounds)} rounds)\n")
    print("| figure | median | spread (min–max) | n |")
    print("|---|---|---|---|")
    summary = {}
    for key, unit, digits in (("first_frame_ms", "ms", 0), ("page_ready_ms", "ms", 0), ("tap_to_first_frame_ms", "ms", 0),
                              ("first_frame_tapped_at_ready_ms", "ms", 0),
                              ("agent_cpu_pct", "%", 1), ("agent_rss_mib", "MiB", 1),
                              ("agent_hwm_mib", "MiB", 1), ("fps", "", 1)):
        s = spread([r[key] for r in rounds])
        summary[key] = s
        m, sp = fmt(s, unit, digits)
        print(f"| **{key}** | {m} | {sp} | {s['n'] if s else 0} |")
    codecs = sorted({str(r["codec"]) for r in rounds})
    videos = sorted({r["video"] for r in rounds})
    print(f"| video | {', '.join(videos)} {', '.join(codecs)} | | |")
    print("\nFrom navigation start (ms):\n")
    print("| step | median | spread (min–max) | n |")
    print("|---|---|---|---|")
    keys = {k for r in rounds for k in r["times_ms"]}
    stats = {k: spread([r["times_ms"].get(k) for r in rounds]) for k in keys}
    for k in sorted(keys, key=lambda k: stats[k]["median"]):
        m, sp = fmt(stats[k])
        print(f"| {k} | {m} | {sp} | {stats[k]['n']} |")
    summary["times_ms"] = stats
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="counted calls per side")
    ap.add_argument("--seconds", type=float, default=10, help="how long each call holds after the first frame")
    ap.add_argument("--only", choices=["ours", "reference"])
    ap.add_argument("--playwright-tap", action="store_true",
                    help="tap with Playwright's click after the load event in a cold browser (the "
                         "first runs' way), instead of in-page the moment the button shows in a warm one")
    args = ap.parse_args()
    names = [args.only] if args.only else ["ours", "reference"]
    load_before = uptime()
    print(f"load before: {load_before}", flush=True)
    sides = {}
    rounds = {n: [] for n in names}
    try:
        for n in names:
            sides[n] = Side(n, args.playwright_tap)
            sides[n].start()
            # The warm-up call, not counted.
            sides[n].call(min(args.seconds, 2))
        for i in range(args.rounds):
            for n in names:
                r = sides[n].call(args.seconds)
                r["round"] = i
                rounds[n].append(r)
                print(f"round {i} {n}: first frame {r['first_frame_ms']:.0f} ms, agent CPU {r['agent_cpu_pct']:.1f} %, "
                      f"RSS {r['agent_rss_mib']:.1f} MiB", flush=True)
                print(json.dumps(r), file=sys.stderr, flush=True)
    finally:
        for s in sides.values():
            s.stop()
    load_after = uptime()
    summaries = {n: report(n, rounds[n]) for n in names}
    print(f"\nload before: {load_before}\nload after:  {load_after}")
    out = {"rounds": rounds, "summary": summaries, "load_before": load_before, "load_after": load_after,
           "seconds": args.seconds, "size": SIZE, "fps": FPS}
    print("\n| span (ms, median and min–max) | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for start, end in SPANS:
        cells = []
        for n in names:
            s = spread(span_values(rounds[n], start, end))
            cells.append(f"{s['median']:.0f} ({s['min']:.0f}–{s['max']:.0f})" if s else "–")
        print(f"| {start or 'navigation start'} → {end} | " + " | ".join(cells) + " |")
    if len(names) == 2:
        ours, ref = summaries["ours"], summaries["reference"]
        print("\n| ours / reference (medians) | ratio |\n|---|---|")
        ratios = {}
        for key in ("first_frame_ms", "first_frame_tapped_at_ready_ms", "tap_to_first_frame_ms", "agent_cpu_pct", "agent_rss_mib", "agent_hwm_mib"):
            if ours.get(key) and ref.get(key) and ref[key]["median"]:
                ratios[key] = ours[key]["median"] / ref[key]["median"]
                print(f"| {key} | {ratios[key]:.2f} |")
        out["ratios"] = ratios
    print(json.dumps(out), file=sys.stderr)


if __name__ == "__main__":
    main()
